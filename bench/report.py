"""How long `dunning report` takes over 100,000 cases' audit rows.

    .venv/bin/python -m bench.report --cases 100000

On a private embedded PostgreSQL (a temporary folder, stopped at the end), or the
database of `--database-url` (its audit_events must hold no rows in the periods
measured; the generated case ids start with `BENCH-<run>-`), it writes the audit
rows of `--cases` cases straight into `audit_events` with COPY, then times
`dunning.report.query.effectiveness` over two periods, `--repeat` times each:

- **all**: the `--days` days the cases were opened in (every generated case);
- **last 30 days**: the cases opened in the last 30 of them.

The rows are what the engine writes, with a seeded random story per case on the
default policy (day = 24 h): opened over the last `--days` days at 1 to 60 days past
due, under a strategy with two segments (by amount) and a 90/10 champion/challenger
split (default@1 against default@2; one case in ten without a strategy); reminders,
calls with outcomes (a challenger answers a little more often), deferrals and skips,
third-party SMS, promises kept and broken, partial and full payments, settlements,
write-offs, stage entries, field visits and the legal handoff, and rows of an event
type the report does not read. The hashes are well-formed placeholders, not a chain:
this measures the report, not `dunning audit verify`.

The PostgreSQL is the embedded one with its default settings (shared_buffers 128 MB);
the report sets its own work_mem for its statement (dunning/report/query.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import typer
from rich.console import Console
from rich.table import Table

from dunning.db.migrate import apply_migrations, ensure_database
from dunning.localstack import postgres
from dunning.localstack.net import free_port
from dunning.policies import load
from dunning.report.period import Period
from dunning.report.query import effectiveness
from dunning.report.render_terminal import print_report

console = Console(width=160)
CHAMPION = load("default")
CHALLENGER = CHAMPION.model_copy(update={"version": 2, "description": "challenger"})
HASH = "0" * 63 + "1"  # well-formed, not a chain
COLUMNS = (
    "case_id",
    "seq",
    "event_type",
    "occurred_at",
    "actor",
    "workflow_id",
    "run_id",
    "payload",
    "prev_hash",
    "hash",
)
THRESHOLDS = [stage.from_dpd for stage in CHAMPION.stages]  # reminder, negotiation, visit, legal
NAMES = [stage.name for stage in CHAMPION.stages]
OUTCOMES_MISSED = ("no_answer", "busy", "voicemail", "wrong_number")


def _policy_json(policy: Any) -> str:
    return json.dumps(policy.model_dump(mode="json"), separators=(",", ":"))


POLICY_JSON = {
    CHAMPION.version: _policy_json(CHAMPION),
    CHALLENGER.version: _policy_json(CHALLENGER),
}


@dataclass
class Story:
    """One case being written: its rows so far."""

    case_id: str
    run_id: str
    opened: datetime
    rows: list[tuple[Any, ...]]

    def add(self, at: datetime, event_type: str, payload: dict[str, Any]) -> None:
        body = {"type": event_type, "at": at.isoformat(), "actor": "system", **payload}
        self.rows.append(
            (
                self.case_id,
                len(self.rows) + 1,
                event_type,
                at,
                "system",
                self.case_id,
                self.run_id,
                json.dumps(body, separators=(",", ":")),
                HASH,
                HASH,
            )
        )


def _opening(story: Story, rng: random.Random, dpd: int, loan: str) -> tuple[Decimal, int, str]:
    """The case_opened row; returns the balance, the policy version and the arm."""
    principal = Decimal(rng.choice((500, 800, 1000, 1500, 2000, 3000, 5000, 8000)))
    interest = (principal * Decimal("0.05")).quantize(Decimal("0.01"))
    fees = Decimal(rng.choice((0, 20, 50)))
    segment = "small" if principal < 2000 else "large"
    draw = rng.random()
    assignment: dict[str, Any] | None
    if draw < 0.1:
        version, arm, assignment = 1, "champion", None
    else:
        arm = "challenger" if draw > 0.91 else "champion"
        version = 2 if arm == "challenger" else 1
        assignment = {
            "strategy": "retail",
            "segment": segment,
            "experiment": f"q4-{segment}",
            "arm": arm,
            "policy": f"default@{version}",
        }
    case = {
        "borrower": {
            "id": f"B-{loan}",
            "name": "Bench Borrower",
            "phones": ["+8613800138000"],
            "country": None,
            "timezone": "Asia/Shanghai",
            "language": "zh-CN",
            "address": None,
            "emergency_contacts": [],
        },
        "loan": {
            "id": loan,
            "currency": "CNY",
            "principal": str(principal),
            "interest": str(interest),
            "fees": f"{fees}.00",
            "penalty": "0",
            "due_date": (story.opened - timedelta(days=dpd)).date().isoformat(),
            "days_past_due": dpd,
            "product": "consumer-instalment",
        },
        "policy": f"default@{version}",
    }
    at = story.opened
    body = (
        f'{{"type":"case_opened","at":"{at.isoformat()}","actor":"system","rules":2,'
        f'"case":{json.dumps(case, separators=(",", ":"))},"policy":{POLICY_JSON[version]},'
        f'"assignment":{json.dumps(assignment)}}}'
    )
    story.rows.append(
        (
            story.case_id,
            1,
            "case_opened",
            at,
            "system",
            story.case_id,
            story.run_id,
            body,
            HASH,
            HASH,
        )
    )
    return principal + interest + fees, version, arm


def _stage_at(dpd: int) -> int:
    return max(i for i, threshold in enumerate(THRESHOLDS) if dpd >= threshold)


def write_case(
    n: int, run: str, rng: random.Random, now: datetime, days: int
) -> list[tuple[Any, ...]]:
    """A seeded story for case `n`, up to `now`."""
    loan = f"BENCH-{run}-{n}"
    opened = now - timedelta(seconds=rng.uniform(60, days * 86400))
    opened = opened.replace(microsecond=0)
    story = Story(f"case-{loan}", f"run-{loan}", opened, [])
    start_dpd = 1 if rng.random() < 0.7 else rng.randint(5, 60)
    balance, _, arm = _opening(story, rng, start_dpd, loan)
    answer = 0.38 if arm == "challenger" else 0.32
    pay_hazard = 0.012 if arm == "challenger" else 0.010
    stage = _stage_at(start_dpd)
    story.add(
        opened,
        "stage_entered",
        {
            "stage": NAMES[stage],
            "stage_index": stage,
            "days_past_due": start_dpd,
            "active_offset": "PT0S",
            "skipped": NAMES[:stage],
        },
    )
    stage_day = 0
    promise: tuple[int, Decimal, bool] | None = None  # (due day, amount, will keep)
    seq_key = 0
    age_days = int((now - opened).total_seconds() // 86400)
    for day in range(age_days + 1):
        at = opened + timedelta(days=day, hours=rng.randint(0, 9), minutes=rng.randint(0, 59))
        if at >= now:
            break
        dpd = start_dpd + day
        reached = _stage_at(dpd)
        if reached > stage and promise is None:
            stage, stage_day = reached, day
            story.add(
                at,
                "stage_entered",
                {
                    "stage": NAMES[stage],
                    "stage_index": stage,
                    "days_past_due": dpd,
                    "active_offset": f"P{day}D",
                    "skipped": [],
                },
            )
        local = day - stage_day
        name = NAMES[stage]
        if name == "legal":
            story.add(
                at,
                "handed_to_legal",
                {
                    "stage": name,
                    "action_index": 0,
                    "idempotency_key": f"{story.case_id}:{len(story.rows) + 1}",
                    "provider_ref": "legal",
                },
            )
            story.add(at, "case_closed", {"reason": "transferred_to_legal", "waived": "0"})
            break
        if promise is not None:
            due, amount, keep = promise
            if day == due:
                if keep:
                    paid = min(amount, balance)
                    balance -= paid
                    _pay(story, at, paid, balance)
                    story.add(at, "promise_kept", {"paid": str(paid)})
                    story.add(at, "promise_ended", {"kept": True, "paid": str(paid)})
                    if balance <= 0:
                        story.add(at, "case_closed", {"reason": "paid", "waived": "0"})
                        break
                else:
                    story.add(at, "promise_ended", {"kept": False, "paid": "0"})
                promise = None
            continue  # contact holds while a promise is in force
        sms_every, call_every, call_start = {
            "reminder": (3, 7, 2),
            "negotiation": (5, 2, 1),
            "field_visit": (30, 7, 1),
        }[name]
        if local % sms_every == 0:
            seq_key += 1
            if rng.random() < 0.05:
                story.add(
                    at,
                    "contact_deferred",
                    {
                        "rule": "contact_window",
                        "detail": "",
                        "until": (at + timedelta(hours=9)).isoformat(),
                        "channel": "sms",
                        "stage": name,
                        "action_index": 0,
                        "occurrence": seq_key,
                    },
                )
            _contact(story, at, "sms", name, "sent", seq_key)
        if name == "field_visit" and local == 3:
            story.add(
                at,
                "field_visit_scheduled",
                {
                    "stage": name,
                    "action_index": 1,
                    "occurrence": 0,
                    "idempotency_key": f"{story.case_id}:visit",
                    "provider_ref": "field",
                },
            )
        if local >= call_start and (local - call_start) % call_every == 0:
            seq_key += 1
            if rng.random() < 0.04:
                story.add(
                    at,
                    "contact_skipped",
                    {
                        "rule": "call_attempts_per_7_days",
                        "detail": "",
                        "channel": "call",
                        "stage": name,
                        "action_index": 1,
                        "occurrence": seq_key,
                    },
                )
            elif rng.random() < answer:
                _contact(story, at, "call", name, "answered", seq_key)
                if rng.random() < 0.35:
                    amount = min(
                        balance, (balance * Decimal(rng.choice((1, 0.5)))).quantize(Decimal("0.01"))
                    )
                    due = day + rng.randint(2, 7)
                    promise = (due, amount, rng.random() < 0.55)
                    by = at + timedelta(days=due - day)
                    story.add(
                        at,
                        "promise_made",
                        {
                            "operator": "op-1",
                            "reason": "call",
                            "amount": str(amount),
                            "pay_by": by.date().isoformat(),
                            "hold_until": (by + timedelta(days=2)).isoformat(),
                        },
                    )
            else:
                _contact(story, at, "call", name, rng.choice(OUTCOMES_MISSED), seq_key)
                if name == "negotiation" and rng.random() < 0.1:
                    _contact(story, at, "third_party_sms", name, "sent", seq_key)
            if rng.random() < 0.01:
                story.add(at, "contact_withdrawn", {"channel": "call", "stage": name})
        if rng.random() < pay_hazard:
            paid = balance if rng.random() < 0.7 else (balance / 3).quantize(Decimal("0.01"))
            balance -= paid
            _pay(story, at + timedelta(minutes=30), paid, balance)
            if balance <= 0:
                story.add(
                    at + timedelta(minutes=31), "case_closed", {"reason": "paid", "waived": "0"}
                )
                break
        if rng.random() < 0.0008:
            settled = (balance * Decimal("0.7")).quantize(Decimal("0.01"))
            waived = balance - settled
            story.add(
                at,
                "settlement_agreed",
                {
                    "operator": "op-1",
                    "reason": "hardship",
                    "amount": str(settled),
                    "pay_by": at.date().isoformat(),
                    "deadline": at.isoformat(),
                    "waiver": str(waived),
                    "supervisor": "sup-1",
                },
            )
            _pay(story, at, settled, waived)
            story.add(at, "case_closed", {"reason": "settled", "waived": str(waived)})
            break
        if rng.random() < 0.0003:
            story.add(
                at,
                "case_closed",
                {
                    "reason": "written_off",
                    "waived": "0",
                    "operator": "op-1",
                    "note": "uncollectable",
                },
            )
            break
    return story.rows


def _contact(story: Story, at: datetime, channel: str, stage: str, outcome: str, n: int) -> None:
    story.add(
        at,
        "contact_attempted",
        {
            "channel": channel,
            "stage": stage,
            "action_index": 0,
            "occurrence": n,
            "phone_index": 0,
            "third_party": None,
            "template": "reminder" if channel != "call" else None,
            "idempotency_key": f"{story.case_id}:{len(story.rows) + 1}",
            "provider_ref": "p",
            "outcome": outcome,
        },
    )


def _pay(story: Story, at: datetime, amount: Decimal, balance: Decimal) -> None:
    story.add(
        at,
        "payment_received",
        {
            "amount": str(amount),
            "reference": f"P{len(story.rows)}",
            "applied_penalty": "0",
            "applied_fees": "0",
            "applied_interest": "0",
            "applied_principal": str(amount),
            "overpaid": "0",
            "balance_after": str(max(balance, Decimal(0))),
        },
    )


def batches(
    cases: int, seed: int, now: datetime, days: int, run: str
) -> Iterator[list[tuple[Any, ...]]]:
    rng = random.Random(seed)
    batch: list[tuple[Any, ...]] = []
    for n in range(cases):
        batch += write_case(n, run, rng, now, days)
        if len(batch) >= 50_000:
            yield batch
            batch = []
    if batch:
        yield batch


async def generate(url: str, cases: int, seed: int, now: datetime, days: int) -> tuple[int, float]:
    run = uuid.uuid4().hex[:6]
    started = time.perf_counter()
    rows = 0
    conn = await asyncpg.connect(url)
    try:
        for batch in batches(cases, seed, now, days, run):
            await conn.copy_records_to_table("audit_events", records=batch, columns=COLUMNS)
            rows += len(batch)
        # As autovacuum would: hint bits, visibility map and statistics, so the first
        # report does not pay for the bulk load.
        await conn.execute("VACUUM (ANALYZE) audit_events")
    finally:
        await conn.close()
    return rows, time.perf_counter() - started


@dataclass
class Timing:
    wall: list[float]
    cpu: list[float | None]  # the server backend's CPU seconds (its parallel workers apart)


async def measure(url: str, period: Period, repeat: int, parallel: bool) -> tuple[Timing, Any]:
    """`repeat` reports on one connection; without `parallel` PostgreSQL runs the
    statement in the backend alone, whose CPU time then is the whole statement's."""
    conn = await asyncpg.connect(url)
    try:
        if not parallel:
            await conn.execute("SET max_parallel_workers_per_gather = 0")
        backend = psutil.Process(await conn.fetchval("SELECT pg_backend_pid()"))
        timing = Timing([], [])
        report = None
        for _ in range(repeat):
            cpu = _cpu(backend)
            started = time.perf_counter()
            report = await effectiveness(conn, period)
            timing.wall.append(time.perf_counter() - started)
            after = _cpu(backend)
            timing.cpu.append(None if cpu is None or after is None else after - cpu)
        return timing, report
    finally:
        await conn.close()


def _cpu(process: psutil.Process) -> float | None:
    try:
        times = process.cpu_times()
    except (psutil.Error, OSError):  # a server on another machine
        return None
    return float(times.user + times.system)


def main(
    cases: int = typer.Option(100_000, help="cases to generate"),
    days: int = typer.Option(90, help="the cases open over this many days before now"),
    seed: int = typer.Option(7),
    repeat: int = typer.Option(3, help="timings per period"),
    limit_s: float = typer.Option(10.0, help="exit 1 when a report takes longer"),
    database_url: str | None = typer.Option(None, help="use this database, not a private one"),
    show: bool = typer.Option(True, help="print the report's tables for the whole period"),
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as folder:
        state = Path(folder)
        url = database_url
        if url is None:
            port = free_port()
            postgres.start(state, port)
            url = f"postgresql://postgres@127.0.0.1:{port}/dunning"
        try:
            asyncio.run(ensure_database(url))
            asyncio.run(apply_migrations(url))
            rows, generated_s = asyncio.run(generate(url, cases, seed, now, days))
            console.print(
                f"wrote {rows:,} audit rows for {cases:,} cases in {generated_s:.1f} s "
                f"({rows / cases:.1f} rows per case)"
            )
            periods = {
                f"all ({days} days)": Period(
                    now - timedelta(days=days), now + timedelta(seconds=1)
                ),
                "last 30 days": Period(now - timedelta(days=30), now + timedelta(seconds=1)),
            }
            table = Table(title=f"dunning report over {cases:,} cases ({rows:,} audit rows)")
            columns = ("period", "cases in it", "workers", "best s", "median s", "runs (s)",
                       "backend CPU s")  # fmt: skip
            for column in columns:
                table.add_column(column, justify="right")
            slowest = 0.0
            whole = None
            for name, period in periods.items():
                for parallel in (True, False):
                    timing, report = asyncio.run(measure(url, period, repeat, parallel))
                    whole = whole or report
                    slowest = max(slowest, min(timing.wall))
                    in_period = sum(g.cases_opened for g in report.groups)
                    cpu = [c for c in timing.cpu if c is not None]
                    table.add_row(
                        name,
                        f"{in_period:,}",
                        "default" if parallel else "none",
                        f"{min(timing.wall):.2f}",
                        f"{statistics.median(timing.wall):.2f}",
                        " ".join(f"{t:.2f}" for t in timing.wall),
                        f"{statistics.median(cpu):.2f}" if cpu and not parallel else "-",
                    )
            load = " ".join(f"{v:.1f}" for v in os.getloadavg())
            console.print(
                f"load average (1, 5, 15 min) at the end: {load} on {os.cpu_count()} cores"
            )
            if show and whole is not None:
                print_report(whole, console=console)
            console.print(table)
        finally:
            if database_url is None:
                postgres.stop(state)
    if slowest > limit_s:
        console.print(f"[red]best run slower than {limit_s} s: {slowest:.2f} s[/]")
        sys.exit(1)


if __name__ == "__main__":
    typer.run(main)
