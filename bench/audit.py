"""How fast the auditor's tools check cases: `verify` (log) against `replay` (histories).

    .venv/bin/python -m bench.audit --cases 1000

On a private embedded stack (a temporary folder, stopped at the end) this produces
`--cases` closed cases on the accelerated demo policy (`dunning.samples.accelerated`,
a policy day of `--day-ms`), with mixed paths: most walk to legal, some are paid in
full (by the `payment` signal or the `record_payment` update), some paused and
resumed, some partially paid and then walked to legal, a few continue-as-new into
several runs. Cases are started 32 at a time, like the starter, by an in-process
worker with the shipped settings (`worker.running_worker`), which is stopped once
every case has closed.

Then, one after the other on the same closed cases, it times:

- **verify, log only**: `dunning.audit.verify.verify_case` with no client: read the
  rows, check the hash chain, fold the events with `evolve` (`dunning audit verify
  --all --no-live`).
- **verify, live**: the same plus the live comparison: describe the workflow and
  compare the rebuilt status with its result (`dunning audit verify --all`).
- **replay**: `dunning.audit.replay.fetch_histories` for every case (every run of its
  continue-as-new chain), then `replay_histories` in batches of `replay.BATCH`, as
  `replay_all` does; fetching and replaying are timed apart.

Verify runs the cases one after another, as the CLI does (`--verify-concurrency` to
change); fetching histories uses `replay.FETCH_CONCURRENCY`, as `replay_all` does.
Every case must verify OK and replay deterministically, or the run exits with status 1.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import Client, WorkflowHandle, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.service import RPCError

from bench.throughput import Cpu, cpu_now, idle_rate, machine, server_pids
from dunning.audit import replay
from dunning.audit.verify import CaseReport, verify_case
from dunning.localstack import stack
from dunning.logging_setup import configure
from dunning.opening import MAX_CONCURRENT_STARTS
from dunning.runtime import running_worker
from dunning.samples import SAMPLE_TOTAL as TOTAL
from dunning.samples import accelerated as fast_policy
from dunning.samples import sample_case as case_input
from dunning.settings import Settings
from dunning.temporal_client import connect
from schemas.commands import Pause, Payment, Resume
from workflows.inputs import LoanCollectionInput
from workflows.loan_collection import LoanCollection
from workflows.search import CASE_STATE, DAYS_PAST_DUE, POLICY, STAGE

console = Console(width=int(os.environ.get("COLUMNS", "140")))
Handle = WorkflowHandle[Any, Any]


class BenchError(RuntimeError):
    """The benchmark could not run, or what ran was not what was asked."""


# --- the cases: mixed paths ----------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One kind of case: what is done to it after it opens, how it should close."""

    name: str
    share: int  # out of SHARES
    closes_as: str
    max_events_per_run: int | None = None


LEGAL = Route("legal", 55, "transferred_to_legal")
PAID_SIGNAL = Route("paid (signal)", 10, "paid")
PAID_UPDATE = Route("paid (update)", 10, "paid")
PARTIAL = Route("partially paid", 10, "transferred_to_legal")
PAUSED = Route("paused, resumed", 10, "transferred_to_legal")
CONTINUED = Route("paused, 10 payments, cap 10", 5, "transferred_to_legal", max_events_per_run=10)
ROUTES = (LEGAL, PAID_SIGNAL, PAID_UPDATE, PARTIAL, PAUSED, CONTINUED)
SHARES = sum(p.share for p in ROUTES)


# Every route spread evenly over a cycle of SHARES cases, so every batch of starts
# holds every route.
CYCLE = tuple(
    route
    for _, _, route in sorted(
        ((j + 0.5) / r.share, n, r) for n, r in enumerate(ROUTES) for j in range(r.share)
    )
)


def route_for(i: int) -> Route:
    return CYCLE[i % SHARES]


async def _act(
    path: Route, handle: Handle, case_id: str, day: float, outcome: Counter[str]
) -> None:
    """Drive one case down its path. An action that finds the case already past the
    point it was meant for (closed, or moved on) is counted, not fatal."""
    try:
        if path is PAID_SIGNAL:
            await asyncio.sleep(day)
            await handle.signal(LoanCollection.payment, Payment(amount=TOTAL, reference="P-full"))
        elif path is PAID_UPDATE:
            await asyncio.sleep(day)
            await handle.execute_update(
                LoanCollection.record_payment, Payment(amount=TOTAL, reference="P-upd")
            )
        elif path is PARTIAL:
            await asyncio.sleep(day)
            part = Payment(amount=Decimal("300.00"), reference="P-part")
            await handle.signal(LoanCollection.payment, part)
            await handle.signal(LoanCollection.payment, part)  # a duplicate counts once
        elif path is PAUSED:
            await asyncio.sleep(day)
            await handle.signal(LoanCollection.pause, Pause(operator="op-7", reason="hardship"))
            await asyncio.sleep(3 * day)
            await handle.execute_update(
                LoanCollection.resume_case, Resume(operator="op-9", reason="review done")
            )
        elif path is CONTINUED:
            # Meant to continue as new: a paused case waits, flushes and checks its cap,
            # and ten small payments take it past max_events_per_run. Only when the
            # worker keeps up: a case that is behind handles pause, payments and resume
            # in one go and never waits (see "cases with more than one run").
            await asyncio.sleep(day)
            await handle.signal(LoanCollection.pause, Pause(operator="op-7", reason="review"))
            for n in range(10):
                small = Payment(amount=Decimal("10.00"), reference=f"P-small-{n}")
                await handle.signal(LoanCollection.payment, small)
            await asyncio.sleep(3 * day)
            await handle.signal(LoanCollection.resume, Resume(operator="op-9", reason="done"))
        else:
            return
        outcome[f"{path.name}: sent"] += 1
    except (RPCError, WorkflowUpdateFailedError) as exc:
        outcome[f"{path.name}: {type(exc).__name__}"] += 1


@dataclass
class Produced:
    case_ids: list[str]
    seconds: float
    closed_as: dict[str, dict[str, int]]  # path -> closed reason -> cases
    actions: dict[str, int]
    unexpected: int  # cases that closed other than their path's usual way


async def produce(
    client: Client, settings: Settings, count: int, day: timedelta, limit_s: float
) -> Produced:
    """Start `count` cases, drive their paths and wait until all are closed."""
    policy = fast_policy(day)
    tag = uuid.uuid4().hex[:6]
    gate = asyncio.Semaphore(MAX_CONCURRENT_STARTS)
    outcome: Counter[str] = Counter()
    closed: dict[str, Counter[str]] = {p.name: Counter() for p in ROUTES}
    ids: list[str] = []
    done = 0

    async def one(i: int) -> None:
        nonlocal done
        path = route_for(i)
        case = case_input(f"AUD-{tag}-{i:05d}")
        params = LoanCollectionInput(
            case=case, policy=policy, max_events_per_run=path.max_events_per_run
        )
        async with gate:
            handle = await client.start_workflow(
                LoanCollection.run,
                params,
                id=case.case_id,
                task_queue=settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes(
                    [
                        SearchAttributePair(STAGE, "opening"),
                        SearchAttributePair(CASE_STATE, "open"),
                        SearchAttributePair(POLICY, policy.ref),
                        SearchAttributePair(DAYS_PAST_DUE, case.loan.days_past_due),
                    ]
                ),
                static_summary=f"loan {case.loan.id} ({policy.ref})",
            )
        ids.append(case.case_id)
        await _act(path, handle, case.case_id, day.total_seconds(), outcome)
        result = await handle.result()
        closed[path.name][str(result.closed_reason)] += 1
        done += 1

    began = time.perf_counter()

    async def progress() -> None:
        while True:
            await asyncio.sleep(15)
            console.print(
                f"  {time.perf_counter() - began:5.0f} s: {len(ids)} started, {done} closed"
            )

    ticker = asyncio.create_task(progress())
    try:
        async with running_worker(settings, client):
            await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(count))), limit_s)
    finally:
        ticker.cancel()
    seconds = time.perf_counter() - began
    unexpected = sum(
        n for p in ROUTES for reason, n in closed[p.name].items() if reason != p.closes_as
    )
    return Produced(
        case_ids=sorted(ids),
        seconds=seconds,
        closed_as={name: dict(c) for name, c in closed.items()},
        actions=dict(sorted(outcome.items())),
        unexpected=unexpected,
    )


# --- the measured phases ----------------------------------------------------------------


@dataclass
class Phase:
    name: str
    cases: int
    seconds: float
    cpu: Cpu
    detail: str = ""

    @property
    def cases_per_s(self) -> float:
        return self.cases / self.seconds

    def ms_per_case(self, cpu_s: float) -> str:
        # Less the servers' idle burn, which is noisy: a server that did nothing shows 0.
        return "n/a" if cpu_s != cpu_s else f"{max(cpu_s, 0.0) / self.cases * 1000:.1f}"


class Clock:
    """Wall time and CPU time of this process and the servers, less the servers' idle."""

    def __init__(self, pids: dict[str, int | None], idle: Cpu) -> None:
        self.pids, self.idle = pids, idle

    async def time(self, body: Callable[[], Awaitable[Any]]) -> tuple[Any, float, Cpu]:
        before = cpu_now(self.pids)
        began = time.perf_counter()
        result = await body()
        seconds = time.perf_counter() - began
        spent = cpu_now(self.pids) - before
        spent.temporal -= self.idle.temporal * seconds
        spent.postgres -= self.idle.postgres * seconds
        return result, seconds, spent


async def verify_all(
    pool: asyncpg.Pool, client: Client | None, ids: list[str], concurrency: int
) -> list[CaseReport]:
    gate = asyncio.Semaphore(concurrency)

    async def one(case_id: str) -> CaseReport:
        async with gate:
            return await verify_case(pool, case_id, client)

    if concurrency == 1:  # exactly as `dunning audit verify --all` does
        return [await verify_case(pool, case_id, client) for case_id in ids]
    return list(await asyncio.gather(*(one(c) for c in ids)))


async def fetch_all(client: Client, ids: list[str]) -> list[list[WorkflowHistory]]:
    gate = asyncio.Semaphore(replay.FETCH_CONCURRENCY)

    async def one(case_id: str) -> list[WorkflowHistory]:
        async with gate:
            return await replay.fetch_histories(client, case_id)

    return list(await asyncio.gather(*(one(c) for c in ids)))


async def replay_all(
    client: Client, fetched: list[list[WorkflowHistory]]
) -> list[replay.ReplayReport]:
    """With the client's data converter (payload codec included), as `replay_all` does."""
    reports: list[replay.ReplayReport] = []
    for start in range(0, len(fetched), replay.BATCH):
        chunk = fetched[start : start + replay.BATCH]
        reports += await replay.replay_histories(
            (h for runs in chunk for h in runs), data_converter=client.data_converter
        )
    return reports


@dataclass
class Outcome:
    produced: Produced
    phases: list[Phase]
    shape: dict[str, float]
    problems: list[str]


async def bench(settings: Settings, cases: int, day_ms: int, concurrency: int) -> Outcome:
    client = await connect(settings)
    pids = server_pids(settings)
    day = timedelta(milliseconds=day_ms)
    console.print(f"producing {cases} cases on a {day_ms} ms policy day ...")
    produced = await produce(client, settings, cases, day, limit_s=1200)
    console.print(
        f"produced {len(produced.case_ids)} closed cases in {produced.seconds:.1f} s "
        f"({len(produced.case_ids) / produced.seconds:.2f}/s); worker stopped"
    )
    ids = produced.case_ids
    idle = await idle_rate(pids)
    clock = Clock(pids, idle)
    problems: list[str] = []
    phases: list[Phase] = []

    async with asyncpg.create_pool(settings.database_url, min_size=1, max_size=4) as pool:
        for name, with_client in (("verify, log only", None), ("verify, live", client)):

            def verify(c: Client | None = with_client) -> Awaitable[list[CaseReport]]:
                return verify_all(pool, c, ids, concurrency)

            reports, seconds, cpu = await clock.time(verify)
            bad = [r for r in reports if not r.ok]
            live = Counter(r.live for r in reports)
            problems += [f"{name}: {r.case_id}: {r.problems[0]}" for r in bad]
            phases.append(
                Phase(
                    name,
                    len(reports),
                    seconds,
                    cpu,
                    f"{len(reports) - len(bad)}/{len(reports)} OK; "
                    + ", ".join(f"{k} {v}" for k, v in sorted(live.items())),
                )
            )
            console.print(f"{name}: {seconds:.1f} s, {phases[-1].detail}")
        rows = sum(r.rows for r in reports)

    fetched, fetch_s, fetch_cpu = await clock.time(lambda: fetch_all(client, ids))
    console.print(f"fetch histories: {fetch_s:.1f} s")
    replayed, replay_s, replay_cpu = await clock.time(lambda: replay_all(client, fetched))
    console.print(f"replay: {replay_s:.1f} s")
    diverged = [r for r in replayed if not r.deterministic]
    problems += [f"replay: {r.case_id}: {r.detail}" for r in diverged]
    if sorted(r.case_id for r in replayed) != ids:
        problems.append(f"replay: {len(replayed)} reports for {len(ids)} cases")
    runs = sum(len(r) for r in fetched)
    chained = sum(len(r) > 1 for r in fetched)
    events = sum(len(h.events) for r in fetched for h in r)
    size = sum(len(json.dumps(h.to_json_dict())) for r in fetched for h in r)
    note = f"{len(replayed) - len(diverged)}/{len(replayed)} deterministic"
    phases.append(Phase("replay: fetch histories", len(ids), fetch_s, fetch_cpu))
    phases.append(Phase("replay: replay", len(ids), replay_s, replay_cpu, note))
    phases.append(
        Phase(
            "replay, total",
            len(ids),
            fetch_s + replay_s,
            Cpu(
                max(fetch_cpu.worker, 0) + max(replay_cpu.worker, 0),
                max(fetch_cpu.temporal, 0) + max(replay_cpu.temporal, 0),
                max(fetch_cpu.postgres, 0) + max(replay_cpu.postgres, 0),
            ),
            note,
        )
    )
    shape = {
        "audit rows per case": rows / len(ids),
        "runs per case": runs / len(ids),
        "cases with more than one run": chained,
        "history events per case": events / len(ids),
        "history KiB per case (JSON)": size / len(ids) / 1024,
    }
    return Outcome(produced, phases, shape, problems)


# --- the report ---------------------------------------------------------------------------


def report(outcome: Outcome, day_ms: int) -> list[Table]:
    produced = outcome.produced
    cases = Table(title=f"Cases produced (policy day {day_ms} ms)", title_justify="left")
    cases.add_column("path")
    cases.add_column("cases", justify="right")
    cases.add_column("closed as")
    for path in ROUTES:
        closed = produced.closed_as.get(path.name, {})
        cases.add_row(
            path.name,
            str(sum(closed.values())),
            ", ".join(f"{reason} {n}" for reason, n in sorted(closed.items())),
        )
    cases.add_section()
    n = len(produced.case_ids)
    if produced.unexpected:
        cases.add_row("(closed otherwise)", str(produced.unexpected), "action came too late")
    cases.add_row("all", str(n), f"in {produced.seconds:.1f} s ({n / produced.seconds:.2f}/s)")

    speed = Table(title="Audit verify and replay", title_justify="left")
    for header in ("phase", "cases", "seconds", "cases/s", "ms/case"):
        speed.add_column(header, justify="left" if header == "phase" else "right")
    for header in ("CPU ms/case bench", "CPU ms/case temporal", "CPU ms/case postgres"):
        speed.add_column(header, justify="right")
    speed.add_column("result")
    for phase in outcome.phases:
        if phase.name == "replay, total":
            speed.add_section()
        speed.add_row(
            phase.name,
            str(phase.cases),
            f"{phase.seconds:.2f}",
            f"{phase.cases_per_s:.1f}",
            f"{phase.seconds / phase.cases * 1000:.1f}",
            phase.ms_per_case(phase.cpu.worker),
            phase.ms_per_case(phase.cpu.temporal),
            phase.ms_per_case(phase.cpu.postgres),
            phase.detail,
        )
    return [cases, speed]


def ratios(phases: list[Phase]) -> dict[str, float]:
    by = {p.name: p for p in phases}
    total = by["replay, total"]
    return {
        "replay/verify (log only)": total.cases_per_s / by["verify, log only"].cases_per_s,
        "replay/verify (live)": total.cases_per_s / by["verify, live"].cases_per_s,
        "fetch share of replay": by["replay: fetch histories"].seconds / total.seconds,
    }


# --- entry point -------------------------------------------------------------------------

app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(
    cases: int = typer.Option(1000, min=1, help="closed cases to produce and check"),
    day_ms: int = typer.Option(200, min=1, help="length of a policy day, in milliseconds"),
    verify_concurrency: int = typer.Option(
        1, min=1, help="cases verified at once (the CLI verifies one after another)"
    ),
    json_out: Path | None = typer.Option(None, "--json", help="also write the figures here"),
    log_level: str = typer.Option("WARNING", help="log level of the worker"),
) -> None:
    """Cases per second of `audit verify` (with and without live) and of history replay."""
    configure("console", log_level)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dunning-bench-", ignore_cleanup_errors=True) as tmp:
        settings = stack.private_settings(Path(tmp))
        try:
            stack.up(settings)
            console.print(f"private stack up in {time.perf_counter() - began:.1f} s ({tmp})")
            outcome = asyncio.run(bench(settings, cases, day_ms, verify_concurrency))
        finally:
            stack.down(settings)
    for table in report(outcome, day_ms):
        console.print(table)
    found = ratios(outcome.phases)
    console.print(
        f"replay/verify throughput: {found['replay/verify (log only)']:.2f}x verify log only, "
        f"{found['replay/verify (live)']:.2f}x verify live; fetching is "
        f"{found['fetch share of replay']:.0%} of replay's time"
    )
    console.print(", ".join(f"{k} {v:.4g}" for k, v in outcome.shape.items()))
    if outcome.produced.actions:
        console.print(
            "actions: " + ", ".join(f"{k} {v}" for k, v in outcome.produced.actions.items())
        )
    about = machine()
    load = os.getloadavg()
    console.print(
        ", ".join(f"{k} {v}" for k, v in about.items())
        + f"; load {load[0]:.1f}; {time.perf_counter() - began:.0f} s in all"
    )
    if json_out is not None:
        json_out.write_text(
            json.dumps(
                {
                    "options": {
                        "cases": cases,
                        "day_ms": day_ms,
                        "concurrency": verify_concurrency,
                    },
                    "machine": about,
                    "produced": {
                        **asdict(outcome.produced),
                        "case_ids": len(outcome.produced.case_ids),
                    },
                    "phases": [{**asdict(p), "cases_per_s": p.cases_per_s} for p in outcome.phases],
                    "ratios": found,
                    "shape": outcome.shape,
                    "problems": outcome.problems,
                },
                indent=2,
            )
        )
    if outcome.problems:
        console.print(f"[red]{len(outcome.problems)} problems[/red], e.g.:")
        for problem in outcome.problems[:10]:
            console.print(f"  {problem}")
        sys.exit(1)
    console.print("every case verified OK (log only and live) and replayed deterministically")


if __name__ == "__main__":
    app()
