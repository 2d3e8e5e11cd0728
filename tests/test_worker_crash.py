"""SIGKILL the worker in the middle of 200 cases; a new worker finishes them all,
sending no message twice and writing no audit event twice."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client

import starter
from dunning.settings import Settings
from dunning.sim import fold
from schemas.case import CaseInput
from tests.factories import case_input, fault_policy
from tests.faults.harness import (
    CASES,
    all_closed,
    check_each,
    kill_worker,
    start_worker,
    stop_worker,
    tail,
    wait_for,
)
from tests.records import (
    audit_counts,
    audit_events,
    contacts_in_audit,
    contacts_in_outbox,
    keys_in_audit,
    outbox_rows,
)
from tests.test_decider import per_stage
from workflows.loan_collection import LoanCollection

# An 8-second policy day, the handoff three days in: the outage (kill, restart, Temporal's
# 10 s sticky-queue timeout before a dead worker's tasks move on, the 10 s activity
# timeout of calls in flight, replaying 200 cases on a loaded machine) meets cases
# between their SMS and their handoff, none of them finished.
POLICY = fault_policy(timedelta(seconds=8), legal_day=3)
CHECK_CONCURRENCY = 8


@pytest.mark.slow
async def test_sigkilled_worker_loses_nothing_and_repeats_nothing(
    dev_client: Client,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
    tmp_path: Path,
) -> None:
    settings = stack_settings.model_copy(update={"task_queue": task_queue})
    prefix = f"L-kill-{uuid.uuid4().hex[:6]}"
    cases = [case_input(f"{prefix}-{i:03d}", loan={"days_past_due": 1}) for i in range(CASES)]
    log = tmp_path / "worker.log"
    worker = start_worker(settings, None, log)
    try:
        await asyncio.gather(
            *(
                dev_client.start_workflow(
                    LoanCollection.run,
                    starter.workflow_input(case).model_copy(update={"policy": POLICY}),
                    id=case.case_id,
                    task_queue=task_queue,
                )
                for case in cases
            )
        )
        # Kill it once the cases are under way (a third have written their first
        # rows, the others are sending their SMS), none finished.
        deadline = time.monotonic() + 60
        while (await audit_counts(pool, prefix))[0] < CASES:
            assert time.monotonic() < deadline, tail(log)
            await asyncio.sleep(0.2)
        kill_worker(worker)
        killed_at, closed_at_kill = await audit_counts(pool, prefix)

        worker = start_worker(settings, None, log)

        async def closed() -> bool:
            return await all_closed(dev_client, task_queue, CASES)

        await wait_for(closed, 300, "cases did not all close", log)
    finally:
        stop_worker(worker)

    assert closed_at_kill == 0, f"{closed_at_kill} cases closed before the kill"

    async def check(case: CaseInput) -> int:
        handle = dev_client.get_workflow_handle_for(LoanCollection.run, case.case_id)
        result = await handle.result()
        assert result.closed_reason == "transferred_to_legal", case.case_id
        events = await audit_events(pool, case.case_id)  # gap-free 1..n
        assert len(events) == result.events, f"{case.case_id}: audit rows missing"
        outbox = await outbox_rows(pool, case.case_id)
        keys = keys_in_audit(events)
        assert len(keys) == len(set(keys)), f"{case.case_id}: a provider call logged twice"
        assert sorted(r["idempotency_key"] for r in outbox) == sorted(keys), case.case_id
        # Exactly what the policy asks for: no message lost, none repeated.
        skipped = [e for e in events if e.type == "stage_entered" and e.skipped]
        assert not skipped, case.case_id
        _, expected = fold.run(case, POLICY, datetime.now(UTC))
        assert contacts_in_audit(events) == per_stage(expected), case.case_id
        assert contacts_in_outbox(outbox) == per_stage(expected), case.case_id
        return len(events)

    total = await check_each(cases, check, CHECK_CONCURRENCY)
    assert killed_at < total, "the kill landed mid-run"
