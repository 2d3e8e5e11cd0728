"""A case's life on the time-skipping server: months of cadence in seconds.

Workflows run on the real Temporal test server; activities write to the real
embedded PostgreSQL (audit log and sandbox outbox).
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import asyncpg
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import starter
from dunning.settings import Settings
from schemas.case import CaseInput
from schemas.commands import Pause, Payment, Resume
from schemas.status import CaseStatus
from tests.factories import TOTAL, case_input, open_with_starter
from tests.records import (
    audit_events,
    contacts_in_audit,
    contacts_in_outbox,
    keys_in_audit,
    outbox_rows,
)
from tests.test_decider import DEFAULT_COUNTS
from tests.timeskip import skip
from workflows.loan_collection import LoanCollection


def _loan_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def _open(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, case: CaseInput
) -> WorkflowHandle[LoanCollection, CaseStatus]:
    return await open_with_starter(env.client, settings, task_queue, case)


async def _finish(
    env: WorkflowEnvironment, handle: WorkflowHandle[LoanCollection, CaseStatus]
) -> CaseStatus:
    """Await the result with time skipping on, as a handle from start_workflow would."""
    async with env.time_skipping_unlocked():  # type: ignore[attr-defined]
        return await handle.result()


async def test_default_policy_walks_every_stage_to_legal_once_per_contact(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    case = case_input(_loan_id("L-walk"))
    handle = await _open(ts_env, stack_settings, task_queue, case)

    final = await _finish(ts_env, handle)

    assert final.state == "closed"
    assert final.closed_reason == "transferred_to_legal"
    events = await audit_events(pool, case.case_id)
    stages = [e.stage for e in events if e.type == "stage_entered"]
    assert stages == ["reminder", "negotiation", "field_visit", "legal"]
    assert contacts_in_audit(events) == DEFAULT_COUNTS
    outbox = await outbox_rows(pool, case.case_id)
    assert contacts_in_outbox(outbox) == DEFAULT_COUNTS
    # The same messages on both sides: one outbox row per provider call in the log.
    assert sorted(r["idempotency_key"] for r in outbox) == sorted(keys_in_audit(events))
    assert events[-1].type == "case_closed"
    assert final.events == len(events)


async def test_continue_as_new_carries_the_case_over(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    pool: asyncpg.Pool,
    task_queue: str,
) -> None:
    case = case_input(_loan_id("L-can"))
    params = starter.workflow_input(case).model_copy(update={"max_events_per_run": 10})
    handle = await ts_env.client.start_workflow(
        LoanCollection.run, params, id=case.case_id, task_queue=task_queue
    )

    final = await handle.result()  # a start_workflow handle skips time itself

    assert final.closed_reason == "transferred_to_legal"
    described = await handle.describe()
    assert described.run_id != described.raw_description.workflow_execution_info.first_run_id
    events = await audit_events(pool, case.case_id)
    assert contacts_in_audit(events) == DEFAULT_COUNTS
    assert [e.type for e in events].count("case_opened") == 1


async def test_pause_stops_all_contact_and_resume_restarts_it(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    case = case_input(_loan_id("L-pause"))
    handle = await _open(ts_env, stack_settings, task_queue, case)
    await skip(ts_env, timedelta(days=4))
    before = await handle.query(LoanCollection.status)
    assert before.counters, "some contact happened before the pause"

    await handle.signal(LoanCollection.pause, Pause(reason="hardship review", operator="op-7"))
    await skip(ts_env, timedelta(days=30))
    during = await handle.query(LoanCollection.status)
    assert during.state == "paused"
    assert during.paused is not None and during.paused.operator == "op-7"
    assert during.counters == before.counters, "no contact while paused"
    # The paused month does not age the case: escalation is on the active clock.
    assert during.stage == before.stage

    await handle.signal(LoanCollection.resume, Resume(reason="review done", operator="op-9"))
    await skip(ts_env, timedelta(days=4))
    after = await handle.query(LoanCollection.status)
    assert after.state == "open"
    assert sum(after.counters.values()) > sum(before.counters.values()), "contact restarted"

    events = await audit_events(pool, case.case_id)
    paused = [e for e in events if e.type == "collection_paused"]
    resumed = [e for e in events if e.type == "collection_resumed"]
    assert [(e.reason, e.operator, e.actor) for e in paused] == [
        ("hardship review", "op-7", "operator:op-7")
    ]
    assert [(e.reason, e.operator, e.actor) for e in resumed] == [
        ("review done", "op-9", "operator:op-9")
    ]
    contact_times = [
        e.at for e in events if e.type in ("contact_attempted", "field_visit_scheduled")
    ]
    assert not [t for t in contact_times if paused[0].at <= t < resumed[0].at]
    assert resumed[0].paused_for >= timedelta(days=30)
    await handle.terminate("test over")


async def test_partial_payment_lowers_balance_and_full_payment_closes_as_paid(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    case = case_input(_loan_id("L-pay"))
    handle = await _open(ts_env, stack_settings, task_queue, case)
    await skip(ts_env, timedelta(days=2))

    await handle.signal(
        LoanCollection.payment, Payment(amount=Decimal("100.00"), reference="pay-1", source="core")
    )
    await skip(ts_env, timedelta(hours=1))
    partial = await handle.query(LoanCollection.status)
    assert partial.state == "open"
    assert partial.balance.total == TOTAL - Decimal("100.00")
    # Fees first, then interest, then principal.
    assert (partial.balance.fees, partial.balance.interest) == (Decimal("0"), Decimal("0"))
    assert partial.balance.principal == Decimal("970.00")

    await handle.signal(
        LoanCollection.payment,
        Payment(amount=Decimal("970.00"), reference="pay-2", source="core"),
    )
    final = await _finish(ts_env, handle)
    assert final.state == "closed"
    assert final.closed_reason == "paid"
    assert final.balance.total == Decimal("0")

    events = await audit_events(pool, case.case_id)
    closed_at = events[-1].at
    assert events[-1].type == "case_closed"
    assert [e.reference for e in events if e.type == "payment_received"] == ["pay-1", "pay-2"]
    assert not [e for e in events if e.type == "contact_attempted" and e.at > closed_at]
    # The cadence timer that was pending when the payment came in was cancelled.
    kinds = [e.event_type async for e in handle.fetch_history_events()]
    assert EventType.EVENT_TYPE_TIMER_CANCELED in kinds
    assert kinds[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    sent = len(await outbox_rows(pool, case.case_id))
    await skip(ts_env, timedelta(days=30))
    assert len(await outbox_rows(pool, case.case_id)) == sent, "nothing sent after closing"
