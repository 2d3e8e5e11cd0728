"""`dunning db migrate`: bring the audit store's schema up to date and set the
application's privileges (docker-compose runs it). Connects as the schema's owner
(`DUNNING_DATABASE_OWNER_URL`)."""

from __future__ import annotations

import typer

from dunning.cli.common import console, errors, fail, run, settings

db_app = typer.Typer(help="The audit store in PostgreSQL.", no_args_is_help=True)


@db_app.command()
def migrate() -> None:
    """Create the database if missing, apply the migrations not applied yet (as the
    owner), set the application role's privileges and let its user log in."""
    import asyncpg

    from dunning.db.migrate import MigrationError, prepare

    current = settings()
    try:
        applied, warning = run(prepare(current.owner_database_url, current.database_url))
    except (MigrationError, OSError, asyncpg.PostgresError) as exc:
        fail(str(exc))
    for version in applied:
        console.print(f"applied {version}")
    if not applied:
        console.print("schema up to date")
    console.print("application role privileges set (dunning/db/grants.sql)")
    if warning:
        errors.print(f"[yellow]warning:[/] {warning}", highlight=False)
