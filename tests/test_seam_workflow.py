"""The delivery seam in the workflow, on the time-skipping server: an attempt that
outlives the window expires and goes out once at the next opening; an audit store
that refuses a case's events blocks it visibly and contacts nobody until it accepts
them; a case on older rules moves to the current ones, recorded, when it runs live."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.providers.base import Content
from activities.providers.sandbox import SandboxProvider
from dunning import case_client
from dunning.audit.anchors import history_anchor
from dunning.audit.verify import verify_case
from dunning.runtime import build_worker, workflow_runner
from dunning.settings import Settings
from dunning.temporal_client import data_converter
from schemas.activity_io import OutboundRequest, ProviderReceipt
from schemas.channels import CHANNELS
from schemas.commands import Approve, PromiseToPay, Settlement
from schemas.events import EVENT_ADAPTER, CaseOpened, StageEntered
from schemas.policy import Policy
from schemas.refusals import Refusal
from tests.factories import case_input
from tests.records import audit_events, outbox_rows
from tests.test_compliance_workflow import _of, _open, _policy, _skip_to
from tests.timeskip import skip
from workflows.evolve import evolve
from workflows.inputs import LoanCollectionInput
from workflows.loan_collection import LoanCollection

SHANGHAI = ZoneInfo("Asia/Shanghai")


class FlakyGateway(SandboxProvider):
    """The SMS gateway is down (a retryable failure, "retry after an hour", as a 503
    with Retry-After would say) until the test says it is up."""

    down = True

    async def deliver(self, request: OutboundRequest, content: Content) -> ProviderReceipt:
        if self.down and CHANNELS[request.channel].partner == "sms":
            raise ApplicationError(
                "sms gateway unavailable",
                type="ProviderUnavailable",
                next_retry_delay=timedelta(hours=1),
            )
        return await super().deliver(request, content)


@pytest.fixture
async def flaky(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool, stack_settings: Settings, task_queue: str
) -> AsyncIterator[FlakyGateway]:
    gateway = FlakyGateway(pool)
    async with build_worker(ts_env.client, pool, task_queue, stack_settings, provider=gateway):
        yield gateway


def _one_sms() -> Policy:
    return _policy("cn", [{"channel": "sms", "template": "reminder", "at_days": [0]}])


async def test_an_attempt_the_gateway_fails_all_evening_expires_and_goes_out_once_next_morning(
    ts_env: WorkflowEnvironment, flaky: FlakyGateway, pool: asyncpg.Pool, task_queue: str
) -> None:
    await _skip_to(ts_env, SHANGHAI, "CN", hour=20, minute=0)
    handle = await _open(ts_env, task_queue, _one_sms(), SHANGHAI)
    await skip(ts_env, timedelta(hours=3))  # 23:00: the window closed at 22:00

    events = await audit_events(pool, handle.id)
    [expired] = _of(events, "contact_expired")
    deadline = expired.deadline.astimezone(SHANGHAI)
    assert (deadline.hour, deadline.minute) == (21, 59)
    retry = expired.retry_at.astimezone(SHANGHAI)
    assert (retry.hour, retry.minute) == (8, 0) and retry.date() > deadline.date()
    assert not _of(events, "contact_attempted")

    flaky.down = False
    await skip(ts_env, timedelta(hours=10))  # 09:00 the next day
    events = await audit_events(pool, handle.id)
    [sent] = _of(events, "contact_attempted")
    assert sent.at.astimezone(SHANGHAI).hour == 8
    assert sent.idempotency_key == expired.idempotency_key, "the same attempt, asked again"
    assert [r["idempotency_key"] for r in await outbox_rows(pool, handle.id)] == [
        sent.idempotency_key
    ]
    await handle.terminate("test over")


async def test_an_audit_store_that_refuses_a_case_blocks_it_visibly_and_contacts_nobody(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    task_queue: str,
) -> None:
    await _skip_to(ts_env, SHANGHAI, "CN", hour=10, minute=0)
    loan = f"L-blocked-{uuid.uuid4().hex[:8]}"
    trigger = f"refuse_{loan.replace('-', '_').lower()}"
    await owner_pool.execute(
        f"""CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.case_id = 'case-{loan}' THEN
                RAISE EXCEPTION 'refused by the test';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER {trigger} BEFORE INSERT ON audit_events
            FOR EACH ROW EXECUTE FUNCTION {trigger}();"""
    )
    try:
        case = case_input(loan, borrower={"timezone": SHANGHAI.key})
        handle: WorkflowHandle[Any, Any] = await ts_env.client.start_workflow(
            LoanCollection.run,
            LoanCollectionInput(case=case, policy=_one_sms()),
            id=case.case_id,
            task_queue=task_queue,
        )
        await skip(ts_env, timedelta(minutes=2))
        status = await handle.query(LoanCollection.status)
        assert status.state == "audit_blocked"
        assert status.audit_blocked is not None and "P0001" in status.audit_blocked
        assert "Wang" not in status.audit_blocked
        attributes = (await handle.describe()).typed_search_attributes
        assert {p.key.name: p.value for p in attributes}["DunningCaseState"] == "audit_blocked"
        assert await outbox_rows(pool, handle.id) == [], "no contact the log cannot hold"
    finally:
        await owner_pool.execute(f"DROP TRIGGER {trigger} ON audit_events")
        await owner_pool.execute(f"DROP FUNCTION {trigger}()")

    await skip(ts_env, timedelta(minutes=11))  # the next try of the append
    events = await audit_events(pool, handle.id)
    assert [e.type for e in events[:3]] == ["case_opened", "stage_entered", "contact_attempted"]
    assert (await handle.query(LoanCollection.status)).state == "open"
    assert len(await outbox_rows(pool, handle.id)) == 1
    await handle.terminate("test over")


async def test_a_case_on_older_rules_moves_to_the_current_ones_recorded_and_replays(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    await _skip_to(ts_env, SHANGHAI, "CN", hour=10, minute=0)
    case = case_input(f"L-upgrade-{uuid.uuid4().hex[:8]}", borrower={"timezone": SHANGHAI.key})
    policy = _one_sms()
    now = await ts_env.get_current_time()
    # A run continued from one that opened under rules 2 (before this code).
    state = evolve(None, CaseOpened(at=now, case=case, policy=policy, rules=2))
    state = evolve(
        state,
        StageEntered(
            at=now, stage="reminder", stage_index=0, days_past_due=1, active_offset=timedelta(0)
        ),
    )
    handle: WorkflowHandle[Any, Any] = await ts_env.client.start_workflow(
        LoanCollection.run,
        LoanCollectionInput(case=case, policy=policy, carried=state),
        id=case.case_id,
        task_queue=task_queue,
    )
    await skip(ts_env, timedelta(minutes=5))

    status = await handle.query(LoanCollection.status)
    assert status.rules == 3
    events = await audit_events_from(pool, handle.id)
    assert events[0].type == "rules_upgraded"
    assert (events[0].previous, events[0].rules) == (2, 3)
    await handle.terminate("test over")
    history = await handle.fetch_history()
    replayer = Replayer(
        workflows=[LoanCollection],
        workflow_runner=workflow_runner(),
        data_converter=data_converter(stack_settings),
    )
    await replayer.replay_workflow(history)  # raises if not deterministic


async def audit_events_from(pool: asyncpg.Pool, case_id: str) -> list[Any]:
    """The case's events from the first the log holds (a continued run starts later)."""
    rows = await pool.fetch(
        "SELECT payload FROM audit_events WHERE case_id = $1 ORDER BY seq", case_id
    )
    return [EVENT_ADAPTER.validate_json(row["payload"]) for row in rows]


async def test_an_agreement_the_store_refuses_is_not_recorded_at_all(
    dev_client: Client,
    dev_worker: Worker,
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    task_queue: str,
) -> None:
    loan = f"L-nodoc-{uuid.uuid4().hex[:8]}"
    case = case_input(loan)
    handle: WorkflowHandle[Any, Any] = await dev_client.start_workflow(
        LoanCollection.run,
        LoanCollectionInput(case=case, policy=_one_sms()),
        id=case.case_id,
        task_queue=task_queue,
    )
    trigger = f"refuse_{loan.replace('-', '_').lower()}"
    await owner_pool.execute(
        f"""CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.case_id = 'case-{loan}' THEN RAISE EXCEPTION 'no documents'; END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER {trigger} BEFORE INSERT ON agreements
            FOR EACH ROW EXECUTE FUNCTION {trigger}();"""
    )
    pay_by = (datetime.now(SHANGHAI) + timedelta(days=3)).date()
    promise = PromiseToPay(amount=Decimal("100.00"), pay_by=pay_by, operator="op-7", reason="r")
    try:
        with pytest.raises(case_client.ActionRejected) as refused:
            await case_client.act(dev_client, handle.id, LoanCollection.promise_to_pay, promise)
        assert refused.value.code is Refusal.agreement_not_stored
        status = await handle.query(LoanCollection.status)
        assert status.promise is None and status.state == "open"
    finally:
        await owner_pool.execute(f"DROP TRIGGER {trigger} ON agreements")
        await owner_pool.execute(f"DROP FUNCTION {trigger}()")

    done = await case_client.act(dev_client, handle.id, LoanCollection.promise_to_pay, promise)
    assert [line.type for line in done.recorded] == ["promise_made", "agreement_recorded"]
    for _ in range(50):  # the audit flush follows the update
        types = [e.type for e in await audit_events_from(pool, handle.id)]
        if "agreement_recorded" in types:
            break
        await asyncio.sleep(0.2)
    assert types.count("promise_made") == 1 and types.count("agreement_recorded") == 1
    await handle.terminate("test over")


async def test_an_approval_granted_while_its_expiry_falls_due_is_granted_and_not_expired(
    dev_client: Client,
    dev_worker: Worker,
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    task_queue: str,
) -> None:
    """The supervisor approves a settlement just before the request expires and storing
    its document outlasts the expiry: the expiry the case decided while the approval held
    the lock is stale and is not recorded (it failed every workflow task before)."""
    loan = f"L-late-{uuid.uuid4().hex[:8]}"
    case = case_input(loan)
    # Nothing due for a month of 1 s days: the case sleeps; a request expires after 3 s.
    later = [{"channel": "sms", "template": "reminder", "at_days": [30]}]
    policy = _policy("cn", later).model_copy(update={"day_length": timedelta(seconds=1)})
    handle: WorkflowHandle[Any, Any] = await dev_client.start_workflow(
        LoanCollection.run,
        LoanCollectionInput(case=case, policy=policy),
        id=case.case_id,
        task_queue=task_queue,
    )
    await asyncio.sleep(1)  # settled into its wait
    pay_by = (datetime.now(SHANGHAI) + timedelta(days=5)).date()
    offer = Settlement(amount=Decimal("750.00"), pay_by=pay_by, operator="op-7", reason="r")
    requested = await case_client.act(dev_client, handle.id, LoanCollection.offer_settlement, offer)
    pending = requested.status.approvals
    assert len(pending) == 1
    trigger = f"slow_{loan.replace('-', '_').lower()}"
    await owner_pool.execute(
        f"""CREATE FUNCTION {trigger}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.case_id = 'case-{loan}' THEN PERFORM pg_sleep(4.5); END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER {trigger} BEFORE INSERT ON agreements
            FOR EACH ROW EXECUTE FUNCTION {trigger}();"""
    )
    try:
        approval = Approve(request=pending[0].request, operator="sup-1", reason="mandate")
        answer = case_client.act(dev_client, handle.id, LoanCollection.approve, approval)
        done = await asyncio.wait_for(answer, 30)  # a wedged case never answers
    finally:
        await owner_pool.execute(f"DROP TRIGGER {trigger} ON agreements")
        await owner_pool.execute(f"DROP FUNCTION {trigger}()")
    assert done.status.settlement is not None and not done.status.approvals
    await asyncio.sleep(2)  # the case decides again once the approval let go of it
    failed = [
        e
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
    ]
    assert failed == [], "a workflow task failed: the case is wedged"
    status = await asyncio.wait_for(handle.query(LoanCollection.status), 10)
    assert status.settlement is not None and not status.approvals
    types = [e.type for e in await audit_events(pool, handle.id)]
    assert "approval_granted" in types and "approval_expired" not in types
    await handle.terminate("test over")


class LogReadingGateway(SandboxProvider):
    """An SMS gateway that, when a message reaches it, reads what the case's audit log
    holds at that moment."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.logged_at_delivery: list[list[str]] = []

    async def deliver(self, request: OutboundRequest, content: Content) -> ProviderReceipt:
        assert request.audit is None, "the provider is not handed the carried events"
        events = await audit_events(self._pool, request.case_id)
        self.logged_at_delivery.append([e.type for e in events])
        return await super().deliver(request, content)


async def test_an_attempt_carries_the_events_that_led_to_it_into_the_log_before_the_provider(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool, stack_settings: Settings, task_queue: str
) -> None:
    """The audit append travels with the attempt: no append of its own before it, yet
    the gateway finds the events that led to the message in the log; the receipt's head
    anchors `dunning audit verify`, and the history replays."""
    await _skip_to(ts_env, SHANGHAI, "CN", hour=10, minute=0)
    gateway = LogReadingGateway(pool)
    async with build_worker(ts_env.client, pool, task_queue, stack_settings, provider=gateway):
        handle = await _open(ts_env, task_queue, _one_sms(), SHANGHAI)
        await skip(ts_env, timedelta(minutes=2))
        status = await handle.query(LoanCollection.status)
        await handle.terminate("test over")

    assert gateway.logged_at_delivery == [["case_opened", "stage_entered"]]
    events = await audit_events(pool, handle.id)
    assert [e.type for e in events] == ["case_opened", "stage_entered", "contact_attempted"]
    assert status.state == "open" and status.audit_blocked is None

    history = await handle.fetch_history()
    scheduled = [
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]
    sms = CHANNELS["sms"].activity
    assert scheduled[0] == sms, f"no append of its own before the attempt: {scheduled}"
    [receipt_payload] = [
        e.activity_task_completed_event_attributes.result.payloads
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
    ][:1]
    [receipt] = await ts_env.client.data_converter.decode(receipt_payload, [ProviderReceipt])
    assert receipt.audit is not None
    assert [(h.case_id, h.seq) for h in receipt.audit.heads] == [(handle.id, 2)]

    anchor = await history_anchor(ts_env.client, handle.id)
    assert anchor is not None and anchor.seq == 3, "the last append's head, after the receipt's"

    replayer = Replayer(
        workflows=[LoanCollection],
        workflow_runner=workflow_runner(),
        data_converter=data_converter(stack_settings),
    )
    await replayer.replay_workflow(history)  # raises if not deterministic


async def test_while_an_attempt_waits_for_its_turn_the_log_is_behind_by_what_it_carries(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool, stack_settings: Settings, task_queue: str
) -> None:
    """The SMS partner's workers are gone (a backlog that long): the case shows how
    many events its attempt carries, and `dunning audit verify` says the log is behind
    by them, not that it lost them."""
    await _skip_to(ts_env, SHANGHAI, "CN", hour=10, minute=0)
    policy = Policy.model_validate(
        {
            "name": "carry-test",
            "version": 1,
            "compliance": "cn",
            "stages": [
                {"name": "reminder", "from_dpd": 1, "actions": [_SMS]},
                {"name": "negotiation", "from_dpd": 2, "actions": [_SMS]},
            ],
        }
    )
    group = build_worker(ts_env.client, pool, task_queue, stack_settings)
    async with group.cases:
        async with AsyncExitStack() as partners:
            for worker in group.partners:
                await partners.enter_async_context(worker)
            handle = await _open(ts_env, task_queue, policy, SHANGHAI)
            await skip(ts_env, timedelta(minutes=2))
            assert len(await outbox_rows(pool, handle.id)) == 1
        # Just past the next stage's SMS, which no worker takes (the server's clock stops
        # while an activity is outstanding: land seconds after it, not a day after).
        await skip(ts_env, timedelta(days=1) - timedelta(minutes=2))

        status = await handle.query(LoanCollection.status)
        assert status.stage == "negotiation"
        assert status.in_flight is not None and status.in_flight.carried == 1
        logged = await audit_events(pool, handle.id)
        assert status.events == len(logged) + 1 and logged[-1].type == "contact_attempted"

        report = await verify_case(pool, handle.id, ts_env.client)
        assert report.problems == []
        assert report.live == "open: 1 events carried by the attempt in flight"
        await handle.terminate("test over")


_SMS = {"channel": "sms", "template": "reminder", "at_days": [0]}
