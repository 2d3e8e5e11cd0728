"""What a signed head checkpoint costs an audit append, side by side in one run.

    .venv/bin/python -m bench.audit_append --cases 200 --batches 10 --rounds 3

On a private embedded stack (a temporary folder, stopped at the end), as the
application role the workers use, `--concurrency` tasks append `--batches` batches of
`--rows` events to each of `--cases` cases with `activities.audit_store.append_batch`:
the same call the `append_audit` activity makes, once without a signer (the chain and
the head only) and once with the workers' signer (plus the Ed25519 signature and the
`audit_checkpoints` row, in the same transaction). The two modes alternate for
`--rounds` rounds on fresh cases, so neither gets the warmer database. Reported: the
appends per second and the latency of one append (median, 95th percentile) per mode.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import typer
from rich.console import Console
from rich.table import Table

from activities import audit_store
from activities.checkpoints import CheckpointSigner
from dunning.db import checkpoints
from dunning.demo import portfolio
from dunning.localstack import stack
from dunning.policies import load
from schemas.events import AuditRecord, CaseOpened, Event, PaymentReceived

console = Console()


def _events(case_index: int, count: int, tag: str) -> tuple[str, list[Event]]:
    case = portfolio(f"{tag}{case_index}", 1)[0]
    at = datetime.now(UTC)
    events: list[Event] = [CaseOpened(at=at, case=case, policy=load("default"))]
    for n in range(1, count):
        events.append(
            PaymentReceived(
                at=at + timedelta(seconds=n),
                actor="service:bench",
                amount=Decimal("1.00"),
                reference=f"r-{n}",
                applied_penalty=Decimal(0),
                applied_fees=Decimal("1.00"),
                applied_interest=Decimal(0),
                applied_principal=Decimal(0),
                overpaid=Decimal(0),
                balance_after=case.loan.outstanding - n,
            )
        )
    return case.case_id, events


async def _round(
    pool: asyncpg.Pool,
    signer: CheckpointSigner | None,
    cases: int,
    batches: int,
    rows: int,
    concurrency: int,
) -> tuple[float, list[float]]:
    tag = uuid.uuid4().hex[:6]
    work = [_events(i, batches * rows, tag) for i in range(cases)]
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(case_id: str, events: list[Event]) -> None:
        records = [AuditRecord(case_id=case_id, seq=i + 1, event=e) for i, e in enumerate(events)]
        async with gate:
            for start in range(0, len(records), rows):
                began = time.perf_counter()
                async with pool.acquire() as conn:
                    await audit_store.append_batch(
                        conn, case_id, "run", records[start : start + rows], signer
                    )
                latencies.append(time.perf_counter() - began)

    began = time.perf_counter()
    await asyncio.gather(*(one(case_id, events) for case_id, events in work))
    return time.perf_counter() - began, latencies


async def _bench(
    settings_dir: Path, cases: int, batches: int, rows: int, concurrency: int, rounds: int
) -> None:
    settings = stack.private_settings(settings_dir)
    await stack.up_async(settings)
    try:
        signer = checkpoints.signer(settings)
        async with asyncpg.create_pool(
            settings.database_url, min_size=concurrency, max_size=concurrency
        ) as pool:
            await _round(pool, signer, 10, 2, rows, concurrency)  # warm-up, not measured
            results: dict[str, list[tuple[float, list[float]]]] = {"chain only": [], "signed": []}
            for _ in range(rounds):
                for mode, used in (("chain only", None), ("signed", signer)):
                    results[mode].append(
                        await _round(pool, used, cases, batches, rows, concurrency)
                    )
    finally:
        stack.down(settings)
    appends = cases * batches
    table = Table(
        title=f"audit append: {cases} cases x {batches} batches of {rows} rows, "
        f"{concurrency} at a time, {rounds} rounds"
    )
    for column in ("mode", "appends/s (per round)", "median ms", "p95 ms"):
        table.add_column(column)
    for mode, runs in results.items():
        every = sorted(latency for _, latencies in runs for latency in latencies)
        p95 = every[int(len(every) * 0.95) - 1]
        table.add_row(
            mode,
            ", ".join(f"{appends / seconds:.0f}" for seconds, _ in runs),
            f"{statistics.median(every) * 1000:.2f}",
            f"{p95 * 1000:.2f}",
        )
    console.print(table)


def main(
    cases: int = typer.Option(200, min=1),
    batches: int = typer.Option(10, min=1),
    rows: int = typer.Option(3, min=1, help="events per append, as a flush writes them"),
    concurrency: int = typer.Option(16, min=1),
    rounds: int = typer.Option(3, min=1),
) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-append-") as tmp:
        asyncio.run(_bench(Path(tmp), cases, batches, rows, concurrency, rounds))


if __name__ == "__main__":
    typer.run(main)
