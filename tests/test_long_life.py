"""A long life: a case on a policy with a daily SMS that stays open for two years, on
the time-skipping server. Every run of its continue-as-new chain stays under 10,000
history events, the whole chain replays, and its audit log verifies (hash chain,
anchors, the live status) at the end."""

from __future__ import annotations

import time

import asyncpg
import pytest
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from dunning.audit.replay import fetch_histories, replay_histories
from dunning.audit.verify import verify_case
from dunning.samples import daily_sms
from schemas.status import CaseStatus
from tests.factories import case_input
from tests.records import audit_events
from workflows.inputs import LoanCollectionInput
from workflows.loan_collection import LoanCollection

MAX_RUN_EVENTS = 10_000
DAYS = 730


@pytest.mark.timeout(900)
async def test_a_case_open_for_two_years_keeps_every_run_small_and_replays(
    ts_env: WorkflowEnvironment, ts_worker: Worker, pool: asyncpg.Pool, task_queue: str
) -> None:
    case = case_input("L-long")
    handle = await ts_env.client.start_workflow(
        LoanCollection.run,
        LoanCollectionInput(case=case, policy=daily_sms(DAYS)),
        id=case.case_id,
        task_queue=task_queue,
    )
    # Two years of daily SMS, then the handoff closes it: nothing from outside lands
    # while it waits (the time-skipping server can lose a workflow task whose timer a
    # signal cancels, sdk-java#3088).
    started = time.monotonic()
    final: CaseStatus = await handle.result()
    lived = time.monotonic() - started
    assert final.closed_reason == "transferred_to_legal"

    histories = await fetch_histories(ts_env.client, handle.id)
    sizes = [len(h.events) for h in histories]
    assert len(histories) > 1, f"one run of {sizes[0]} events: never continued as new"
    assert max(sizes) < MAX_RUN_EVENTS, sizes
    [replayed] = await replay_histories(histories, data_converter=ts_env.client.data_converter)
    assert replayed.deterministic, replayed.detail

    report = await verify_case(pool, handle.id, ts_env.client)
    assert report.ok, report.problems
    events = await audit_events(pool, handle.id)
    sent = sum(1 for e in events if e.type == "contact_attempted" and e.channel == "sms")
    assert sent >= DAYS - 120, "about one SMS a day (public holidays defer some)"
    print(f"{DAYS} days in {lived:.1f} s: {len(histories)} runs, events per run {sizes}")
