"""SIGKILL the worker in the middle of 50 cases; a new worker finishes them all,
sending no message twice and writing no audit event twice."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client

import starter
from dunning.settings import Settings
from tests import simulate
from tests.factories import case_input, fast_policy
from tests.records import (
    audit_events,
    contacts_in_audit,
    contacts_in_outbox,
    keys_in_audit,
    outbox_rows,
)
from tests.test_decider import per_stage
from tests.test_opening import cli_env
from workflows.loan_collection import LoanCollection

ROOT = Path(__file__).resolve().parent.parent
CASES = 50


def _start_worker(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "worker.py")],
            cwd=ROOT,
            env=cli_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def _audit_rows(pool: asyncpg.Pool, prefix: str) -> int:
    async with pool.acquire() as conn:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE case_id LIKE $1", f"case-{prefix}%"
        )
        return count


@pytest.mark.slow
async def test_sigkilled_worker_loses_nothing_and_repeats_nothing(
    dev_client: Client,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
    tmp_path: Path,
) -> None:
    settings = stack_settings.model_copy(update={"task_queue": task_queue})
    # An 8-second policy day: the outage (kill, restart, Temporal's 10 s sticky-queue
    # timeout before a dead worker's tasks move on, the 10 s activity timeout of calls
    # in flight, replaying 50 cases on a loaded machine) must not outlast a whole
    # stage (4 days here), which the engine would rightly skip as overdue.
    policy = fast_policy(timedelta(seconds=8))
    prefix = f"L-kill-{uuid.uuid4().hex[:6]}"
    cases = [
        case_input(f"{prefix}-{i:02d}", loan={"days_past_due": 1 + i % 5}) for i in range(CASES)
    ]
    log = tmp_path / "worker.log"
    worker = _start_worker(settings, log)
    try:
        handles = []
        for case in cases:
            handles.append(
                await dev_client.start_workflow(
                    LoanCollection.run,
                    starter.workflow_input(case).model_copy(update={"policy": policy}),
                    id=case.case_id,
                    task_queue=task_queue,
                )
            )
        # Kill it once the cases are well under way, none finished.
        deadline = time.monotonic() + 60
        while await _audit_rows(pool, prefix) < 4 * CASES:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            await asyncio.sleep(0.2)
        worker.send_signal(signal.SIGKILL)
        assert worker.wait(timeout=10) == -signal.SIGKILL
        killed_at = await _audit_rows(pool, prefix)

        worker = _start_worker(settings, log)
        results = await asyncio.wait_for(
            asyncio.gather(*(h.result() for h in handles)), timeout=300
        )
    finally:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=20)

    assert all(r.closed_reason == "transferred_to_legal" for r in results)
    assert killed_at < sum(r.events for r in results), "the kill landed mid-run"
    for case in cases:
        events = await audit_events(pool, case.case_id)  # gap-free 1..n
        outbox = await outbox_rows(pool, case.case_id)
        keys = keys_in_audit(events)
        assert len(keys) == len(set(keys)), f"{case.case_id}: a provider call logged twice"
        assert sorted(r["idempotency_key"] for r in outbox) == sorted(keys), case.case_id
        # Exactly what the policy asks for: no message lost, none repeated.
        assert not [e for e in events if e.type == "stage_entered" and e.skipped], case.case_id
        _, expected = simulate.run(case, policy, datetime.now(UTC))
        assert contacts_in_audit(events) == per_stage(expected), case.case_id
        assert contacts_in_outbox(outbox) == per_stage(expected), case.case_id
