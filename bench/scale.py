"""Scale: N open cases on the default policy, what opening them costs against bare
starts, what holding them costs, and the morning burst when every one is due at once.

    .venv/bin/python -m bench.scale --cases 2000
    .venv/bin/python -m bench.scale --cases 20000 --sms-rate 50

On a private embedded stack (Temporal dev server on SQLite and PostgreSQL, in a
temporary folder, stopped at the end), in four phases:

1. **Opening, no worker running**, so the comparison isolates the start path: in
   `--rounds` interleaved rounds (the server's database grows as it goes; alternating
   spreads that over every path), `--cases`/2 of each: bare starts
   (`client.start_workflow` of `bench.bare.BareCase`, a one-number input, no search
   attributes), shaped starts (the same workflow type with the engine's input, search
   attributes and summary), cases through the starter (`dunning.opening.open_cases`,
   as `dunning open` calls it, with its progress bar) and through `POST /cases` in
   batches of `--batch` (the API in this process, uvicorn on loopback,
   `--api-requests` batches in flight); the same client, `MAX_CONCURRENT_STARTS` in
   flight. Printed: cases/s of each, each path's ratio to bare, client CPU per case,
   the input payload's size.
2. **First tasks**: a worker (`python worker.py`, its own process) starts; the time
   until every case has run its first workflow tasks (its first SMS deferred to the
   window's opening, `contact_deferred` in the audit log).
3. **Holding them**: RSS of the worker and the Temporal server, PSS of PostgreSQL's
   processes; Temporal's SQLite file and PostgreSQL's database, in all and per case
   (the bare starts' share of the SQLite file measured apart and taken off).
4. **The morning burst**: every case's borrower lives in one time zone (`--burst-tz`,
   or chosen so that the next 08:00 opening of the default policy's contact window is
   just after phase 2 should be over, `--burst-lead` minutes from the start), so every
   first SMS is due at that one instant. Until all are delivered (the sandbox
   provider's outbox rows): the time to drain, the lateness from due (the deferral's
   `until`) to delivered (`outbox.created_at`) p50/p99/max, provider calls per second
   (per 1-second bucket, and the most in any sliding 1-second window), and whether that
   exceeded `--sms-rate`.

`--sms-rate` is the SMS partner's limit (calls/s). The worker is given it as
`DUNNING_PARTNER_RATES={"sms": rate}`, the per-partner pacing setting (branch
`pacing`); on a tree without that setting the worker ignores it and the table says so.
The check is computed against the option either way.

Exits 1 if a case is not opened, does not reach its deferral, or its SMS is not
delivered by `--burst-timeout` minutes after the opening.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from pathlib import Path
from typing import Any
from zoneinfo import TZPATH, ZoneInfo, available_timezones

import asyncpg
import httpx
import psutil
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy

from bench.api_open import run_batches
from bench.bare import BareCase
from dunning import opening
from dunning.api import tokens
from dunning.api.app import create_app
from dunning.api.server import running_api
from dunning.localstack import postgres, stack, temporal
from dunning.logging_setup import configure
from dunning.policies import load
from dunning.samples import sample_payload
from dunning.settings import Settings
from dunning.temporal_client import connect
from schemas.case import CaseInput
from schemas.roles import Role
from workflows.inputs import LoanCollectionInput

ROOT = Path(__file__).resolve().parent.parent
console = Console()
PATHS = ("bare", "shaped", "starter", "api")
app = typer.Typer(add_completion=False)

# The worker's setting for a partner's calls per second (branch `pacing`:
# `Settings.partner_rates`, JSON {partner: rate}): `--sms-rate` goes to the worker
# through it. Where Settings has no such field the variable is ignored (extra="ignore")
# and the tables say the limit was not applied.
PACING_ENV = "DUNNING_PARTNER_RATES"
PACING_APPLIED = "partner_rates" in Settings.model_fields


# --- the time zone of the burst ----------------------------------------------------------


def window_start_of_default() -> Any:
    window = load("default").contact_window
    if window is None:
        raise SystemExit("the default policy has no contact window: no morning burst")
    return window.start


def next_opening(zone: str, after: datetime) -> datetime:
    """The first instant after `after` at which the default policy's window opens in
    `zone` (its start time, borrower-local)."""
    tz = ZoneInfo(zone)
    local = after.astimezone(tz)
    start = window_start_of_default()
    candidate = datetime.combine(local.date(), start, tzinfo=tz)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), start, tzinfo=tz)
    return candidate.astimezone(UTC)


def canonical_zones() -> set[str]:
    """The zones of the tz database's `zone1970.tab` (no backward-compatible links such
    as America/Ensenada); every available zone if that table is not found."""
    for folder in TZPATH:
        table = Path(folder) / "zone1970.tab"
        if table.is_file():
            lines = table.read_text(encoding="utf-8").splitlines()
            return {ln.split("\t")[2] for ln in lines if ln and not ln.startswith("#")}
    return {z for z in available_timezones() if "/" in z and not z.startswith(("posix/", "right/"))}


def choose_zone(earliest: datetime) -> tuple[str, datetime]:
    """The zone whose next opening comes first at or after `earliest` (then
    alphabetically)."""
    best: tuple[datetime, str] | None = None
    for zone in canonical_zones():
        opens = next_opening(zone, earliest - timedelta(microseconds=1))
        key = (opens, zone)
        if best is None or key < best:
            best = key
    assert best is not None
    return best[1], best[0]


# --- phase 1: opening ----------------------------------------------------------------


@dataclass
class Opened:
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PATHS, 0.0))
    counts: Counter[str] = field(default_factory=Counter)
    sqlite_growth: Counter[str] = field(default_factory=Counter)
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PATHS, 0.0))
    problems: list[str] = field(default_factory=list)
    case_ids: list[str] = field(default_factory=list)


def sqlite_bytes(state_dir: Path) -> int:
    base = temporal.db_file(state_dir)
    return sum(
        p.stat().st_size
        for p in (base, base.with_name(base.name + "-wal"), base.with_name(base.name + "-shm"))
        if p.exists()
    )


async def bare_starts(client: Client, ids: Sequence[str], queue: str) -> list[str]:
    gate = asyncio.Semaphore(opening.MAX_CONCURRENT_STARTS)
    problems: list[str] = []

    async def one(workflow_id: str) -> None:
        async with gate:
            try:
                await client.start_workflow(
                    BareCase.run, [86_400.0], id=workflow_id, task_queue=queue
                )
            except Exception as exc:  # counted, not fatal: the run reports it
                problems.append(f"bare {workflow_id}: {exc}")

    await asyncio.gather(*(one(i) for i in ids))
    return problems


async def shaped_starts(
    client: Client, settings: Settings, inputs: Sequence[LoanCollectionInput], queue: str
) -> list[str]:
    gate = asyncio.Semaphore(opening.MAX_CONCURRENT_STARTS)
    problems: list[str] = []

    async def one(params: LoanCollectionInput) -> None:
        async with gate:
            try:
                await client.start_workflow(
                    "BenchBareCase",  # never run: no worker polls this queue
                    params,
                    id=f"shaped-{params.case.case_id}",
                    task_queue=queue,
                    id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                    search_attributes=opening.search_attributes(params),
                    static_summary=f"loan {params.case.loan.id} ({params.policy.ref})",
                )
            except Exception as exc:
                problems.append(f"shaped {params.case.case_id}: {exc}")

    await asyncio.gather(*(one(p) for p in inputs))
    return problems


async def starter_opens(
    client: Client, settings: Settings, rows: list[dict[str, Any]], progress: Progress
) -> list[str]:
    task = progress.add_task("starter", total=len(rows))
    results = await opening.open_cases(
        client, settings, rows, on_result=lambda _: progress.advance(task)
    )
    progress.remove_task(task)
    return [
        f"starter row {r.row}: {r.outcome} {r.detail}" for r in results if r.outcome != "opened"
    ]


async def open_phase(
    settings: Settings,
    client: Client,
    pool: asyncpg.Pool,
    cases: int,
    rounds: int,
    batch: int,
    api_requests: int,
    zone: str,
) -> Opened:
    tag = uuid.uuid4().hex[:6]
    per_path = max(cases // 2 // rounds, 1)
    result = Opened()
    owner = await asyncpg.connect(settings.owner_database_url)
    try:
        token = await tokens.create(owner, Role.service, f"bench-scale-{tag}")
    finally:
        await owner.close()
    headers = {"Authorization": f"Bearer {token}"}
    bare_queue = f"bench-bare-{tag}"

    def rows(path: str, r: int) -> list[dict[str, Any]]:
        return [
            sample_payload(f"S-{tag}-{path}{r}-{i}", borrower={"timezone": zone})
            for i in range(per_path)
        ]

    async with (
        running_api(create_app(settings, client=client, pool=pool)) as api,
        httpx.AsyncClient(base_url=api.url, timeout=600) as http,
    ):
        # Warm-up, not measured: imports, pools, connections, the policy's first load.
        warm = [sample_payload(f"W-{tag}-{i}", borrower={"timezone": zone}) for i in range(20)]
        await opening.open_cases(client, settings, warm[:10])
        await run_batches(http, headers, warm[10:], 10, 1)
        await bare_starts(client, [f"bare-W-{tag}-{i}" for i in range(10)], bare_queue)
        result.case_ids += [f"case-{w['loan']['id']}" for w in warm]
        # The engine's start request, built before the clock runs: what the server
        # stores for a case (input, search attributes, summary) with no opening code.
        shaped = [
            [
                opening.workflow_input(CaseInput.model_validate(row), settings)
                for row in rows(f"x{r}", r)
            ]
            for r in range(rounds)
        ]
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            console=console,
            transient=True,
        ) as progress:
            for r in range(rounds):
                for path in PATHS:
                    before = sqlite_bytes(settings.state_dir)
                    began, cpu = time.perf_counter(), time.process_time()
                    if path == "bare":
                        ids = [f"bare-{tag}-{r}-{i}" for i in range(per_path)]
                        found = await bare_starts(client, ids, bare_queue)
                    elif path == "shaped":
                        found = await shaped_starts(client, settings, shaped[r], bare_queue)
                    elif path == "starter":
                        chunk = rows("s", r)
                        found = await starter_opens(client, settings, chunk, progress)
                        result.case_ids += [f"case-{c['loan']['id']}" for c in chunk]
                    else:
                        chunk = rows("a", r)
                        _, found = await run_batches(http, headers, chunk, batch, api_requests)
                        result.case_ids += [f"case-{c['loan']['id']}" for c in chunk]
                    result.seconds[path] += time.perf_counter() - began
                    result.cpu[path] += time.process_time() - cpu
                    result.counts[path] += per_path
                    result.sqlite_growth[path] += sqlite_bytes(settings.state_dir) - before
                    result.problems += found
    return result


# --- phase 2: the worker and the first tasks ------------------------------------------


def worker_env(settings: Settings, sms_rate: float | None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "DUNNING_TEMPORAL_ADDRESS": settings.temporal_address,
            "DUNNING_TEMPORAL_NAMESPACE": settings.temporal_namespace,
            "DUNNING_TASK_QUEUE": settings.task_queue,
            "DUNNING_DATABASE_URL": settings.database_url,
            "DUNNING_DATABASE_OWNER_URL": settings.owner_database_url,
            "DUNNING_STATE_DIR": str(settings.state_dir),
            "DUNNING_LOG_LEVEL": "WARNING",
        }
    )
    if sms_rate is not None:
        env[PACING_ENV] = json.dumps({"sms": sms_rate})
    return env


async def count_deferred(pool: asyncpg.Pool, case_ids: list[str]) -> int:
    found: int = await pool.fetchval(
        "SELECT count(DISTINCT case_id) FROM audit_events "
        "WHERE event_type = 'contact_deferred' AND case_id = ANY($1::text[])",
        case_ids,
    )
    return found


async def wait_deferred(pool: asyncpg.Pool, case_ids: list[str], limit_s: float) -> float | None:
    began = time.perf_counter()
    with Progress(
        TextColumn("first tasks"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("first", total=len(case_ids))
        while time.perf_counter() - began < limit_s:
            done = await count_deferred(pool, case_ids)
            progress.update(task, completed=done)
            if done >= len(case_ids):
                return time.perf_counter() - began
            await asyncio.sleep(1)
    return None


# --- phase 3: memory and storage ------------------------------------------------------


def rss(pid: int | None) -> int:
    return psutil.Process(pid).memory_info().rss if pid else 0


def tree_pss(pid: int | None) -> int:
    if not pid:
        return 0
    root = psutil.Process(pid)
    total = 0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += proc.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


async def pg_sizes(pool: asyncpg.Pool) -> dict[str, int]:
    row = await pool.fetchrow(
        "SELECT pg_database_size(current_database()) AS db, "
        "pg_total_relation_size('audit_events') AS audit, "
        "pg_total_relation_size('outbox') AS outbox"
    )
    assert row is not None
    return dict(row)


# --- phase 4: the burst ---------------------------------------------------------------


@dataclass(frozen=True)
class Burst:
    opening: datetime
    delivered: int
    expected: int
    drain_s: float
    lateness_s: list[float]
    per_second: list[int]
    busiest_window: int
    channels: dict[str, int]
    # Calls a second between the 10th and the 90th percentile delivery: the drain's pace
    # without its ramp (the dev server still firing the cases' timers) and its tail.
    middle_rate: float


def busiest(instants: Sequence[float], width: float = 1.0) -> int:
    """The most instants in any window of `width` seconds (sorted input)."""
    most = 0
    for i, at in enumerate(instants):
        most = max(most, bisect.bisect_left(instants, at + width) - i)
    return most


def middle_rate(instants: Sequence[float]) -> float:
    """Instants a second between the 10th and the 90th percentile one (sorted input)."""
    low, high = math.floor(0.1 * (len(instants) - 1)), math.ceil(0.9 * (len(instants) - 1))
    span = instants[high] - instants[low] if instants else 0.0
    return (high - low) / span if span > 0 else 0.0


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


async def burst_phase(
    pool: asyncpg.Pool, case_ids: list[str], opens: datetime, give_up_after: timedelta
) -> Burst:
    wait = (opens - datetime.now(UTC)).total_seconds()
    if wait > 0:
        console.print(f"waiting {wait:.0f} s for the opening at {opens:%H:%M:%S} UTC")
        await asyncio.sleep(wait)
    expected = len(case_ids)
    with Progress(
        TextColumn("burst"), BarColumn(), MofNCompleteColumn(), console=console, transient=True
    ) as progress:
        task = progress.add_task("burst", total=expected)
        while datetime.now(UTC) < opens + give_up_after:
            done: int = await pool.fetchval(
                "SELECT count(*) FROM outbox WHERE channel = 'sms' AND case_id = ANY($1::text[])",
                case_ids,
            )
            progress.update(task, completed=done)
            if done >= expected:
                break
            await asyncio.sleep(1)
    rows = await pool.fetch(
        """
        SELECT o.case_id, o.channel, o.created_at, (d.payload->>'until')::timestamptz AS due
        FROM outbox o
        LEFT JOIN LATERAL (
            SELECT payload FROM audit_events a
            WHERE a.case_id = o.case_id AND a.event_type = 'contact_deferred'
            ORDER BY a.seq LIMIT 1
        ) d ON true
        WHERE o.case_id = ANY($1::text[]) AND o.created_at >= $2
        ORDER BY o.created_at
        """,
        case_ids,
        opens - timedelta(minutes=1),
    )
    sms = [r for r in rows if r["channel"] == "sms"]
    lateness = [(r["created_at"] - (r["due"] or opens)).total_seconds() for r in sms]
    offsets = [(r["created_at"] - opens).total_seconds() for r in rows]
    buckets = Counter(math.floor(o) for o in offsets)
    span = max(buckets, default=-1) + 1
    return Burst(
        opening=opens,
        delivered=len(sms),
        expected=expected,
        drain_s=max(offsets, default=0.0),
        lateness_s=lateness,
        per_second=[buckets.get(s, 0) for s in range(min(0, min(buckets, default=0)), span)],
        busiest_window=busiest(offsets),
        channels=dict(Counter(r["channel"] for r in rows)),
        middle_rate=middle_rate(offsets),
    )


# --- the run --------------------------------------------------------------------------


async def bench(
    settings: Settings,
    cases: int,
    rounds: int,
    batch: int,
    api_requests: int,
    zone: str,
    opens: datetime,
    sms_rate: float | None,
    burst: bool,
    burst_timeout: timedelta,
    open_only: bool = False,
) -> tuple[list[Table], list[str], bool]:
    settings = settings.model_copy(update={"task_queue": f"bench-scale-{uuid.uuid4().hex[:6]}"})
    state_dir = settings.state_dir
    client = await connect(settings)
    tables: list[Table] = []
    async with asyncpg.create_pool(settings.database_url, min_size=2, max_size=20) as pool:
        sqlite_before = sqlite_bytes(state_dir)
        pg_before = await pg_sizes(pool)
        opened = await open_phase(settings, client, pool, cases, rounds, batch, api_requests, zone)
        engine_size, bare_size = await _payload_sizes(client, settings, zone)
        table = Table(title=f"opening, no worker running ({rounds} interleaved rounds)")
        for column in ("path", "cases", "seconds", "cases/s", "x bare", "client CPU/case"):
            table.add_column(column, justify="right")
        bare_rate = opened.counts["bare"] / opened.seconds["bare"]
        for path, name in (
            ("bare", "bare start_workflow"),
            ("shaped", "bare, the engine's input and attributes"),
            ("starter", "starter (open_cases)"),
            ("api", f"POST /cases, batches of {batch}"),
        ):
            rate = opened.counts[path] / opened.seconds[path]
            table.add_row(
                name,
                str(opened.counts[path]),
                f"{opened.seconds[path]:.1f}",
                f"{rate:.1f}",
                f"{rate / bare_rate:.2f}",
                f"{opened.cpu[path] / opened.counts[path] * 1000:.2f} ms",
            )
        table.caption = (
            f"{opening.MAX_CONCURRENT_STARTS} starts in flight; input payload {engine_size:,} B "
            f"(engine, encrypted) vs {bare_size:,} B (bare); SQLite growth per start: "
            + ", ".join(
                f"{p} {opened.sqlite_growth[p] / max(opened.counts[p], 1) / 1024:.1f} KB"
                for p in PATHS
            )
        )
        tables.append(table)
        problems = list(opened.problems)
        case_ids = opened.case_ids
        if open_only:
            return tables, problems, True
        log = (state_dir / "logs" / "bench-worker.log").open("w")
        worker = await asyncio.create_subprocess_exec(
            sys.executable,
            str(ROOT / "worker.py"),
            env=worker_env(settings, sms_rate),
            cwd=state_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            first = await wait_deferred(pool, case_ids, limit_s=max(600.0, len(case_ids) / 2))
            if first is None:
                done = await count_deferred(pool, case_ids)
                problems.append(f"only {done} of {len(case_ids)} cases reached their deferral")
            await asyncio.sleep(5)  # the last cases' timers set
            pg_after = await pg_sizes(pool)
            sqlite_after = sqlite_bytes(state_dir)
            engine_growth = (
                sqlite_after
                - sqlite_before
                - opened.sqlite_growth["bare"]
                - opened.sqlite_growth["shaped"]
            )
            bare_per = opened.sqlite_growth["bare"] / max(opened.counts["bare"], 1)
            held = Table(title=f"{len(case_ids):,} open cases, each waiting for its first SMS")
            held.add_column("what")
            held.add_column("total", justify="right")
            held.add_column("per case", justify="right")
            n = len(case_ids)
            held.add_row(
                "first tasks done (worker start → last deferral)",
                f"{first:.0f} s" if first is not None else "not all",
                f"{n / first:.1f} cases/s" if first else "",
            )
            held.add_row("worker RSS", f"{rss(worker.pid) / 2**20:.0f} MB", "")
            held.add_row(
                "Temporal dev server RSS",
                f"{rss(temporal.running_pid(state_dir)) / 2**20:.0f} MB",
                "",
            )
            held.add_row(
                "PostgreSQL PSS (all its processes)",
                f"{tree_pss(postgres.running_pid(state_dir)) / 2**20:.0f} MB",
                "",
            )
            held.add_row(
                "Temporal SQLite, engine cases",
                f"{engine_growth / 2**20:.1f} MB",
                f"{engine_growth / n / 1024:.1f} KB",
            )
            held.add_row(
                "Temporal SQLite, a bare start (for scale)", "", f"{bare_per / 1024:.1f} KB"
            )
            pg_growth = pg_after["db"] - pg_before["db"]
            held.add_row(
                "PostgreSQL database",
                f"{pg_growth / 2**20:.1f} MB",
                f"{pg_growth / n / 1024:.1f} KB",
            )
            held.add_row(
                "  of which audit_events",
                f"{(pg_after['audit'] - pg_before['audit']) / 2**20:.1f} MB",
                "",
            )
            tables.append(held)
            if burst:
                result = await burst_phase(pool, case_ids, opens, burst_timeout)
                tables += burst_tables(result, zone, sms_rate)
                if result.delivered < result.expected:
                    problems.append(
                        f"{result.expected - result.delivered} SMS not delivered "
                        f"{burst_timeout} after the opening"
                    )
                exceeded = sms_rate is not None and result.busiest_window > sms_rate
                if exceeded:
                    problems.append(
                        f"{result.busiest_window} calls in one second, over --sms-rate {sms_rate}"
                    )
                sqlite_end = sqlite_bytes(state_dir)
                tables[-1].caption = (
                    (tables[-1].caption or "")
                    + f"; worker RSS after the burst {rss(worker.pid) / 2**20:.0f} MB; "
                    f"Temporal SQLite {(sqlite_end - sqlite_before) / 2**20:.0f} MB in all"
                )
        finally:
            worker.terminate()
            try:
                await asyncio.wait_for(worker.wait(), 30)
            except TimeoutError:
                worker.kill()
                await worker.wait()
            log.close()
    return tables, problems, True


async def _payload_sizes(client: Client, settings: Settings, zone: str) -> tuple[int, int]:
    case = CaseInput.model_validate(sample_payload("L-size", borrower={"timezone": zone}))
    params = opening.workflow_input(case, settings)
    engine = await client.data_converter.encode([params])
    bare = await client.data_converter.encode([[86_400.0]])
    return engine[0].ByteSize(), bare[0].ByteSize()


def burst_tables(result: Burst, zone: str, sms_rate: float | None) -> list[Table]:
    summary = Table(
        title=f"the morning burst: {result.expected:,} SMS due at {result.opening:%H:%M} UTC "
        f"(08:00 in {zone})"
    )
    summary.add_column("what")
    summary.add_column("value", justify="right")
    late = result.lateness_s
    summary.add_row("delivered", f"{result.delivered:,} of {result.expected:,}")
    summary.add_row("time to drain (opening → last delivery)", f"{result.drain_s:.1f} s")
    if late:
        summary.add_row("lateness p50", f"{statistics.median(late):.1f} s")
        summary.add_row("lateness p99", f"{percentile(late, 0.99):.1f} s")
        summary.add_row("lateness max", f"{max(late):.1f} s")
        summary.add_row("lateness min", f"{min(late):.1f} s")
    calls = sum(result.channels.values())
    summary.add_row(
        "provider calls/s (mean over the drain)",
        f"{calls / result.drain_s:.1f}" if result.drain_s > 0 else "-",
    )
    summary.add_row(
        "provider calls/s (10th to 90th percentile delivery)", f"{result.middle_rate:.2f}"
    )
    summary.add_row("most calls in one 1-second bucket", str(max(result.per_second, default=0)))
    summary.add_row("most calls in any 1-second window", str(result.busiest_window))
    if sms_rate is None:
        summary.add_row("rate limit", "none set (--sms-rate)")
    else:
        applied = (
            f"the worker's {PACING_ENV}" if PACING_APPLIED else "not applied: no pacing setting"
        )
        over = sum(1 for c in result.per_second if c > sms_rate)
        summary.add_row(
            f"--sms-rate {sms_rate:g}/s ({applied})",
            "exceeded" if result.busiest_window > sms_rate else "never exceeded",
        )
        summary.add_row("1-second buckets over the limit", str(over))
    summary.caption = "calls by channel: " + ", ".join(
        f"{k} {v}" for k, v in sorted(result.channels.items())
    )
    buckets = Table(title="provider calls per 1-second bucket after the opening")
    buckets.add_column("seconds", justify="right")
    buckets.add_column("calls in each second", justify="left")
    per = result.per_second
    for start in range(0, len(per), 20):
        buckets.add_row(
            f"{start}-{start + 19}", " ".join(f"{c:3d}" for c in per[start : start + 20])
        )
    return [summary, buckets]


@app.command()
def main(
    cases: int = typer.Option(
        20_000, min=30, help="cases opened, half by the starter, half by the API"
    ),
    rounds: int = typer.Option(4, min=1, help="interleaved rounds of bare, starter, API"),
    batch: int = typer.Option(100, min=1, max=1000, help="cases per POST /cases"),
    api_requests: int = typer.Option(2, min=1, help="POST /cases requests in flight"),
    burst_tz: str | None = typer.Option(
        None, help="the borrowers' time zone (default: the one whose 08:00 comes next)"
    ),
    burst_lead: float | None = typer.Option(
        None, min=1, help="minutes from now before the opening may come (default: from --cases)"
    ),
    sms_rate: float | None = typer.Option(None, min=0.1, help="the SMS partner's limit, calls/s"),
    burst: bool = typer.Option(True, "--burst/--no-burst", help="wait for the opening and measure"),
    open_only: bool = typer.Option(False, help="stop after the opening phase (no worker)"),
    burst_timeout: float = typer.Option(30, min=1, help="minutes after the opening to give up"),
) -> None:
    """N open cases: opening rates against bare starts, their cost, the morning burst."""
    configure("console", "WARNING")
    now = datetime.now(UTC)
    # The opening must come after every case is open and deferred: about 30 starts/s
    # for 1.5 N starts, 5 first tasks/s (2 loaded CPUs), and two minutes to spare.
    lead = timedelta(
        minutes=burst_lead if burst_lead is not None else (1.5 * cases / 30 + cases / 5 + 120) / 60
    )
    if burst_tz is None:
        zone, opens = choose_zone(now + lead)
    else:
        try:
            ZoneInfo(burst_tz)
        except (KeyError, ValueError):
            raise typer.BadParameter(
                f"unknown time zone {burst_tz!r}", param_hint="--burst-tz"
            ) from None
        zone, opens = burst_tz, next_opening(burst_tz, now + lead)
    console.print(
        f"{cases:,} cases; borrowers in {zone}; the window opens at {opens:%Y-%m-%d %H:%M} UTC, "
        f"in {(opens - now).total_seconds() / 60:.0f} min; load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs"
    )
    with tempfile.TemporaryDirectory(prefix="dunning-bench-", ignore_cleanup_errors=True) as tmp:
        settings = stack.private_settings(Path(tmp))
        try:
            stack.up(settings)
            tables, problems, _ = asyncio.run(
                bench(
                    settings,
                    cases,
                    rounds,
                    batch,
                    api_requests,
                    zone,
                    opens,
                    sms_rate,
                    burst,
                    timedelta(minutes=burst_timeout),
                    open_only,
                )
            )
        finally:
            stack.down(settings)
    for table in tables:
        console.print(table)
    console.print(
        f"load average at the end {' '.join(f'{x:.1f}' for x in os.getloadavg())}; "
        f"cpus {os.cpu_count()}, python {platform.python_version()}, temporalio "
        f"{version('temporalio')}, {platform.platform()}"
    )
    for problem in problems[:20]:
        console.print(f"[red]{problem}[/]")
    if problems:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
