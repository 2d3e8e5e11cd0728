"""`dunning`: run the engine, open and inspect cases, act on them (`dunning.cli.actions`)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from dunning import case_client
from dunning.cli.actions import register as register_actions
from dunning.cli.api import api as api_command
from dunning.cli.api import token_app
from dunning.cli.audit import audit_app
from dunning.cli.common import console, exit_with, fail, run, settings
from dunning.cli.db import db_app
from dunning.cli.dev import dev_app
from dunning.cli.policy import policy_app
from dunning.cli.strategy import strategy_app
from dunning.temporal_client import connect
from schemas.case import CaseInput

app = typer.Typer(
    name="dunning",
    help="Dunning: an event-sourced collections engine on Temporal.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold personal data
)
app.add_typer(dev_app, name="dev")
app.add_typer(db_app, name="db")
app.add_typer(audit_app, name="audit")
app.add_typer(token_app, name="token")
app.command("api")(api_command)
app.add_typer(policy_app, name="policy")
app.add_typer(strategy_app, name="strategy")
schema_app = typer.Typer(help="JSON Schemas for callers in any language.", no_args_is_help=True)
app.add_typer(schema_app, name="schema")


@schema_app.command("case")
def schema_case() -> None:
    """Print the JSON Schema of a case input (what `dunning open` and the starter accept)."""
    print(json.dumps(CaseInput.model_json_schema(), indent=2, ensure_ascii=False))


@app.command()
def worker() -> None:
    """Run a worker (workflows and activities) until Ctrl-C."""
    import asyncio

    from dunning.runtime import serve

    current = settings()
    asyncio.run(serve(current))


@app.command("open")
def open_cases(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="cases as .json or .csv"),
    as_json: bool = typer.Option(False, "--json", help="one JSON result per row"),
) -> None:
    """Open cases from a JSON or CSV file; report each row: opened, already open, or invalid."""
    from dunning import opening
    from dunning.case_files import read_rows

    current = settings()
    try:
        rows = read_rows(file)
    except (ValueError, OSError) as exc:
        fail(f"{file}: {exc}")

    async def go() -> list[opening.RowResult]:
        client = await connect(current)
        with Progress(
            TextColumn("opening cases"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            disable=as_json,
            transient=True,
        ) as progress:
            task = progress.add_task("open", total=len(rows))
            return await opening.open_cases(
                client, current, rows, on_result=lambda _: progress.advance(task)
            )

    import asyncpg

    try:
        results = run(go())
    except (OSError, asyncpg.PostgresError) as exc:  # a loan's earlier case is looked up there
        fail(f"audit store: {exc}")
    if as_json:
        for r in results:
            print(
                json.dumps(
                    {"row": r.row, "loan_id": r.loan_id, "outcome": r.outcome, "detail": r.detail}
                )
            )
    else:
        table = Table(title=f"{file.name}: {len(results)} rows")
        for column in ("row", "loan", "outcome", "detail"):
            table.add_column(column)
        style = {"opened": "green", "invalid": "red"}
        for r in results:
            table.add_row(
                str(r.row),
                r.loan_id or "-",
                f"[{style.get(r.outcome, 'yellow')}]{r.outcome}[/]",
                r.detail,
            )
        console.print(table)
        counts = {
            o: sum(1 for r in results if r.outcome == o)
            for o in ("opened", "already_open", "already_closed", "invalid")
        }
        console.print(", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))
    if any(r.outcome == "invalid" for r in results):
        raise typer.Exit(2)


@app.command()
def status(
    case: str = typer.Argument(..., help="case id (case-<loan id>) or loan id"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show a case: stage, balance, pause, next action, counters, last events."""
    from dunning.cli.render import status_panel

    current = settings()
    case_id = case_client.normalise_case_id(case)

    async def go() -> object:
        return await case_client.status(await connect(current), case_id)

    try:
        result = run(go())
    except case_client.CaseError as exc:
        fail(str(exc))
    if as_json:
        print(result.model_dump_json(indent=2))  # type: ignore[attr-defined]
    else:
        console.print(status_panel(result))  # type: ignore[arg-type]


@app.command()
def cases(
    stage: str | None = typer.Option(None, help="only cases in this stage"),
    segment: str | None = typer.Option(None, help="only cases the strategy put in this segment"),
    arm: str | None = typer.Option(None, help="only cases in this arm: champion or a challenger"),
    state: str | None = typer.Option(None, help="only cases in this state: open, paused, ..."),
    policy: str | None = typer.Option(None, help="only cases on this policy: NAME@VERSION"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """List cases through their search attributes."""
    current = settings()

    async def go() -> list[case_client.CaseListing]:
        return await case_client.list_cases(
            await connect(current), stage, segment=segment, arm=arm, state=state, policy=policy
        )

    try:
        listings = run(go())
    except ValueError as exc:
        fail(str(exc))
    if as_json:
        print(json.dumps([vars(item) for item in listings], indent=2))
        return
    filters = ", ".join(
        f"{name} {value}"
        for name, value in (
            ("stage", stage),
            ("segment", segment),
            ("arm", arm),
            ("state", state),
            ("policy", policy),
        )
        if value
    )
    table = Table(title=f"{len(listings)} cases" + (f" ({filters})" if filters else ""))
    for column in ("case", "state", "stage", "dpd", "policy", "segment", "arm"):
        table.add_column(column)
    for item in listings:
        table.add_row(
            item.case_id,
            item.state,
            item.stage,
            str(item.days_past_due or "-"),
            item.policy,
            item.segment or "-",
            item.arm or "-",
        )
    console.print(table)


def _register_simulate() -> None:
    from dunning.cli.simulate import simulate_command

    app.command("simulate")(simulate_command)


_register_simulate()


def _register_demo() -> None:
    from dunning.cli.demo import demo

    app.command()(demo)


_register_demo()
register_actions(app, {"policy": policy_app})


def _register_codec_server() -> None:
    from dunning.cli.codec import codec_server

    app.command("codec-server")(codec_server)


_register_codec_server()


def _register_report() -> None:
    from dunning.cli.report import report

    app.command("report")(report)


_register_report()


def main() -> None:
    """The `dunning` executable: run the app, then leave without interpreter teardown.

    The Temporal client's native runtime keeps threads that can touch the GIL while
    CPython finalises, which aborts the process (SIGABRT, temporalio/sdk-python#300)
    after the command has already done its work. Flushing and `os._exit` keeps the
    command's real exit status.
    """
    exit_with(_run_app)


def _run_app() -> int:
    try:
        app()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
