"""Operator actions as validated Workflow Updates.

Rejections and concurrency run on the dev server (real time); promises and plans,
whose timers span weeks, run on the time-skipping server.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import starter
from dunning import case_client
from dunning.case_client import Update
from schemas.commands import (
    Approve,
    Close,
    Deescalate,
    DisputeOpen,
    DisputeResolve,
    Escalate,
    Instalment,
    Pause,
    Payment,
    PromiseToPay,
    RepaymentPlan,
    Resume,
    Settlement,
    VisitBooking,
    VisitReport,
    WriteOff,
)
from schemas.refusals import Refusal
from schemas.status import ActionResult, CaseStatus
from tests.factories import TOTAL, case_input
from tests.records import audit_events
from tests.timeskip import skip
from workflows.loan_collection import LoanCollection

SHANGHAI = ZoneInfo("Asia/Shanghai")
OP = {"operator": "op-7", "reason": "agreed on the phone"}


async def _start(client: Client, task_queue: str, prefix: str) -> WorkflowHandle[Any, Any]:
    case = case_input(f"{prefix}-{uuid.uuid4().hex[:8]}")
    return await client.start_workflow(
        LoanCollection.run, starter.workflow_input(case), id=case.case_id, task_queue=task_queue
    )


async def _update(
    handle: WorkflowHandle[Any, Any], update: Update, command: BaseModel
) -> CaseStatus:
    result: ActionResult = await handle.execute_update(update, command)
    return result.status


async def _act(
    handle: WorkflowHandle[Any, Any], update: Update, command: BaseModel
) -> ActionResult:
    result: ActionResult = await handle.execute_update(update, command)
    return result


async def _quiet_length(handle: WorkflowHandle[Any, Any]) -> int:
    """History length once the case has settled into a wait."""
    last = -1
    for _ in range(50):
        length = (await handle.describe()).history_length
        if length == last:
            return length
        last = length
        await asyncio.sleep(0.4)
    raise AssertionError("the case never settled")


def _today(env_now: datetime) -> date:
    return env_now.astimezone(SHANGHAI).date()


async def _local_today(handle: WorkflowHandle[Any, Any]) -> date:
    status: CaseStatus = await handle.query(LoanCollection.status)
    last = status.last_events[-1].at
    return last.astimezone(SHANGHAI).date()


# --- rejections leave nothing behind ----------------------------------------------------


async def test_rejected_actions_are_explained_and_leave_history_unchanged(
    dev_client: Client, dev_worker: Worker, task_queue: str
) -> None:
    handle = await _start(dev_client, task_queue, "L-reject")
    length = await _quiet_length(handle)
    today = await _local_today(handle)
    rejected: list[tuple[Update, BaseModel, Refusal, str]] = [
        (LoanCollection.resume_case, Resume(**OP), Refusal.not_paused, "not paused"),
        (
            LoanCollection.agree_plan,
            RepaymentPlan(
                instalments=(
                    Instalment(amount=Decimal("500.00"), due=today + timedelta(days=10)),
                    Instalment(amount=Decimal("500.00"), due=today + timedelta(days=40)),
                ),
                **OP,
            ),
            Refusal.instalments_mismatch,
            f"sum to 1000.00 but the balance is {TOTAL}",
        ),
        (
            LoanCollection.offer_settlement,
            Settlement(amount=Decimal("2000.00"), pay_by=today + timedelta(days=5), **OP),
            Refusal.amount_not_below_balance,
            "is not below the balance",
        ),
        (
            LoanCollection.promise_to_pay,
            PromiseToPay(amount=Decimal("100.00"), pay_by=today - timedelta(days=1), **OP),
            Refusal.date_in_past,
            "pay_by: ",
        ),
    ]
    for update, command, code, reason in rejected:
        with pytest.raises(case_client.ActionRejected) as failed:
            await case_client.act(dev_client, handle.id, update, command)
        assert failed.value.code is code and reason in failed.value.reason, failed.value
        assert (await handle.describe()).history_length == length, f"{code} left a trace"

    closed = await _update(handle, LoanCollection.close_case, Close(**OP))
    assert closed.closed_reason == "closed"
    await handle.result()
    with pytest.raises(case_client.CaseClosed):
        await case_client.act(dev_client, handle.id, LoanCollection.resume_case, Resume(**OP))
    with pytest.raises(case_client.CaseNotFound):
        await case_client.act(dev_client, "case-L-nobody", LoanCollection.resume_case, Resume(**OP))


async def test_same_payment_reference_counts_once(
    dev_client: Client, dev_worker: Worker, pool: asyncpg.Pool, task_queue: str
) -> None:
    handle = await _start(dev_client, task_queue, "L-dup")
    payment = Payment(amount=Decimal("100.00"), reference="PAY-77", source="core")

    first = await _update(handle, LoanCollection.record_payment, payment)
    again = await _update(handle, LoanCollection.record_payment, payment)

    assert first.balance.total == again.balance.total == TOTAL - Decimal("100.00")
    assert again.balance.paid == Decimal("100.00")
    await handle.signal(LoanCollection.payment, payment)  # a retried backend signal too
    await _update(handle, LoanCollection.pause_case, Pause(**OP))  # settles the audit flush
    await _quiet_length(handle)
    events = await audit_events(pool, handle.id)
    assert [e.reference for e in events if e.type == "payment_received"] == ["PAY-77"]
    await handle.terminate("test over")


async def test_concurrent_actions_are_serialised_and_none_is_lost(
    dev_client: Client, dev_worker: Worker, pool: asyncpg.Pool, task_queue: str
) -> None:
    handle = await _start(dev_client, task_queue, "L-race")
    await _quiet_length(handle)
    today = await _local_today(handle)
    payments = [
        _update(
            handle,
            LoanCollection.record_payment,
            Payment(amount=Decimal("10.00"), reference=f"P-{i}", source="core"),
        )
        for i in range(8)
    ]
    promises = [
        _update(
            handle,
            LoanCollection.promise_to_pay,
            PromiseToPay(
                amount=Decimal("50.00"),
                pay_by=today + timedelta(days=3),
                operator=operator,
                reason="race",
            ),
        )
        for operator in ("op-a", "op-b")
    ]

    results = await asyncio.gather(*payments, *promises, return_exceptions=True)

    assert all(isinstance(r, CaseStatus) for r in results[:8]), results[:8]
    promise_outcomes = results[8:]
    accepted = [r for r in promise_outcomes if isinstance(r, CaseStatus)]
    refused = [r for r in promise_outcomes if isinstance(r, WorkflowUpdateFailedError)]
    assert len(accepted) == 1 and len(refused) == 1, promise_outcomes
    cause = refused[0].cause
    assert isinstance(cause, ApplicationError) and cause.details == (
        Refusal.agreement_in_force.value,
    )
    assert "already in force" in str(cause)
    status = await handle.query(LoanCollection.status)
    assert status.balance.paid == Decimal("80.00")
    assert status.promise is not None
    await _quiet_length(handle)
    events = await audit_events(pool, handle.id)
    assert sorted(e.reference for e in events if e.type == "payment_received") == [
        f"P-{i}" for i in range(8)
    ]
    assert [e.type for e in events].count("promise_made") == 1
    assert [e.type for e in events].count("agreement_recorded") == 1
    await handle.terminate("test over")


# --- promises and plans over weeks (time-skipping) -------------------------------------


def _contacts(status: CaseStatus) -> int:
    """Collection contacts so far: SMS and calls (an agreement's confirmation, sent
    through the guard while the agreement holds collection, counts apart)."""
    return sum(v for k, v in status.counters.items() if k in ("sms", "call"))


def _collection_contacts(events: list[Any]) -> list[Any]:
    return [e for e in events if e.type == "contact_attempted" and e.agreement_seq is None]


async def _confirmed_in_window(pool: asyncpg.Pool, case_id: str) -> None:
    """The agreement's confirmation went out once, inside the borrower's window."""
    events = await audit_events(pool, case_id)
    [sent] = [e for e in events if e.type == "contact_attempted" and e.agreement_seq]
    assert 8 <= sent.at.astimezone(SHANGHAI).hour < 22, sent.at
    assert sent.template == "agreement_confirmation"


async def _ts_start(env: WorkflowEnvironment, task_queue: str, prefix: str) -> Any:
    handle = await _start(env.client, task_queue, prefix)
    await skip(env, timedelta(days=2))
    return handle


async def test_kept_promise_suppresses_contact_until_its_date_and_closes_nothing(
    ts_env: WorkflowEnvironment, ts_worker: Worker, pool: asyncpg.Pool, task_queue: str
) -> None:
    handle = await _ts_start(ts_env, task_queue, "L-kept")
    today = _today(await ts_env.get_current_time())
    pay_by = today + timedelta(days=6)
    made = await _update(
        handle,
        LoanCollection.promise_to_pay,
        PromiseToPay(amount=Decimal("300.00"), pay_by=pay_by, **OP),
    )
    assert made.promise is not None and made.promise.pay_by == pay_by
    before = _contacts(made)

    await skip(ts_env, timedelta(days=2))
    kept = await _update(
        handle,
        LoanCollection.record_payment,
        Payment(amount=Decimal("300.00"), reference="PROMISED", source="core"),
    )
    await skip(ts_env, timedelta(days=3))
    during = await handle.query(LoanCollection.status)
    assert during.state == "open", "a kept promise closes nothing"
    assert during.promise is not None and during.promise.kept
    assert _contacts(during) == before, "no contact until the promised date"
    assert kept.balance.total == TOTAL - Decimal("300.00")

    await skip(ts_env, timedelta(days=6))
    after = await handle.query(LoanCollection.status)
    assert after.promise is None
    assert _contacts(after) > before, "collection goes on for the rest of the balance"
    events = await audit_events(pool, handle.id)
    ended = next(e for e in events if e.type == "promise_ended")
    assert ended.kept
    assert ended.at.astimezone(SHANGHAI).date() == pay_by + timedelta(days=1)
    recorded = next(e for e in events if e.type == "agreement_recorded")
    assert recorded.kind == "promise" and len(recorded.sha256) == 64
    await _confirmed_in_window(pool, handle.id)
    await handle.terminate("test over")


async def test_broken_promise_resumes_collection_the_day_after_its_grace(
    ts_env: WorkflowEnvironment, ts_worker: Worker, pool: asyncpg.Pool, task_queue: str
) -> None:
    handle = await _ts_start(ts_env, task_queue, "L-broken")
    today = _today(await ts_env.get_current_time())
    pay_by = today + timedelta(days=4)
    await _update(
        handle,
        LoanCollection.promise_to_pay,
        PromiseToPay(amount=Decimal("500.00"), pay_by=pay_by, **OP),
    )

    await skip(ts_env, timedelta(days=14))

    events = await audit_events(pool, handle.id)
    made = next(e for e in events if e.type == "promise_made")
    ended = next(e for e in events if e.type == "promise_ended")
    assert not ended.kept
    grace = 2  # the default policy's promise_grace_days
    resume_day = pay_by + timedelta(days=grace + 1)
    assert ended.at.astimezone(SHANGHAI).date() == resume_day
    contacts = [e.at for e in _collection_contacts(events)]
    assert not [t for t in contacts if made.at < t < ended.at], "no contact while promised"
    await _confirmed_in_window(pool, handle.id)
    first_after = min(t for t in contacts if t >= ended.at)
    assert first_after.astimezone(SHANGHAI).date() == resume_day
    # The default policy resumes a broken agreement at least in negotiation.
    moved = [e for e in events if e.type == "stage_changed"]
    assert [(e.stage, e.operator, e.reason) for e in moved] == [
        ("negotiation", "system", "promise broken")
    ]
    first_contact = next(e for e in _collection_contacts(events) if e.at >= ended.at)
    assert first_contact.stage == "negotiation"
    await handle.terminate("test over")


async def test_plan_with_a_missed_second_instalment_breaks_and_collection_resumes(
    ts_env: WorkflowEnvironment, ts_worker: Worker, pool: asyncpg.Pool, task_queue: str
) -> None:
    handle = await _ts_start(ts_env, task_queue, "L-plan-miss")
    today = _today(await ts_env.get_current_time())
    plan = RepaymentPlan(
        instalments=(
            Instalment(amount=Decimal("370.00"), due=today + timedelta(days=7)),
            Instalment(amount=Decimal("350.00"), due=today + timedelta(days=14)),
            Instalment(amount=Decimal("350.00"), due=today + timedelta(days=21)),
        ),
        **OP,
    )
    agreed = await _update(handle, LoanCollection.agree_plan, plan)
    assert agreed.plan is not None and agreed.plan.next_due == plan.instalments[0].due
    await skip(ts_env, timedelta(days=5))
    await _update(
        handle,
        LoanCollection.record_payment,
        Payment(amount=Decimal("370.00"), reference="I-1", source="core"),
    )

    await skip(ts_env, timedelta(days=20))

    status = await handle.query(LoanCollection.status)
    assert status.plan is None and status.state == "open"
    events = await audit_events(pool, handle.id)
    broken = next(e for e in events if e.type == "plan_broken")
    assert broken.missed_instalment == 2
    assert broken.paid == Decimal("370.00") and broken.required == Decimal("720.00")
    assert any(e.type == "contact_attempted" and e.at > broken.at for e in events)
    agreed_at = next(e.at for e in events if e.type == "plan_agreed")
    assert not [e for e in _collection_contacts(events) if agreed_at < e.at < broken.at], (
        "the case waits in the plan"
    )
    await _confirmed_in_window(pool, handle.id)
    await handle.terminate("test over")


async def test_plan_paid_in_full_closes_the_case_as_paid(
    ts_env: WorkflowEnvironment, ts_worker: Worker, task_queue: str
) -> None:
    handle = await _ts_start(ts_env, task_queue, "L-plan-paid")
    today = _today(await ts_env.get_current_time())
    amounts = [Decimal("370.00"), Decimal("350.00"), Decimal("350.00")]
    plan = RepaymentPlan(
        instalments=tuple(
            Instalment(amount=a, due=today + timedelta(days=7 * (i + 1)))
            for i, a in enumerate(amounts)
        ),
        **OP,
    )
    await _update(handle, LoanCollection.agree_plan, plan)
    for i, amount in enumerate(amounts):
        await skip(ts_env, timedelta(days=6))
        await _update(
            handle,
            LoanCollection.record_payment,
            Payment(amount=amount, reference=f"I-{i + 1}", source="core"),
        )

    final: CaseStatus = await handle.result()

    assert final.state == "closed" and final.closed_reason == "paid"
    assert final.balance.total == Decimal("0")


# --- the other actions, end to end ------------------------------------------------------


async def test_settlement_paid_in_time_closes_as_settled_with_the_waiver(
    ts_env: WorkflowEnvironment, ts_worker: Worker, pool: asyncpg.Pool, task_queue: str
) -> None:
    handle = await _ts_start(ts_env, task_queue, "L-settle")
    today = _today(await ts_env.get_current_time())
    offer = Settlement(amount=Decimal("800.00"), pay_by=today + timedelta(days=10), **OP)
    too_low = Settlement(amount=Decimal("100.00"), pay_by=today + timedelta(days=10), **OP)
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await _update(handle, LoanCollection.offer_settlement, too_low)
    assert "below the policy's floor" in str(failed.value.cause)

    # Waiving 270 of 1070 is past the 20% approval share: a second principal approves.
    requested = await _act(handle, LoanCollection.offer_settlement, offer)
    pending = requested.pending_approval
    assert pending is not None and pending.kind == "settlement" and pending.requested_by == "op-7"
    assert requested.status.settlement is None
    approval = Approve(request=pending.request, operator="sup-1", reason="within mandate")
    status = (await _act(handle, LoanCollection.approve, approval)).status
    assert status.settlement is not None and status.settlement.waiver == Decimal("270.00")
    assert not status.approvals
    await skip(ts_env, timedelta(days=3))
    await _update(
        handle,
        LoanCollection.record_payment,
        Payment(amount=Decimal("800.00"), reference="S-1", source="core"),
    )

    final: CaseStatus = await handle.result()
    assert final.closed_reason == "settled"
    events = await audit_events(pool, handle.id)
    closed = events[-1]
    assert closed.type == "case_closed" and closed.waived == Decimal("270.00")


async def test_dispute_stops_contact_and_resolution_for_the_borrower_cancels(
    ts_env: WorkflowEnvironment, ts_worker: Worker, pool: asyncpg.Pool, task_queue: str
) -> None:
    handle = await _ts_start(ts_env, task_queue, "L-dispute")
    opened = await _update(handle, LoanCollection.open_dispute, DisputeOpen(**OP))
    assert opened.dispute is not None
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await _update(
            handle,
            LoanCollection.promise_to_pay,
            PromiseToPay(
                amount=Decimal("10.00"),
                pay_by=_today(await ts_env.get_current_time()) + timedelta(days=2),
                **OP,
            ),
        )
    assert "in dispute" in str(failed.value.cause)
    await skip(ts_env, timedelta(days=40))
    held = await handle.query(LoanCollection.status)
    assert held.stage == opened.stage, "a dispute stops escalation too"
    assert _contacts(held) == _contacts(opened)

    resolve = DisputeResolve(outcome="for_borrower", **OP)
    request = (await _act(handle, LoanCollection.resolve_dispute, resolve)).pending_approval
    assert request is not None and request.kind == "dispute_for_borrower"
    approval = Approve(request=request.request, operator="sup-1", reason="contract void")
    await _update(handle, LoanCollection.approve, approval)
    final: CaseStatus = await handle.result()
    assert final.closed_reason == "cancelled"


async def test_visit_escalation_and_write_off(
    dev_client: Client, dev_worker: Worker, pool: asyncpg.Pool, task_queue: str
) -> None:
    handle = await _start(dev_client, task_queue, "L-ops")
    await _quiet_length(handle)
    moved = await _update(handle, LoanCollection.escalate, Escalate(**OP))
    assert moved.stage == "negotiation"
    moved = await _update(handle, LoanCollection.escalate, Escalate(**OP))
    assert moved.stage == "field_visit"
    back = await _update(handle, LoanCollection.deescalate, Deescalate(**OP))
    assert back.stage == "negotiation"

    tomorrow = (await _local_today(handle)) + timedelta(days=1)
    at_night = datetime.combine(tomorrow, datetime.min.time(), SHANGHAI) + timedelta(hours=23)
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await _update(
            handle,
            LoanCollection.book_visit,
            VisitBooking(at=at_night, collectors=("c-1", "c-2"), **OP),
        )
    assert "outside the contact window" in str(failed.value.cause)
    at_ten = at_night - timedelta(hours=13)
    booked = await _update(
        handle, LoanCollection.book_visit, VisitBooking(at=at_ten, collectors=("c-1", "c-2"), **OP)
    )
    assert booked.visit is not None and booked.visit.collectors == ["c-1", "c-2"]
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await _update(handle, LoanCollection.report_visit, VisitReport(outcome="met", **OP))
    assert "not yet" in str(failed.value.cause)

    with pytest.raises(case_client.ActionRejected) as refused:
        await case_client.act(
            dev_client, handle.id, LoanCollection.write_off, WriteOff(supervisor="sup-1", **OP)
        )
    assert refused.value.code is Refusal.approval_required
    request = (await _act(handle, LoanCollection.write_off, WriteOff(**OP))).pending_approval
    assert request is not None and request.kind == "write_off"
    for own in ("op-7", "OP-7"):  # principals compare case-insensitively
        with pytest.raises(case_client.ActionRejected) as refused:
            approval = Approve(request=request.request, operator=own, reason="mine")
            await case_client.act(dev_client, handle.id, LoanCollection.approve, approval)
        assert refused.value.code is Refusal.same_person
    approval = Approve(request=request.request, operator="sup-1", reason="uncollectable")
    final = await _update(handle, LoanCollection.approve, approval)
    assert final.closed_reason == "written_off"
    await handle.result()
    events = await audit_events(pool, handle.id)
    assert [e.type for e in events if e.type == "stage_changed"] == ["stage_changed"] * 3
    # The case keeps collecting while the request waits (a contact may fall between).
    four_eyes = [e for e in events if e.type.startswith("approval_") or e.type == "case_closed"]
    assert [e.type for e in four_eyes] == [
        "approval_requested",
        "approval_granted",
        "case_closed",
    ]
    closed, granted = four_eyes[-1], four_eyes[-2]
    assert closed.waived == TOTAL and closed.actor == "operator:op-7"
    assert granted.actor == "operator:sup-1"
