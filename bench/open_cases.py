"""What open cases cost: a worker's memory, Temporal's database and the audit store,
measured at a few numbers of open cases in one run (README, "Sizing").

On a private embedded stack, one worker process (`python worker.py`, the shipped entry
point and settings) and cases opened as backends open them (`dunning.opening.open_cases`,
the sample case, the default policy with real 24-hour days). After each level, once
every case has run its opening (written its first audit rows) and waits on a timer:
the worker's and the Temporal server's RSS, the size of Temporal's SQLite file (with
its WAL) and of the audit database, the audit rows, the history events of a sample.
The costs per case are the differences between levels, so what the idle stack holds
cancels out.

    .venv/bin/python -m bench.open_cases --levels 20,500,1000,1400

The first level is the baseline: a worker that has started and run a few cases.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import psutil
import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import Client

from dunning.localstack import stack, temporal
from dunning.logging_setup import configure
from dunning.opening import open_cases
from dunning.samples import sample_payload
from dunning.settings import Settings
from dunning.temporal_client import connect

ROOT = Path(__file__).resolve().parent.parent
console = Console(width=200)
SAMPLE = 20  # histories read per level for their event count
SETTLE_S = 5.0  # after the last opening's rows, for the worker's tasks to drain
LOCAL_HOUR = 12  # the borrowers' local time when the bench runs: inside contact hours


def midday_zone() -> str:
    """A fixed-offset zone where it is about noon now, so that every case sends its
    first SMS on opening whenever the bench runs (`Etc/GMT-8` is UTC+8)."""
    offset = (LOCAL_HOUR - datetime.now(UTC).hour + 12) % 24 - 12
    return f"Etc/GMT{-offset:+d}" if offset else "Etc/GMT"


@dataclass
class Level:
    cases: int
    seconds: float
    worker_rss: int
    temporal_rss: int
    temporal_db: int
    audit_db: int
    audit_rows: int
    outbox_rows: int
    history_events: float


def worker_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "DUNNING_TEMPORAL_ADDRESS": settings.temporal_address,
        "DUNNING_DATABASE_URL": settings.database_url,
        "DUNNING_STATE_DIR": str(settings.state_dir),
        "DUNNING_TASK_QUEUE": settings.task_queue,
        "DUNNING_LOG_LEVEL": "WARNING",
    }


def temporal_db_bytes(state_dir: Path) -> int:
    db = temporal.db_file(state_dir)
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if p.is_file())


async def _counts(owner: asyncpg.Connection, prefix: str) -> tuple[int, int, int]:
    row = await owner.fetchrow(
        "SELECT (SELECT count(*) FROM audit_events WHERE case_id LIKE $1) AS rows, "
        "(SELECT count(DISTINCT case_id) FROM audit_events WHERE case_id LIKE $1) AS cases, "
        "(SELECT count(*) FROM outbox WHERE case_id LIKE $1) AS outbox",
        f"case-{prefix}-%",
    )
    assert row is not None
    return row["rows"], row["cases"], row["outbox"]


async def _history_events(client: Client, case_ids: list[str]) -> float:
    sizes = []
    for case_id in case_ids:
        history = await client.get_workflow_handle(case_id).fetch_history()
        sizes.append(len(history.events))
    return statistics.fmean(sizes)


async def bench(settings: Settings, levels: list[int], worker: psutil.Process) -> list[Level]:
    client = await connect(settings)
    temporal_pid = temporal.running_pid(settings.state_dir.resolve())
    assert temporal_pid is not None
    server = psutil.Process(temporal_pid)
    prefix = f"L-open-{uuid.uuid4().hex[:6]}"
    owner = await asyncpg.connect(settings.owner_database_url)
    results = []
    opened = 0
    start = time.monotonic()
    try:
        for level in levels:
            zone = {"timezone": midday_zone()}
            rows = [
                sample_payload(f"{prefix}-{i:06d}", borrower=zone) for i in range(opened, level)
            ]
            answers = await open_cases(client, settings, rows)
            refused = [a for a in answers if a.outcome != "opened"]
            assert not refused, refused[:3]
            opened = level
            while (await _counts(owner, prefix))[1] < level:  # every case's opening ran
                assert worker.is_running(), "the worker died"
                await asyncio.sleep(1)
            await asyncio.sleep(SETTLE_S)
            audit_rows, _, outbox = await _counts(owner, prefix)
            sample = [f"case-{prefix}-{i:06d}" for i in range(0, level, max(1, level // SAMPLE))]
            results.append(
                Level(
                    cases=level,
                    seconds=time.monotonic() - start,
                    worker_rss=worker.memory_info().rss,
                    temporal_rss=server.memory_info().rss,
                    temporal_db=temporal_db_bytes(settings.state_dir.resolve()),
                    audit_db=await owner.fetchval("SELECT pg_database_size(current_database())"),
                    audit_rows=audit_rows,
                    outbox_rows=outbox,
                    history_events=await _history_events(client, sample) if sample else 0.0,
                )
            )
            console.print(f"after {time.monotonic() - start:.0f} s: {results[-1]}")
    finally:
        await owner.close()
    return results


def table(levels: list[Level]) -> Table:
    mib = 1024 * 1024
    out = Table(title="open cases: totals, and per case between levels")
    for column in (
        "open cases",
        "worker RSS MiB",
        "temporal RSS MiB",
        "temporal db MiB",
        "audit db MiB",
        "audit rows",
        "outbox rows",
        "history events/case",
        "worker KiB/case",
        "temporal db KiB/case",
        "audit db KiB/case",
    ):
        out.add_column(column, justify="right")
    previous = None
    for level in levels:
        per = ["", "", ""]
        if previous is not None:
            n = level.cases - previous.cases
            per = [
                f"{(level.worker_rss - previous.worker_rss) / n / 1024:.1f}",
                f"{(level.temporal_db - previous.temporal_db) / n / 1024:.1f}",
                f"{(level.audit_db - previous.audit_db) / n / 1024:.1f}",
            ]
        out.add_row(
            f"{level.cases:,}",
            f"{level.worker_rss / mib:.0f}",
            f"{level.temporal_rss / mib:.0f}",
            f"{level.temporal_db / mib:.1f}",
            f"{level.audit_db / mib:.1f}",
            f"{level.audit_rows:,}",
            f"{level.outbox_rows:,}",
            f"{level.history_events:.1f}",
            *per,
        )
        previous = level
    return out


def main(
    levels: str = typer.Option(
        "20,500,1000,1400",
        help="open cases at each measurement; the first is the baseline (a warm worker)",
    ),
) -> None:
    """Memory and storage per open case, for sizing a deployment."""
    counts = sorted({int(n) for n in levels.split(",")})
    configure("console", "WARNING")
    with tempfile.TemporaryDirectory(prefix="dunning-bench-", ignore_cleanup_errors=True) as tmp:
        settings = stack.private_settings(Path(tmp)).model_copy(
            update={"task_queue": f"open-{uuid.uuid4().hex[:8]}"}
        )
        log = Path(tmp) / "worker.log"
        try:
            stack.up(settings)
            with log.open("ab") as out:
                process = subprocess.Popen(
                    [sys.executable, str(ROOT / "worker.py")],
                    cwd=ROOT,
                    env=worker_env(settings),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            try:
                results = asyncio.run(bench(settings, counts, psutil.Process(process.pid)))
            finally:
                process.terminate()
                process.wait(timeout=30)
        finally:
            stack.down(settings)
    console.print(table(results))


if __name__ == "__main__":
    typer.run(main)
