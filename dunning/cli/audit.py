"""`dunning audit`: the case file for auditors: history, verify, state as of, export.

Everything reads the audit log in PostgreSQL; `verify` and `export` also ask
Temporal (the live case, the run histories). Personal data is masked unless an
auditor reveals it, and each reveal is recorded in `audit_reveals`.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import typer
from rich.markup import escape
from rich.table import Table

from dunning import case_client
from dunning.cli.common import console, errors, fail, run, settings
from dunning.settings import Settings

T = TypeVar("T")

audit_app = typer.Typer(
    help="The tamper-evident case file: history, verify, state as of, export.",
    no_args_is_help=True,
)


def _with_pool(current: Settings, body: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
    async def go() -> T:
        async with asyncpg.create_pool(current.database_url, min_size=1, max_size=4) as pool:
            return await body(pool)

    try:
        return run(go())
    except (OSError, asyncpg.PostgresError) as exc:
        fail(f"audit store: {exc}")
    except RuntimeError as exc:  # Temporal unreachable (connect) or an RPC failure
        fail(f"temporal: {exc}")


def parse_instant(value: str) -> datetime:
    """ISO 8601; without an offset the time is taken as UTC."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--as-of: not an ISO 8601 time: {value!r}", 2)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@audit_app.command()
def history(
    case: str = typer.Argument(..., help="case id (case-<loan id>) or loan id"),
    as_json: bool = typer.Option(False, "--json", help="one JSON object per event"),
    as_csv: bool = typer.Option(False, "--csv", help="CSV, payload as a JSON column"),
    reveal: bool = typer.Option(False, "--reveal", help="show personal data (recorded)"),
    auditor: str | None = typer.Option(None, help="who reveals (required with --reveal)"),
    reason: str | None = typer.Option(None, help="why (required with --reveal)"),
) -> None:
    """A case's timeline; the borrower's name, phones and address masked unless --reveal."""
    from dunning.audit.history import case_timeline

    if reveal and not (auditor and reason):
        fail("--reveal needs --auditor and --reason: every reveal is recorded", 2)
    case_id = case_client.normalise_case_id(case)
    rows = _with_pool(
        settings(), lambda pool: case_timeline(pool, case_id, auditor if reveal else None, reason)
    )
    if not rows:
        fail(f"no audit rows for {case_id!r}")
    if as_json:
        for row in rows:
            print(json.dumps(row.as_json(), ensure_ascii=False))
        return
    if as_csv:
        out = io.StringIO()
        writer = csv.writer(out)
        columns = ["seq", "occurred_at", "event_type", "actor", "summary", "run_id", "hash"]
        writer.writerow([*columns, "payload"])
        for row in rows:
            data = row.as_json()
            writer.writerow([*(data[c] for c in columns), json.dumps(data["payload"])])
        sys.stdout.write(out.getvalue())
        return
    borrower = rows[0].payload.get("case", {}).get("borrower", {})
    if borrower:
        phones = ", ".join(borrower.get("phones", []))
        console.print(
            f"borrower {borrower.get('id')}: {borrower.get('name')}, phones {phones}"
            + (f", address {borrower['address']}" if borrower.get("address") else ""),
            highlight=False,
        )
    table = Table(title=f"{case_id}: {len(rows)} events")
    for column in ("seq", "at", "type", "actor", "summary", "hash"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            str(row.seq),
            row.occurred_at.isoformat(timespec="seconds"),
            row.event_type,
            row.actor,
            row.summary,
            (row.hash or "legacy")[:12],
        )
    console.print(table)


@audit_app.command()
def verify(
    case: str | None = typer.Argument(None, help="case id or loan id (or --all)"),
    all_cases: bool = typer.Option(False, "--all", help="every case in the audit log"),
    as_json: bool = typer.Option(False, "--json"),
    live: bool = typer.Option(True, "--live/--no-live", help="compare with the workflow"),
) -> None:
    """Check the hash chain, the fold, the signed checkpoints and (live) the case and
    the heads its Temporal history recorded; exit 1 when anything is broken. --all also
    checks every case Temporal knows (live) or a checkpoint names, rows or not."""
    from activities.checkpoints import SigningKeyError
    from dunning.audit.verify import CaseReport, all_case_ids, verify_case
    from dunning.db import checkpoints
    from dunning.temporal_client import connect

    if all_cases == (case is not None):
        fail("give a CASE or --all", 2)
    current = settings()
    try:
        keys = checkpoints.verifier(current)
    except SigningKeyError as exc:
        fail(str(exc), 2)
    if keys is None:
        errors.print(
            "[yellow]note:[/] signed checkpoints not checked: no DUNNING_AUDIT_VERIFY_KEYS",
            highlight=False,
        )

    async def go(pool: asyncpg.Pool) -> list[CaseReport]:
        client = await connect(current) if live else None
        if case is not None:
            targets = [case_client.normalise_case_id(case)]
        else:
            targets = await all_case_ids(pool, client)
        return [await verify_case(pool, target, client, keys=keys) for target in targets]

    reports = _with_pool(current, go)
    if as_json:
        print(json.dumps([r.as_json() for r in reports], indent=2, ensure_ascii=False))
    else:
        _print_reports(reports)
    if any(not r.ok for r in reports):
        raise typer.Exit(1)


@audit_app.command("public-key")
def public_key() -> None:
    """Print the public half of the workers' checkpoint signing key, for auditors'
    DUNNING_AUDIT_VERIFY_KEYS (the key id on stderr)."""
    from activities.checkpoints import SigningKeyError, public_text
    from dunning.db import checkpoints

    try:
        signer = checkpoints.signer(settings())
    except SigningKeyError as exc:
        fail(str(exc), 2)
    errors.print(f"audit checkpoint key {signer.key_id}:", highlight=False)
    typer.echo(public_text(signer.public))


def _print_reports(reports: list[Any]) -> None:
    table = Table(title=f"audit verify: {len(reports)} case(s)")
    for column in ("case", "rows", "legacy", "head", "checkpoint", "anchor", "live", "result"):
        table.add_column(column)
    for r in reports:
        table.add_row(
            r.case_id,
            str(r.rows),
            str(r.legacy_rows),
            (r.head_hash or "-")[:12],
            r.checkpoint,
            r.anchor,
            r.live,
            "[green]ok[/]" if r.ok else f"[bold red]BROKEN ({len(r.problems)})[/]",
        )
    console.print(table)
    for r in reports:
        for problem in r.problems:
            console.print(f"[red]broken[/] {escape(str(problem))}", highlight=False)


@audit_app.command()
def state(
    case: str = typer.Argument(..., help="case id or loan id"),
    as_of: str = typer.Option(..., "--as-of", help="ISO 8601 instant (UTC without offset)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """The case's status as it was at --as-of, rebuilt from the audit log alone."""
    from dunning.audit.state import state_as_of
    from dunning.cli.render import status_panel

    moment = parse_instant(as_of)
    case_id = case_client.normalise_case_id(case)
    past = _with_pool(settings(), lambda pool: state_as_of(pool, case_id, moment))
    for problem in past.problems:
        console.print(f"[red]broken[/] {escape(str(problem))}", highlight=False)
    if past.status is None:
        fail(f"{case_id} had no events at {moment.isoformat()}")
    if as_json:
        print(past.status.model_dump_json(indent=2))
    else:
        console.print(status_panel(past.status))
    if past.problems:
        raise typer.Exit(1)


@audit_app.command()
def export(
    args: list[str] = typer.Argument(..., metavar="[CASE] DIR", help="case id and folder"),
    all_cases: bool = typer.Option(False, "--all", help="every case in the audit log"),
) -> None:
    """Write per case: audit rows (JSONL), every run's Temporal history, manifest.json."""
    from activities.audit_store import case_ids
    from dunning.audit.export import export_case
    from dunning.temporal_client import connect

    if len(args) != (1 if all_cases else 2):
        fail("usage: dunning audit export CASE DIR, or dunning audit export --all DIR", 2)
    directory = Path(args[-1])
    current = settings()

    async def go(pool: asyncpg.Pool) -> list[Path]:
        client = await connect(current)
        if all_cases:
            async with pool.acquire() as conn:
                targets = await case_ids(conn)
        else:
            targets = [case_client.normalise_case_id(args[0])]
        return [await export_case(pool, client, target, directory) for target in targets]

    for manifest in _with_pool(current, go):
        console.print(f"wrote {manifest.parent}", highlight=False)


def _register_replay() -> None:
    from dunning.cli.audit_replay import replay

    audit_app.command("replay")(replay)


_register_replay()
