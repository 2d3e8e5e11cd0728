"""Least privilege in the audit store (issue 12, item 13).

The worker and the API connect as the application role, which may append to the
append-only tables and read what they read, and nothing more: the append-only rule
binds the application itself, not only honest code (triggers stop an UPDATE; only the
missing privilege stops the application from switching a trigger off). Migrations run
as the owner. The test fixtures connect the way the product does: `pool` is the
application's.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlsplit

import asyncpg
import pytest

from dunning.db.migrate import ensure_app_user
from dunning.settings import Settings

# What the application role may do, table by table; every table of the schema is here,
# so a new table without a decision about its privileges fails this test.
EXPECTED = {
    "audit_events": {"SELECT", "INSERT"},
    "audit_checkpoints": {"SELECT", "INSERT"},
    "audit_reveals": {"INSERT"},
    "agreements": {"SELECT", "INSERT"},
    "outbox": {"SELECT", "INSERT"},
    "api_tokens": {"SELECT"},
    "api_idempotency": {"SELECT", "INSERT", "UPDATE", "DELETE"},
    "call_tasks": {"SELECT", "INSERT", "UPDATE"},
    "schema_migrations": {"SELECT"},
}
ALL = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def _user(url: str) -> str | None:
    return urlsplit(url).username


def test_settings_name_two_roles_and_default_to_the_embedded_stack() -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert _user(defaults.database_url) == "dunning_app"
    assert _user(defaults.owner_database_url) == "postgres"
    assert urlsplit(defaults.database_url).port == urlsplit(defaults.owner_database_url).port
    one_url = Settings(_env_file=None, database_url="postgresql://me:pw@db:5432/x")  # type: ignore[call-arg]
    assert one_url.owner_database_url == one_url.database_url  # as before: one user does both


async def test_the_fixtures_connect_as_the_application_role(
    pool: asyncpg.Pool, stack_settings: Settings
) -> None:
    assert _user(stack_settings.database_url) != _user(stack_settings.owner_database_url)
    assert await pool.fetchval("SELECT current_user") == "dunning_app"
    assert not await pool.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")


async def test_the_application_role_has_exactly_its_privileges(
    owner_pool: asyncpg.Pool,
) -> None:
    tables = {
        row["tablename"]
        for row in await owner_pool.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        )
    }
    assert tables == set(EXPECTED), "decide the application's privileges on every table"
    for table, allowed in EXPECTED.items():
        granted = {
            privilege
            for privilege in ALL
            if await owner_pool.fetchval(
                "SELECT has_table_privilege('dunning_app', $1, $2)", table, privilege
            )
        }
        assert granted == allowed, table


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_events SET actor = 'me'",
        "DELETE FROM audit_events",
        "TRUNCATE audit_events",
        "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
        "DELETE FROM agreements",
        "DELETE FROM audit_checkpoints",
        "UPDATE audit_checkpoints SET hash = ''",
        "UPDATE outbox SET body = ''",
        "DELETE FROM audit_reveals",
        "UPDATE api_tokens SET role = 'supervisor'",
        "CREATE TABLE mine (x int)",
        "CREATE TEMP TABLE mine (x int)",
        "CREATE SCHEMA mine",
        "DROP TABLE audit_events",
        "CREATE FUNCTION mine() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    ],
)
async def test_the_application_role_cannot_change_history_or_the_schema(
    pool: asyncpg.Pool, statement: str
) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError) as refused:
        await pool.execute(statement)
    # Refused for want of the privilege, before any trigger could run.
    message = str(refused.value)
    assert "permission denied" in message or "must be owner" in message, message


async def test_migrate_lets_another_user_in_as_a_member_of_the_application_role(
    owner_pool: asyncpg.Pool, stack_settings: Settings
) -> None:
    """A deployment may name its own application user: `db migrate` creates it (or
    uses the one a DBA made) as a member of the role, with the role's rights only."""
    owner = stack_settings.owner_database_url
    server = urlsplit(owner)
    user = f"worker_{uuid.uuid4().hex[:6]}"
    app_url = f"postgresql://{user}:pw@{server.hostname}:{server.port}{server.path}"

    assert await ensure_app_user(owner, app_url) is None
    assert await ensure_app_user(owner, app_url) is None  # again: nothing to change

    conn = await asyncpg.connect(app_url)
    try:
        assert await conn.fetchval("SELECT has_table_privilege('audit_events', 'INSERT')")
        assert not await conn.fetchval("SELECT has_table_privilege('audit_events', 'UPDATE')")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("TRUNCATE audit_events")
    finally:
        await conn.close()
    warning = await ensure_app_user(owner, owner)
    assert warning is not None and "owner" in warning
