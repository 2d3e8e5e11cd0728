"""Cases in flight on a real worker subprocess using the webhook provider, a fault
injected while they run, and the checks every fault test makes afterwards.

Each fault puts 200 cases in flight. What bounds the time is the work per case (every
workflow task and activity costs the dev server and the worker CPU, on two cores), so
the cases run `tests.factories.fault_policy`: an SMS, then the legal handoff, the
fewest steps that still leave provider calls and audit writes on both sides of the
fault. The expected contacts are simulated from that policy like any other's."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from temporalio.client import Client
from temporalio.service import RPCError

import starter
from dunning.audit.verify import verify_case
from dunning.settings import Settings
from dunning.sim import fold
from schemas.case import CaseInput
from schemas.policy import Policy
from tests.factories import case_input
from tests.records import audit_counts as counts_in_audit
from tests.records import audit_events, contacts_in_audit, keys_in_audit
from tests.test_decider import per_stage
from tests.test_opening import cli_env
from tests.webhook_gateway import Gateway
from workflows.loan_collection import LoanCollection

ROOT = Path(__file__).resolve().parents[2]
SECRET = b"fault-test-secret"
WEBHOOK_TIMEOUT_S = 2.0
CLOSE_TIMEOUT_S = 150.0
EXPECTED_CLOSE = "transferred_to_legal"
PROVIDER_CHANNELS = ("contact_attempted", "field_visit_scheduled", "handed_to_legal")
CASES = 200  # in flight when each fault strikes (issue #6)
CHECK_CONCURRENCY = 16


@dataclass
class Flight:
    settings: Settings
    cases: list[CaseInput]
    policy: Policy
    log: Path
    rows_at_fault: int = 0
    closed_at_fault: int = 0

    @property
    def prefix(self) -> str:
        return self.cases[0].loan.id.rsplit("-", 1)[0]


def worker_env(settings: Settings, gateway: Gateway) -> dict[str, str]:
    urls = gateway.urls()
    return {
        **cli_env(settings),
        "DUNNING_PROVIDER": "webhook",
        **{
            f"DUNNING_WEBHOOK_{partner.upper()}_URL": url
            for partner, url in urls.by_partner.items()
        },
        "DUNNING_WEBHOOK_SECRET": SECRET.decode(),
        "DUNNING_WEBHOOK_TIMEOUT_S": str(WEBHOOK_TIMEOUT_S),
    }


def start_worker(settings: Settings, gateway: Gateway | None, log: Path) -> subprocess.Popen[bytes]:
    """`python worker.py` on `settings`' task queue, its output appended to `log`: on the
    webhook provider posting to `gateway`, or on the sandbox provider without one. Its
    Temporal identity is the SDK's `pid@host` (`worker_identity`)."""
    env = worker_env(settings, gateway) if gateway else cli_env(settings)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def worker_identity(worker: subprocess.Popen[bytes]) -> str:
    """The identity Temporal records for `worker`'s tasks in the histories (the SDK's
    default, which the worker keeps: `pid@host`)."""
    return f"{worker.pid}@{socket.gethostname()}"


def kill_worker(worker: subprocess.Popen[bytes]) -> None:
    """SIGKILL: no shutdown, no task handed back; its tasks in flight time out."""
    worker.send_signal(signal.SIGKILL)
    assert worker.wait(timeout=10) == -signal.SIGKILL


def stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


async def audit_rows(settings: Settings, prefix: str) -> int:
    """Rows so far (a connection of its own: the database may have just restarted)."""
    return (await audit_counts(settings, prefix))[0]


async def audit_counts(settings: Settings, prefix: str) -> tuple[int, int]:
    """(rows so far, cases closed so far); (0, 0) while the database does not answer."""
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return 0, 0
    try:
        return await counts_in_audit(conn, prefix)
    finally:
        await conn.close()


def tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


async def wait_for(
    check: Callable[[], Awaitable[bool]], limit_s: float, what: str, log: Path
) -> None:
    deadline = time.monotonic() + limit_s
    while not await check():
        assert time.monotonic() < deadline, f"{what}\n{tail(log)}"
        await asyncio.sleep(0.5)


async def all_closed(client: Client, task_queue: str, cases: int) -> bool:
    """Every case's workflow (the only ones on this task queue) completed, by one
    visibility count rather than a describe per case; False while Temporal does not
    answer. The checks then read every case's result."""
    query = f"TaskQueue = '{task_queue}' AND ExecutionStatus = 'Completed'"
    try:
        found = await client.count_workflows(query, rpc_timeout=timedelta(seconds=5))
    except RPCError:
        return False
    return found.count >= cases


async def check_each(
    cases: Iterable[CaseInput], check: Callable[[CaseInput], Awaitable[int]], at_once: int
) -> int:
    """Run `check` on every case, `at_once` at a time; the sum of what they return. A
    failing check is raised as it is, once every other check has finished."""
    gate = asyncio.Semaphore(at_once)

    async def bounded(case: CaseInput) -> int:
        async with gate:
            return await check(case)

    results = await asyncio.gather(*(bounded(case) for case in cases), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return sum(r for r in results if isinstance(r, int))


async def run_with_fault(
    client: Client,
    settings: Settings,
    gateway: Gateway,
    tmp_path: Path,
    *,
    name: str,
    policy: Policy,
    fault: Callable[[], Awaitable[None]],
    fault_after_rows: int,
    cases: int = CASES,
) -> Flight:
    """Open `cases` cases, inject `fault` once `fault_after_rows` audit rows per case are
    written, and return when every case has closed (the worker is stopped by then)."""
    flight = new_flight(settings, tmp_path, name=name, policy=policy, cases=cases)
    worker = start_worker(flight.settings, gateway, flight.log)
    try:
        await start_cases(client, flight)
        await wait_for_rows(flight, fault_after_rows * cases, 60)
        assert worker.poll() is None, tail(flight.log)
        flight.rows_at_fault, flight.closed_at_fault = await audit_counts(
            flight.settings, flight.prefix
        )
        await fault()
        await wait_until_closed(client, flight)
    finally:
        stop_worker(worker)
    return flight


def new_flight(
    settings: Settings, tmp_path: Path, *, name: str, policy: Policy, cases: int = CASES
) -> Flight:
    """`cases` fresh cases (1 day past due) on a task queue of their own."""
    settings = settings.model_copy(update={"task_queue": f"fault-{uuid.uuid4().hex[:8]}"})
    prefix = f"L-{name}-{uuid.uuid4().hex[:6]}"
    return Flight(
        settings=settings,
        cases=[case_input(f"{prefix}-{i:03d}", loan={"days_past_due": 1}) for i in range(cases)],
        policy=policy,
        log=tmp_path / "worker.log",
    )


async def start_cases(client: Client, flight: Flight) -> None:
    """Start every case of `flight` on its policy and task queue."""
    await asyncio.gather(
        *(
            client.start_workflow(
                LoanCollection.run,
                starter.workflow_input(case).model_copy(update={"policy": flight.policy}),
                id=case.case_id,
                task_queue=flight.settings.task_queue,
            )
            for case in flight.cases
        )
    )


async def wait_for_rows(flight: Flight, rows: int, limit_s: float) -> None:
    """Until the flight's cases have written `rows` audit rows in all."""

    async def enough() -> bool:
        return await audit_rows(flight.settings, flight.prefix) >= rows

    await wait_for(enough, limit_s, f"the cases did not reach {rows} audit rows", flight.log)


async def wait_until_closed(client: Client, flight: Flight) -> None:
    async def closed() -> bool:
        return await all_closed(client, flight.settings.task_queue, len(flight.cases))

    await wait_for(closed, CLOSE_TIMEOUT_S, "cases did not all close", flight.log)


async def check_nothing_lost_or_repeated(client: Client, flight: Flight, gateway: Gateway) -> None:
    """Closed as expected; audit gap-free, each provider call logged once and delivered
    once (by Idempotency-Key), exactly the policy's contacts; every hash chain verifies.
    The fault struck with every case in flight: opened, none closed yet."""
    assert flight.closed_at_fault == 0, f"{flight.closed_at_fault} cases closed before the fault"
    accepted = gateway.accepted_counts()
    assert all(n == 1 for n in accepted.values()), "a key was accepted twice"
    async with asyncpg.create_pool(
        flight.settings.database_url, min_size=1, max_size=CHECK_CONCURRENCY
    ) as pool:

        async def check(case: CaseInput) -> int:
            handle = client.get_workflow_handle_for(LoanCollection.run, case.case_id)
            result = await handle.result()
            assert result.closed_reason == EXPECTED_CLOSE, (case.case_id, result.closed_reason)
            events = await audit_events(pool, case.case_id)  # gap-free 1..n
            keys = keys_in_audit(events)
            assert len(keys) == len(set(keys)), f"{case.case_id}: a provider call logged twice"
            assert len(events) == result.events, f"{case.case_id}: audit rows missing"
            delivered = gateway.delivered_keys(case.case_id)
            assert sorted(delivered) == sorted(keys), f"{case.case_id}: audit vs deliveries"
            sms_keys = [
                e.idempotency_key
                for e in events
                if e.type == "contact_attempted" and e.channel == "sms"
            ]
            assert sorted(sms_keys) == sorted(gateway.delivered_keys(case.case_id, "sms"))
            assert not [e for e in events if e.type == "stage_entered" and e.skipped], case.case_id
            _, expected = fold.run(case, flight.policy, datetime.now(UTC))
            assert contacts_in_audit(events) == per_stage(expected), case.case_id
            report = await verify_case(pool, case.case_id, None)
            assert not report.problems, (case.case_id, report.problems)
            return len(events)

        total = await check_each(flight.cases, check, CHECK_CONCURRENCY)
    assert flight.rows_at_fault < total, "the fault landed after the cases had finished"
