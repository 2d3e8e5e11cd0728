"""Throughput of the engine next to a bare Temporal workflow of the same shape.

    .venv/bin/python -m bench.throughput --cases 200 --day-ms 100

Opens `--cases` cases on the accelerated demo policy with a policy day of
`--day-ms` milliseconds and measures the time from the first start to the last
completion (server timestamps), on the embedded stack: a private one in a
temporary folder, stopped at the end, unless `--use-running`.

The baseline is `bench.bare.BareCase`: for the same cases and policy, the schedule
of provider calls is derived with the pure decider on a simulated clock
(`dunning.sim.fold.run`); the bare workflow sleeps until each call's offset and runs
one no-op activity there. The variants run one after the other, each on a fresh
in-process worker (SDK defaults) warmed up with a few cases, `--repeat` times
alternating, bare first.

Nothing is taken on trust. Every engine case must close with the reason the
simulation predicts and leave one audit row per event and one outbox row per
provider call; every bare workflow must complete with every activity run. Activity,
timer and history counts come from the histories, CPU time from the processes.

An engine case that falls behind its schedule by more than a whole stage enters the
stage it has reached and skips the ones in between (by design: it does not send a
reminder that is weeks late). It then does less work than the bare workflow, so
its cases/s are not comparable; the report counts the cases that ran the full
schedule and flags a ratio built on fewer.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import typer
from rich.console import Console
from rich.table import Table
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.worker import Worker

from bench.bare import NOOP, TASK_QUEUE_PREFIX, BareCase, noop
from dunning.localstack import stack
from dunning.logging_setup import configure
from dunning.opening import MAX_CONCURRENT_STARTS
from dunning.runtime import running_worker
from dunning.samples import accelerated as fast_policy
from dunning.samples import sample_case as case_input
from dunning.settings import Settings, get_settings
from dunning.sim.fold import run as simulate
from dunning.temporal_client import connect
from schemas.case import CaseInput
from schemas.channels import ACTIVITIES
from schemas.policy import Policy
from workflows.inputs import LoanCollectionInput
from workflows.loan_collection import LoanCollection
from workflows.search import CASE_STATE, DAYS_PAST_DUE, POLICY, STAGE

PROVIDER_EVENTS = frozenset({"contact_attempted", "field_visit_scheduled", "handed_to_legal"})
PROVIDER_ACTIVITIES = frozenset({*ACTIVITIES, NOOP})
POLL_S = 0.1
# Warm-up cases only load code paths into a fresh worker: run them on a short day.
WARMUP_DAY = timedelta(milliseconds=100)
VERIFY_CONCURRENCY = 32

console = Console(width=int(os.environ.get("COLUMNS", "140")))


class BenchError(RuntimeError):
    """The benchmark could not run, or what ran was not what was asked."""


# --- what each case should do -----------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """What the decider does with a case: provider calls at offsets from its opening."""

    offsets: tuple[float, ...]
    events: int
    closed_reason: str

    @property
    def calls(self) -> int:
        return len(self.offsets)


def schedule_of(case: CaseInput, policy: Policy) -> Schedule:
    opened = datetime.now(UTC)
    state, events = simulate(case, policy, opened)
    if state.closed_reason is None:
        raise BenchError(f"{case.case_id}: the simulated case does not close")
    offsets = tuple((e.at - opened).total_seconds() for e in events if e.type in PROVIDER_EVENTS)
    return Schedule(offsets=offsets, events=len(events), closed_reason=state.closed_reason)


@dataclass(frozen=True)
class Job:
    workflow_id: str
    case: CaseInput
    schedule: Schedule
    engine_input: LoanCollectionInput


def make_jobs(prefix: str, count: int, policy: Policy, *, bare: bool) -> list[Job]:
    """The cases, their schedules and inputs, all built before the clock starts."""
    schedules: dict[str, Schedule] = {}
    jobs = []
    for i in range(count):
        case = case_input(f"{prefix}-{i:05d}", policy="demo")
        # Identifiers do not move a schedule: simulate each distinct case once.
        shape = case.model_dump_json(exclude={"borrower": {"id"}, "loan": {"id"}})
        if shape not in schedules:
            schedules[shape] = schedule_of(case, policy)
        jobs.append(
            Job(
                workflow_id=f"bare-{case.loan.id}" if bare else case.case_id,
                case=case,
                schedule=schedules[shape],
                engine_input=LoanCollectionInput(case=case, policy=policy),
            )
        )
    return jobs


# --- the two variants --------------------------------------------------------------------

Start = Callable[[Client, str, Job], Awaitable[WorkflowHandle[Any, Any]]]
WorkerFactory = Callable[[Client, Settings, str], AbstractAsyncContextManager[object]]


@dataclass(frozen=True)
class Variant:
    name: str
    task_queue_prefix: str
    worker: WorkerFactory
    start: Start


@asynccontextmanager
async def _engine_worker(
    client: Client, settings: Settings, task_queue: str
) -> AsyncIterator[object]:
    async with running_worker(settings.model_copy(update={"task_queue": task_queue}), client) as w:
        yield w


async def _start_engine(client: Client, task_queue: str, job: Job) -> WorkflowHandle[Any, Any]:
    """What `starter.open_case` sends, with the benchmark's policy."""
    params = job.engine_input
    return await client.start_workflow(
        LoanCollection.run,
        params,
        id=job.workflow_id,
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(STAGE, "opening"),
                SearchAttributePair(CASE_STATE, "open"),
                SearchAttributePair(POLICY, params.policy.ref),
                SearchAttributePair(DAYS_PAST_DUE, job.case.loan.days_past_due),
            ]
        ),
        static_summary=f"loan {job.case.loan.id} ({params.policy.ref})",
    )


@asynccontextmanager
async def _bare_worker(
    client: Client, settings: Settings, task_queue: str
) -> AsyncIterator[object]:
    async with Worker(client, task_queue=task_queue, workflows=[BareCase], activities=[noop]) as w:
        yield w


async def _start_bare(client: Client, task_queue: str, job: Job) -> WorkflowHandle[Any, Any]:
    return await client.start_workflow(
        BareCase.run, list(job.schedule.offsets), id=job.workflow_id, task_queue=task_queue
    )


BARE = Variant("bare", TASK_QUEUE_PREFIX, _bare_worker, _start_bare)
ENGINE = Variant("engine", "bench-engine", _engine_worker, _start_engine)


# --- CPU time of the processes doing the work -------------------------------------------


@dataclass
class Cpu:
    """CPU seconds: this process (workers and client), the Temporal server, PostgreSQL."""

    worker: float = 0.0
    temporal: float = 0.0
    postgres: float = 0.0

    def __sub__(self, other: Cpu) -> Cpu:
        return Cpu(
            self.worker - other.worker,
            self.temporal - other.temporal,
            self.postgres - other.postgres,
        )


def _process_tree_cpu(pid: int | None) -> float:
    """A process's CPU time plus its children's, live and reaped; NaN when unknown."""
    if pid is None:
        return float("nan")
    try:
        process = psutil.Process(pid)
        times = process.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in process.children(recursive=True):
            try:
                child_times = child.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += child_times.user + child_times.system
        return total
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return float("nan")


def cpu_now(server_pids: dict[str, int | None]) -> Cpu:
    own = psutil.Process().cpu_times()
    return Cpu(
        worker=own.user + own.system,
        temporal=_process_tree_cpu(server_pids.get("temporal")),
        postgres=_process_tree_cpu(server_pids.get("postgres")),
    )


async def idle_rate(pids: dict[str, int | None], seconds: float = 3.0) -> Cpu:
    """CPU seconds per second the servers burn with no worker and no workflow."""
    before = cpu_now(pids)
    began = time.perf_counter()
    await asyncio.sleep(seconds)
    spent = cpu_now(pids) - before
    elapsed = time.perf_counter() - began
    return Cpu(0.0, spent.temporal / elapsed, spent.postgres / elapsed)


def server_pids(settings: Settings) -> dict[str, int | None]:
    """Pids of the embedded servers, when these settings describe a running one."""
    try:
        found = stack.status(settings)
    except Exception:
        return {}
    return {"temporal": found["temporal"]["pid"], "postgres": found["postgres"]["pid"]}


# --- running a batch ---------------------------------------------------------------------


@dataclass
class Batch:
    variant: Variant
    round: int
    task_queue: str
    jobs: list[Job]
    handles: list[WorkflowHandle[Any, Any]] = field(default_factory=list)
    observed_s: float = 0.0  # client side: first start request -> all seen closed
    cpu: Cpu = field(default_factory=Cpu)
    load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average before and after


async def start_and_wait(
    client: Client,
    batch: Batch,
    closed_before: int,
    limit_s: float,
    pids: dict[str, int | None],
    idle: Cpu,
) -> None:
    """Start every workflow (a bounded number at a time, like the starter) and wait.

    The servers' CPU is counted net of what they burn idle over the same time.
    """
    load_before = os.getloadavg()[0]
    gate = asyncio.Semaphore(MAX_CONCURRENT_STARTS)

    async def one(job: Job) -> WorkflowHandle[Any, Any]:
        async with gate:
            return await batch.variant.start(client, batch.task_queue, job)

    cpu_before = cpu_now(pids)
    began = time.perf_counter()
    batch.handles = list(await asyncio.gather(*(one(job) for job in batch.jobs)))
    query = f"TaskQueue = '{batch.task_queue}' AND ExecutionStatus != 'Running'"
    expected = closed_before + len(batch.jobs)
    while (await client.count_workflows(query)).count < expected:
        if time.perf_counter() - began > limit_s:
            raise BenchError(f"{batch.variant.name}: not all closed within {limit_s:.0f} s")
        await asyncio.sleep(POLL_S)
    batch.observed_s = elapsed = time.perf_counter() - began
    spent = cpu_now(pids) - cpu_before
    batch.cpu = Cpu(
        spent.worker,
        spent.temporal - idle.temporal * elapsed,
        spent.postgres - idle.postgres * elapsed,
    )
    batch.load = (load_before, os.getloadavg()[0])


# --- checking and counting what ran ----------------------------------------------------


@dataclass
class HistoryCounts:
    events: int = 0
    activities: int = 0
    provider_activities: int = 0
    timers: int = 0
    upserts: int = 0
    workflow_tasks: int = 0

    def add(self, other: HistoryCounts) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


async def history_counts(handle: WorkflowHandle[Any, Any]) -> HistoryCounts:
    counts = HistoryCounts()
    async for event in handle.fetch_history_events():
        counts.events += 1
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            counts.activities += 1
            name = event.activity_task_scheduled_event_attributes.activity_type.name
            counts.provider_activities += name in PROVIDER_ACTIVITIES
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            counts.timers += 1
        elif kind == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            counts.upserts += 1
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            counts.workflow_tasks += 1
    return counts


@dataclass
class Measured:
    variant: str
    round: int
    cases: int
    full_schedule: int  # cases that made every provider call of the simulated schedule
    seconds: float  # server side: first workflow start -> last workflow close
    observed_seconds: float
    provider_calls: int
    activities: int
    timers: int
    upserts: int
    workflow_tasks: int
    history_events: int
    cpu: Cpu
    load: tuple[float, float]

    @property
    def comparable(self) -> bool:
        return self.full_schedule == self.cases

    @property
    def cases_per_s(self) -> float:
        return self.cases / self.seconds

    @property
    def activities_per_s(self) -> float:
        return self.activities / self.seconds

    @property
    def calls_per_s(self) -> float:
        return self.provider_calls / self.seconds

    def per_case(self, total: float) -> float:
        return total / self.cases

    @property
    def cpu_per_case(self) -> float:
        return self.per_case(self.cpu.worker + self.cpu.temporal + self.cpu.postgres)


async def verify(batch: Batch, pool: asyncpg.Pool) -> tuple[Measured, list[str]]:
    """Check every workflow's outcome, history and records; time it on the server's clock."""
    gate = asyncio.Semaphore(VERIFY_CONCURRENCY)
    engine = batch.variant is ENGINE
    problems: list[str] = []
    starts: list[datetime] = []
    closes: list[datetime] = []
    totals = HistoryCounts()
    full = 0
    expected_rows: dict[str, tuple[int, int]] = {}  # case_id -> (audit rows, outbox rows)

    async def one(job: Job, handle: WorkflowHandle[Any, Any]) -> None:
        nonlocal full
        async with gate:
            described = await handle.describe()
            if described.status != WorkflowExecutionStatus.COMPLETED:
                problems.append(f"{job.workflow_id}: {described.status}")
                return
            assert described.close_time is not None
            starts.append(described.start_time)
            closes.append(described.close_time)
            result = await handle.result()
            counts = await history_counts(handle)
        totals.add(counts)
        calls = counts.provider_activities
        full += calls == job.schedule.calls
        if engine:
            if result.state != "closed" or result.closed_reason != job.schedule.closed_reason:
                problems.append(
                    f"{job.workflow_id}: {result.state}/{result.closed_reason}, "
                    f"expected closed/{job.schedule.closed_reason}"
                )
            expected_rows[job.case.case_id] = (result.events, calls)
        elif result != job.schedule.calls or calls != job.schedule.calls:
            problems.append(
                f"{job.workflow_id}: {calls} activities ran, expected {job.schedule.calls}"
            )

    await asyncio.gather(*(one(job, h) for job, h in zip(batch.jobs, batch.handles, strict=True)))
    if engine:
        problems += await _check_records(pool, expected_rows)
    if not starts:
        raise BenchError(f"{batch.variant.name}: no workflow completed: {problems[:5]}")
    measured = Measured(
        variant=batch.variant.name,
        round=batch.round,
        cases=len(batch.jobs),
        full_schedule=full,
        seconds=(max(closes) - min(starts)).total_seconds(),
        observed_seconds=batch.observed_s,
        provider_calls=totals.provider_activities,
        activities=totals.activities,
        timers=totals.timers,
        upserts=totals.upserts,
        workflow_tasks=totals.workflow_tasks,
        history_events=totals.events,
        cpu=batch.cpu,
        load=batch.load,
    )
    return measured, problems


async def _check_records(pool: asyncpg.Pool, expected: dict[str, tuple[int, int]]) -> list[str]:
    """One audit row per event the case reports, one outbox row per provider call it made."""
    ids = list(expected)
    async with pool.acquire() as conn:
        audit = dict(
            await conn.fetch(
                "SELECT case_id, count(*) FROM audit_events WHERE case_id = ANY($1) "
                "GROUP BY case_id",
                ids,
            )
        )
        outbox = dict(
            await conn.fetch(
                "SELECT case_id, count(*) FROM outbox WHERE case_id = ANY($1) GROUP BY case_id",
                ids,
            )
        )
    problems = []
    for case_id, (events, calls) in expected.items():
        if audit.get(case_id, 0) != events:
            problems.append(f"{case_id}: {audit.get(case_id, 0)} audit rows, {events} events")
        if outbox.get(case_id, 0) != calls:
            problems.append(f"{case_id}: {outbox.get(case_id, 0)} outbox rows, {calls} calls")
    return problems


async def run_phase(
    client: Client,
    settings: Settings,
    pool: asyncpg.Pool,
    variant: Variant,
    *,
    tag: str,
    round_: int,
    cases: int,
    warmup: int,
    policy: Policy,
    limit_s: float,
    idle: Cpu,
) -> tuple[Measured, list[str]]:
    """Warm a fresh worker up, run and measure one batch; verify once the worker stopped."""
    prefix = f"BENCH-{tag}-{variant.name[0]}{round_}"
    task_queue = f"{variant.task_queue_prefix}-{tag}-{round_}"
    bare = variant is BARE
    warm_policy = fast_policy(WARMUP_DAY)
    warm = Batch(
        variant, round_, task_queue, make_jobs(f"{prefix}w", warmup, warm_policy, bare=bare)
    )
    batch = Batch(variant, round_, task_queue, make_jobs(prefix, cases, policy, bare=bare))
    pids = server_pids(settings)
    async with variant.worker(client, settings, task_queue):
        if warm.jobs:
            await start_and_wait(client, warm, 0, limit_s, pids, idle)
        await start_and_wait(client, batch, len(warm.jobs), limit_s, pids, idle)
    measured, problems = await verify(batch, pool)
    if warm.jobs:
        _, warm_problems = await verify(warm, pool)
        problems += [f"(warm-up) {p}" for p in warm_problems]
    return measured, problems


# --- the report ----------------------------------------------------------------------


def ratios(results: list[Measured]) -> dict[int, float]:
    """Per round: engine cases/s over bare cases/s."""
    by_round: dict[int, dict[str, Measured]] = {}
    for m in results:
        by_round.setdefault(m.round, {})[m.variant] = m
    return {
        r: pair["engine"].cases_per_s / pair["bare"].cases_per_s
        for r, pair in by_round.items()
        if "engine" in pair and "bare" in pair
    }


def cpu_ratios(results: list[Measured]) -> dict[int, float]:
    """Per round: engine CPU time per case over bare CPU time per case (all processes)."""
    by_round: dict[int, dict[str, Measured]] = {}
    for m in results:
        by_round.setdefault(m.round, {})[m.variant] = m
    return {
        r: pair["engine"].cpu_per_case / pair["bare"].cpu_per_case
        for r, pair in by_round.items()
        if "engine" in pair and "bare" in pair
    }


def _ms(seconds: float) -> str:
    return "n/a" if seconds != seconds else f"{seconds * 1000:.0f}"


def report(results: list[Measured], day_ms: int) -> list[Table]:
    per_round = ratios(results)
    skipped = {m.round for m in results if m.variant == "engine" and not m.comparable}
    speed = Table(title=f"Throughput (policy day {day_ms} ms)", title_justify="left")
    for header in ("variant", "round", "cases", "seconds", "cases/s", "activities/s"):
        speed.add_column(header, justify="left" if header == "variant" else "right")
    speed.add_column("provider calls/s", justify="right")
    speed.add_column("engine/bare cases/s", justify="right")
    for m in results:
        ratio = per_round.get(m.round) if m.variant == "engine" else None
        flag = " (!)" if m.round in skipped else ""
        speed.add_row(
            m.variant,
            str(m.round),
            str(m.cases),
            f"{m.seconds:.2f}",
            f"{m.cases_per_s:.2f}",
            f"{m.activities_per_s:.1f}",
            f"{m.calls_per_s:.1f}",
            f"{ratio:.2f}{flag}" if ratio is not None else "",
        )
    if len(per_round) > 1:
        speed.add_section()
        median = statistics.median(per_round.values())
        speed.add_row("median", *[""] * (len(speed.columns) - 2), f"{median:.2f}")

    cost = Table(title="Per case", title_justify="left")
    for header in (
        "variant",
        "round",
        "full schedule",
        "activities",
        "timers",
        "upserts",
        "wf tasks",
        "history events",
        "CPU ms worker",
        "CPU ms temporal",
        "CPU ms postgres",
        "CPU ms total",
        "engine/bare CPU",
    ):
        cost.add_column(header, justify="left" if header == "variant" else "right")
    per_round_cpu = cpu_ratios(results)
    for m in results:
        cpu_ratio = per_round_cpu.get(m.round) if m.variant == "engine" else None
        flag = " (!)" if m.round in skipped else ""
        cost.add_row(
            m.variant,
            str(m.round),
            f"{m.full_schedule}/{m.cases}",
            f"{m.per_case(m.activities):.1f}",
            f"{m.per_case(m.timers):.1f}",
            f"{m.per_case(m.upserts):.1f}",
            f"{m.per_case(m.workflow_tasks):.1f}",
            f"{m.per_case(m.history_events):.0f}",
            _ms(m.per_case(m.cpu.worker)),
            _ms(m.per_case(m.cpu.temporal)),
            _ms(m.per_case(m.cpu.postgres)),
            _ms(m.cpu_per_case),
            f"{cpu_ratio:.2f}{flag}" if cpu_ratio is not None and cpu_ratio == cpu_ratio else "",
        )
    if len(per_round_cpu) > 1:
        cost.add_section()
        median = statistics.median(per_round_cpu.values())
        cost.add_row("median", *[""] * (len(cost.columns) - 2), f"{median:.2f}")
    return [speed, cost]


def machine() -> dict[str, str]:
    return {
        "cpus": str(os.cpu_count()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "temporalio": version("temporalio"),
    }


# --- entry point -------------------------------------------------------------------------


async def bench(
    settings: Settings,
    *,
    cases: int,
    day_ms: int,
    repeat: int,
    warmup: int,
    limit_s: float,
) -> tuple[list[Measured], list[str], Schedule]:
    policy = fast_policy(timedelta(milliseconds=day_ms))
    shape = schedule_of(case_input("BENCH-shape", policy="demo"), policy)
    console.print(
        f"case shape: {shape.calls} provider calls over {shape.offsets[-1]:.2f} s "
        f"(last at offset), {shape.events} domain events, closes as {shape.closed_reason}"
    )
    client = await connect(settings)
    tag = uuid.uuid4().hex[:6]
    results: list[Measured] = []
    problems: list[str] = []
    idle = await idle_rate(server_pids(settings))
    console.print(
        f"idle servers: temporal {idle.temporal * 1000:.0f} ms CPU/s, "
        f"postgres {idle.postgres * 1000:.0f} ms CPU/s (subtracted from their CPU per case)"
    )
    async with asyncpg.create_pool(settings.database_url, min_size=1, max_size=4) as pool:
        for round_ in range(1, repeat + 1):
            for variant in (BARE, ENGINE):
                measured, found = await run_phase(
                    client,
                    settings,
                    pool,
                    variant,
                    tag=tag,
                    round_=round_,
                    cases=cases,
                    warmup=warmup,
                    policy=policy,
                    limit_s=limit_s,
                    idle=idle,
                )
                console.print(
                    f"round {round_} {variant.name}: {measured.cases} cases in "
                    f"{measured.seconds:.2f} s ({measured.cases_per_s:.2f}/s), "
                    f"full schedule {measured.full_schedule}/{measured.cases}, "
                    f"load {measured.load[0]:.1f}->{measured.load[1]:.1f}, {len(found)} problems"
                )
                results.append(measured)
                problems += found
    return results, problems, shape


app = typer.Typer(add_completion=False, pretty_exceptions_show_locals=False)


@app.command()
def main(
    cases: int = typer.Option(200, min=1, help="cases per variant and round"),
    day_ms: int = typer.Option(100, min=1, help="length of a policy day, in milliseconds"),
    repeat: int = typer.Option(1, min=1, help="rounds of bare then engine"),
    warmup: int = typer.Option(10, min=0, help="cases run first on each fresh worker, unmeasured"),
    use_running: bool = typer.Option(
        False, help="use the stack of the settings (dunning dev up) instead of a private one"
    ),
    timeout: float = typer.Option(900, help="seconds to wait for a batch to close"),
    json_out: Path | None = typer.Option(None, "--json", help="also write the figures here"),
    log_level: str = typer.Option("WARNING", help="log level of the workers"),
) -> None:
    """Cases per second of the engine and of a bare workflow of the same shape."""
    configure("console", log_level)
    options: dict[str, Any] = dict(
        cases=cases, day_ms=day_ms, repeat=repeat, warmup=warmup, limit_s=timeout
    )
    if use_running:
        outcome = asyncio.run(bench(get_settings(), **options))
    else:
        with tempfile.TemporaryDirectory(
            prefix="dunning-bench-", ignore_cleanup_errors=True
        ) as tmp:
            settings = stack.private_settings(Path(tmp))
            try:
                began = time.perf_counter()
                stack.up(settings)
                console.print(f"private stack up in {time.perf_counter() - began:.1f} s ({tmp})")
                outcome = asyncio.run(bench(settings, **options))
            finally:
                stack.down(settings)
    results, problems, shape = outcome
    for table in report(results, day_ms):
        console.print(table)
    about = machine()
    console.print(", ".join(f"{k} {v}" for k, v in about.items()))
    if json_out is not None:
        json_out.write_text(
            json.dumps(
                {
                    "options": options,
                    "machine": about,
                    "shape": asdict(shape),
                    "results": [{**asdict(m), "cases_per_s": m.cases_per_s} for m in results],
                    "ratios": ratios(results),
                    "cpu_ratios": cpu_ratios(results),
                    "problems": problems,
                },
                indent=2,
            )
        )
    behind = [m for m in results if m.variant == "engine" and not m.comparable]
    for m in behind:
        console.print(
            f"[yellow]round {m.round}: only {m.full_schedule}/{m.cases} engine cases kept the "
            "full schedule; the others fell a stage behind and skipped it, so they did less "
            "work than the bare workflow and the ratio (!) overstates the engine. "
            "Use a longer --day-ms or fewer --cases.[/yellow]"
        )
    if problems:
        console.print(f"[red]{len(problems)} problems[/red], e.g.:")
        for problem in problems[:10]:
            console.print(f"  {problem}")
        sys.exit(1)
    console.print(
        "verified: every engine case closed as simulated with its audit and outbox rows, "
        "every bare workflow ran all its activities"
    )


if __name__ == "__main__":
    app()
