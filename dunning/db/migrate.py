"""Schema migrations: `migrations/*.sql`, applied once each, in filename order.

Each file runs in its own transaction together with its row in `schema_migrations`.
The whole run holds a PostgreSQL advisory lock, so several callers at once (two
workers starting, `dunning dev up` next to `dunning db migrate`) apply each file once.
A file changed after it was applied is refused: migrations are history, add a new one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg

# Any fixed bigint; this one spells "dunning" in ASCII.
LOCK_KEY = 0x64756E6E696E67

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text        PRIMARY KEY,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """The database's migration history does not match the shipped files."""


@dataclass(frozen=True)
class Migration:
    version: str  # file name without `.sql`, e.g. 0001_audit_and_outbox
    sql: str
    checksum: str  # sha256 of the text with normalised line ends


def load(directory: Path | None = None) -> list[Migration]:
    """The migrations in `directory` (default: the shipped ones), in filename order."""
    folder: Traversable = directory or resources.files("dunning.db") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    result = []
    for file in files:
        sql = file.read_text(encoding="utf-8").replace("\r\n", "\n")
        checksum = hashlib.sha256(sql.encode()).hexdigest()
        result.append(Migration(version=file.name.removesuffix(".sql"), sql=sql, checksum=checksum))
    return result


async def apply_migrations(database_url: str, directory: Path | None = None) -> list[str]:
    """Apply the migrations not applied yet; return their versions (empty if up to date).

    Raises MigrationError, before applying anything, when an applied file has changed.
    """
    migrations = load(directory)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        await conn.execute(CREATE_TABLE)
        rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
        applied = {row["version"]: row["checksum"] for row in rows}
        for migration in migrations:
            known = applied.get(migration.version)
            if known is not None and known != migration.checksum:
                raise MigrationError(
                    f"migration {migration.version}.sql changed after it was applied "
                    f"(checksum {known[:12]} in the database, {migration.checksum[:12]} on "
                    "disk); restore the file and put the change in a new migration"
                )
        fresh = []
        for migration in migrations:
            if migration.version in applied:
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
                    migration.version,
                    migration.checksum,
                )
            fresh.append(migration.version)
        return fresh
    finally:
        await conn.close()  # also releases the advisory lock


async def ensure_database(database_url: str) -> None:
    """Create the database named in the URL if it does not exist (needs CREATEDB).

    Connects to the database itself first, so an existing one never needs the
    maintenance database `postgres`.
    """
    try:
        conn = await asyncpg.connect(database_url)
    except asyncpg.InvalidCatalogNameError:
        pass
    else:
        await conn.close()
        return
    name = unquote(urlsplit(database_url).path.lstrip("/"))
    conn = await asyncpg.connect(database_url, database="postgres")
    try:
        quoted = '"' + name.replace('"', '""') + '"'
        await conn.execute(f"CREATE DATABASE {quoted}")
    except asyncpg.DuplicateDatabaseError:
        pass  # created meanwhile by another caller
    finally:
        await conn.close()
