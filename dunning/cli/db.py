"""`dunning db migrate`: bring the audit store's schema up to date (docker-compose runs it)."""

from __future__ import annotations

import typer

from dunning.cli.common import console, fail, run, settings

db_app = typer.Typer(help="The audit store in PostgreSQL.", no_args_is_help=True)


@db_app.command()
def migrate() -> None:
    """Create the database if missing and apply the migrations not applied yet."""
    import asyncpg

    from dunning.db.migrate import MigrationError, apply_migrations, ensure_database

    url = settings().database_url

    async def go() -> list[str]:
        await ensure_database(url)
        return await apply_migrations(url)

    try:
        applied = run(go())
    except (MigrationError, OSError, asyncpg.PostgresError) as exc:
        fail(str(exc))
    for version in applied:
        console.print(f"applied {version}")
    if not applied:
        console.print("schema up to date")
