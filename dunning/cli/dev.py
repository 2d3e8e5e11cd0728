"""`dunning dev up | down | status`: the embedded local stack, in the background."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from dunning.cli.common import console, settings

dev_app = typer.Typer(
    help="The embedded local stack: Temporal dev server and PostgreSQL.", no_args_is_help=True
)


@dev_app.command()
def up() -> None:
    """Start Temporal and PostgreSQL in the background, apply the audit schema, print addresses."""
    from dunning.localstack import stack

    info = stack.up(settings())
    console.print(f"temporal   {info.temporal_address}")
    console.print(f"ui         {info.temporal_ui}")
    console.print(f"postgres   {info.database_url}  (the application's role)")
    console.print(f"state      {info.state_dir}")
    if info.warning:
        console.print(f"[yellow]warning:[/] {info.warning}", highlight=False)


@dev_app.command()
def down() -> None:
    """Stop both servers; all data stays in the state folder for the next `up`."""
    from dunning.localstack import stack

    stack.down(settings())
    console.print("stopped")


@dev_app.command()
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Show whether each server runs, where, and with which pid."""
    from dunning.localstack import stack

    report = stack.status(settings())
    if as_json:
        print(json.dumps(report, indent=2, default=str))
        return
    table = Table(show_header=False)
    for key, value in report.items():
        table.add_row(key, str(value))
    console.print(table)
