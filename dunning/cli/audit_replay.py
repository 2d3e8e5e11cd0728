"""`dunning audit replay`: replay cases' histories against the code installed now.

Registered by the `audit` group (`audit_app.command("replay")(replay)`). Exits 1 if any
case does not replay identically, so a deploy pipeline can run it against live cases
before rolling out new workflow code.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import typer
from rich.markup import escape
from rich.table import Table

from dunning.audit.replay import ReplayReport, replay_all, replay_case
from dunning.case_client import CaseNotFound, normalise_case_id
from dunning.cli.common import console, fail, run, settings
from dunning.settings import Settings
from dunning.temporal_client import connect


def replay(
    case: str | None = typer.Argument(None, help="case id (case-<loan id>) or loan id"),
    all_cases: bool = typer.Option(False, "--all", help="every LoanCollection case"),
    as_json: bool = typer.Option(False, "--json", help="one JSON result per case"),
) -> None:
    """Replay a case's runs (or every case's) with the current workflow code: deterministic,
    or the first run and history event where it diverges."""
    if (case is None) == (not all_cases):
        fail("give a case id or --all (not both)", code=2)
    current = settings()
    try:
        reports = run(collect(current, case, all_cases))
    except CaseNotFound as exc:
        fail(str(exc))
    raise typer.Exit(render(reports, as_json))


async def collect(current: Settings, case: str | None, all_cases: bool) -> list[ReplayReport]:
    client = await connect(current)
    if all_cases:
        return await replay_all(client)
    assert case is not None
    return [await replay_case(client, normalise_case_id(case))]


def render(reports: Sequence[ReplayReport], as_json: bool) -> int:
    """Print the reports; the exit code: 0 when every case replayed identically, else 1."""
    if as_json:
        for report in reports:
            print(json.dumps(report.as_dict()))
    else:
        table = Table(title=f"replay: {len(reports)} case(s)")
        table.add_column("case")
        table.add_column("runs", justify="right")
        table.add_column("result", overflow="fold")
        for r in reports:
            result = (
                f"[green]deterministic[/] ({escape(r.detail)})"
                if r.deterministic
                else f"[bold red]diverges[/] {escape(r.detail)}"
            )
            table.add_row(escape(r.case_id), str(r.runs), result)
        console.print(table, highlight=False)
        bad = sum(1 for r in reports if not r.deterministic)
        if bad:
            console.print(f"[bold red]{bad} case(s) do not replay[/] with the current code")
        elif reports:
            console.print(f"all {len(reports)} case(s) replay with the current code")
        else:
            console.print("no cases")
    return 0 if all(r.deterministic for r in reports) else 1
