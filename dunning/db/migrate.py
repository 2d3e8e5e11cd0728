"""Schema migrations: `migrations/*.sql`, applied once each, in filename order.

Each file runs in its own transaction together with its row in `schema_migrations`.
The whole run holds a PostgreSQL advisory lock, so several callers at once (two
workers starting, `dunning dev up` next to `dunning db migrate`) apply each file once.
A file changed after it was applied is refused: migrations are history, add a new one.

Migrations run as the schema's owner. After them, under the same lock, `grants.sql`
sets what the application role may do (the privileges' current state, re-applied each
time), and `ensure_app_user` lets the application's user log in with those
privileges (`prepare` does all of it: `dunning dev up`, `dunning db migrate`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import asyncpg

from dunning.settings import APP_ROLE

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
    With the shipped migrations (`directory` None), `grants.sql` is applied after them.

    Raises MigrationError, before applying anything, when an applied file has changed.
    """
    migrations = load(directory)
    grants = None if directory is not None else _grants()
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
        if grants is not None:
            async with conn.transaction():
                await conn.execute(grants)
        return fresh
    finally:
        await conn.close()  # also releases the advisory lock


def _grants() -> str:
    return (resources.files("dunning.db") / "grants.sql").read_text(encoding="utf-8")


async def ensure_app_user(owner_url: str, app_url: str) -> str | None:
    """Let the user of `app_url` log in with the application role's privileges only;
    returns a warning when it cannot be least privileged.

    The user is created if missing, or allowed to log in if it could not (the role
    `grants.sql` makes), with the URL's password if any; a user other than the role
    itself is made a member of it. A user that could log in already is changed only as
    far as needed (membership; its password is left alone), so a user a DBA made
    beforehand needs no CREATEROLE from the owner. When both URLs name one user,
    there is nothing to set up: the application then runs with the owner's rights.
    """
    app, owner = urlsplit(app_url), urlsplit(owner_url)
    user = unquote(app.username or "")
    if not user or user == unquote(owner.username or ""):
        return (
            f"the application connects as the schema's owner ({user or 'default user'}): "
            f"give DUNNING_DATABASE_URL a user of its own ({APP_ROLE}) to make the "
            "append-only rule bind it"
        )
    password = unquote(app.password) if app.password is not None else None
    conn = await asyncpg.connect(owner_url)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
        row = await conn.fetchrow(
            "SELECT rolsuper, rolcanlogin, pg_has_role(rolname, $2, 'USAGE') AS inherits "
            "FROM pg_roles WHERE rolname = $1",
            user,
            APP_ROLE,
        )
        if row is not None and row["rolsuper"]:
            return f"the application's user {user} is a superuser: least privilege is moot"
        if row is None or not row["rolcanlogin"]:  # new, or grants.sql's NOLOGIN role
            verb = "CREATE" if row is None else "ALTER"
            await conn.execute(await _sql(conn, f"{verb} ROLE %I LOGIN", user))
            if password is not None:
                await conn.execute(await _sql(conn, "ALTER ROLE %I PASSWORD %L", user, password))
        if user != APP_ROLE and (row is None or not row["inherits"]):
            await conn.execute(await _sql(conn, f"GRANT {APP_ROLE} TO %I", user))
        return None
    finally:
        await conn.close()


async def _sql(conn: asyncpg.Connection, template: str, *values: str) -> str:
    """A statement with identifiers and literals quoted by the server (`format`)."""
    statement: str = await conn.fetchval(
        f"SELECT format($1, {', '.join(f'${i + 2}::text' for i in range(len(values)))})",
        template,
        *values,
    )
    return statement


async def prepare(owner_url: str, app_url: str) -> tuple[list[str], str | None]:
    """Create the database if missing, migrate, set the application's privileges and
    its user: (migrations applied, warning or None)."""
    await ensure_database(owner_url)
    applied = await apply_migrations(owner_url)
    return applied, await ensure_app_user(owner_url, app_url)


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
