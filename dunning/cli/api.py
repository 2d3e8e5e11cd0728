"""`dunning api` (the HTTP API) and `dunning token` (its bearer tokens)."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from dunning.cli.common import console, errors, fail, run, settings
from schemas.roles import Role

token_app = typer.Typer(
    help="Bearer tokens for the HTTP API (as the schema's owner, DUNNING_DATABASE_OWNER_URL: "
    "the API itself may only read them).",
    no_args_is_help=True,
)


def api(
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(8000, min=0, max=65535, help="port to listen on"),
) -> None:
    """Serve the HTTP API (OpenAPI at /docs) until Ctrl-C."""
    from dunning.api.app import create_app
    from dunning.api.server import serve

    current = settings()
    console.print(f"HTTP API on http://{host}:{port}  (OpenAPI: http://{host}:{port}/docs)")
    try:
        run(serve(create_app(current), host, port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


@token_app.command("create")
def token_create(
    role: str = typer.Option(..., help="service, operator, supervisor, auditor or collector"),
    name: str = typer.Option(
        ..., help="who uses it: recorded as the operator of every action taken with it"
    ),
    team: str | None = typer.Option(
        None, help="a collector's team: whose call tasks they work (default: collections)"
    ),
) -> None:
    """Create a token and print it once (only its SHA-256 is stored)."""
    from dunning.api import tokens

    try:
        chosen = Role(role)
    except ValueError:
        fail(f"role: one of {', '.join(Role)}", 2)
    try:
        tokens.check_name(name)
        if team is not None:
            tokens.check_team(team)
            if chosen is not Role.collector:
                raise ValueError("team: only a collector's token names a team")
    except ValueError as exc:
        fail(str(exc), 2)
    current = settings()

    async def go() -> str:
        import asyncpg

        conn = await asyncpg.connect(current.owner_database_url)
        try:
            return await tokens.create(conn, chosen, name, team)
        finally:
            await conn.close()

    token = run(go())
    # The token alone on stdout (for scripts); the note on stderr.
    errors.print(f"token for {chosen.value}:{name}; shown once, nothing can show it again:")
    typer.echo(token)


@token_app.command("list")
def token_list(as_json: bool = typer.Option(False, "--json")) -> None:
    """Tokens by role and name (never the tokens themselves)."""
    from dunning.api import tokens

    current = settings()

    async def go() -> list[tokens.TokenInfo]:
        import asyncpg

        conn = await asyncpg.connect(current.owner_database_url)
        try:
            return await tokens.listing(conn)
        finally:
            await conn.close()

    found = run(go())
    if as_json:
        print(json.dumps([vars(t) for t in found], default=str, indent=2))
        return
    table = Table(title=f"{len(found)} tokens")
    for column in ("id", "role", "name", "team", "created", "revoked"):
        table.add_column(column)
    for t in found:
        table.add_row(
            str(t.id),
            t.role,
            t.name,
            t.team or "-",
            f"{t.created_at:%Y-%m-%d %H:%M}",
            str(t.revoked_at or "-"),
        )
    console.print(table)


@token_app.command("revoke")
def token_revoke(
    name: str = typer.Argument(..., help="revoke every live token of this name"),
) -> None:
    """Revoke a name's tokens at once (the rows stay, for the record)."""
    from dunning.api import tokens

    current = settings()

    async def go() -> int:
        import asyncpg

        conn = await asyncpg.connect(current.owner_database_url)
        try:
            return await tokens.revoke(conn, name)
        finally:
            await conn.close()

    count = run(go())
    if not count:
        fail(f"no live token named {name!r}")
    console.print(f"revoked {count} token(s) of {name}")
