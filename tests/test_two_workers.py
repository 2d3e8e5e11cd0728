"""Scale-out: two worker processes on one task queue share the open cases, and either
can die. Both take cases from the queue; one is SIGKILLed with SMS in flight and
restarted, then the other is SIGKILLed holding cases that wait on their timers; the
restarted one finishes every case. Nothing is lost or
repeated: each message reaches the gateway once, each audit event is written once, and
every hash chain verifies.

Who did what is read from Temporal's own record: every workflow task completed and
every activity started in a history names the worker identity (`pid@host`) that ran it.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from dunning.settings import Settings
from schemas.case import CaseInput
from tests.factories import fault_policy
from tests.faults.harness import (
    SECRET,
    Flight,
    audit_counts,
    check_nothing_lost_or_repeated,
    kill_worker,
    new_flight,
    start_cases,
    start_worker,
    stop_worker,
    tail,
    wait_for,
    wait_for_rows,
    wait_until_closed,
    worker_identity,
)
from tests.webhook_gateway import running_gateway

CASES = 60
# 8-second policy days: an SMS on opening, the legal handoff four days (32 s) in. The
# first kill lands while the SMS are being sent (a third of the first batches written);
# its cases are taken over after Temporal's 10 s activity and sticky-queue timeouts.
# The second kill lands once every case has written its first batch, while its cases
# wait on their timers; the handoff comes after both. (A second SMS two days in would
# be overtaken by the outage: the engine then skips the stale one, by design.)
POLICY = fault_policy(timedelta(seconds=8), legal_day=4)
FIRST_BATCH_ROWS = 3  # case_opened, stage_entered, contact_attempted
STARTUP_S = 60.0


async def _ready(log: Path, workers: int) -> None:
    async def running() -> bool:
        text = await asyncio.to_thread(log.read_text, errors="replace")
        return text.count("worker running") >= workers

    await wait_for(running, STARTUP_S, "the workers did not start", log)


async def _identities(client: Client, case: CaseInput) -> list[str]:
    """The worker identities of the case's history, in order: who took and who
    completed each workflow task (a task its worker died with has no completion) and
    who started each (last attempt of an) activity."""
    history = await client.get_workflow_handle(case.case_id).fetch_history()
    found = []
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            found.append(event.workflow_task_started_event_attributes.identity)
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            found.append(event.workflow_task_completed_event_attributes.identity)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            found.append(event.activity_task_started_event_attributes.identity)
    return found


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_two_workers_share_the_cases_and_either_can_die(
    dev_client: Client, stack_settings: Settings, tmp_path: Path
) -> None:
    flight: Flight = new_flight(stack_settings, tmp_path, name="two", policy=POLICY, cases=CASES)
    with running_gateway(SECRET) as gateway:
        first = start_worker(flight.settings, gateway, flight.log)
        second = start_worker(flight.settings, gateway, flight.log)
        restarted: subprocess.Popen[bytes] | None = None
        try:
            await _ready(flight.log, 2)  # both polling before any case is there
            await start_cases(dev_client, flight)

            await wait_for_rows(flight, CASES, 60)  # a third of the first batches
            assert first.poll() is None and second.poll() is None, tail(flight.log)
            kill_worker(first)
            rows_at_first_kill, closed_at_first_kill = await audit_counts(
                flight.settings, flight.prefix
            )
            restarted = start_worker(flight.settings, gateway, flight.log)
            await _ready(flight.log, 3)

            await wait_for_rows(flight, FIRST_BATCH_ROWS * CASES, 60)
            assert second.poll() is None, tail(flight.log)
            kill_worker(second)
            flight.rows_at_fault, flight.closed_at_fault = await audit_counts(
                flight.settings, flight.prefix
            )
            await wait_until_closed(dev_client, flight)
        finally:
            for worker in (first, second, restarted):
                if worker is not None:
                    stop_worker(worker)

        assert closed_at_first_kill == 0
        assert rows_at_first_kill < flight.rows_at_fault, "the second kill landed later"
        await check_nothing_lost_or_repeated(dev_client, flight, gateway)

    assert restarted is not None
    ids = {
        "first": worker_identity(first),
        "second": worker_identity(second),
        "restarted": worker_identity(restarted),
    }
    by_case = {case.case_id: await _identities(dev_client, case) for case in flight.cases}
    # Temporal's record names only these three processes.
    named = {i for found in by_case.values() for i in found}
    assert named <= set(ids.values()), (named, ids)

    def ran(case_id: str, who: str) -> bool:
        return ids[who] in by_case[case_id]

    def count(who: str) -> int:
        return sum(ran(case_id, who) for case_id in by_case)

    # Both took cases from the queue before they died, and the restarted one took
    # over: every case closed, so each dead worker's cases were finished by another.
    worked = Counter({who: count(who) for who in ids})
    assert worked["first"] > 0 and worked["second"] > 0, worked
    assert worked["restarted"] > 0, worked
    taken_over = [c for c in by_case if ran(c, "first") and not ran(c, "second")]
    assert all(ran(c, "restarted") for c in taken_over), "no live worker took over"
    assert all(ran(c, "restarted") for c in by_case if ran(c, "second")), (
        "the second worker's cases finished without the restarted one"
    )
    # The cases were spread, not taken by the first worker to poll.
    assert min(worked["first"], worked["second"]) >= CASES // 10, worked
