"""The compliance guard in the workflow, on the time-skipping server: a deferral to the
window's opening, the US week after a conversation, the CN cap on conversations."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import holidays
import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.providers.sandbox import SandboxProvider
from dunning.settings import Settings
from schemas.commands import ThirdPartyOptOut
from schemas.events import Event
from schemas.policy import Policy
from tests.factories import case_input
from tests.records import audit_events
from tests.timeskip import skip
from worker import build_worker
from workflows.inputs import LoanCollectionInput
from workflows.loan_collection import LoanCollection

NEW_YORK = ZoneInfo("America/New_York")
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture
async def answering_worker(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool, stack_settings: Settings, task_queue: str
) -> AsyncIterator[Worker]:
    """A worker whose dialer reports every call as answered: a conversation."""
    provider = SandboxProvider(pool, call_outcome="answered")
    async with build_worker(
        ts_env.client, pool, task_queue, stack_settings, provider=provider
    ) as worker:
        yield worker


def _policy(compliance: str, actions: list[dict[str, Any]]) -> Policy:
    return Policy.model_validate(
        {
            "name": "guard-test",
            "version": 1,
            "compliance": compliance,
            "stages": [{"name": "reminder", "from_dpd": 1, "actions": actions}],
        }
    )


async def _skip_to(env: WorkflowEnvironment, zone: ZoneInfo, country: str, **when: Any) -> None:
    """Advance the server's clock to the next local instant matching `when` (hour,
    minute, weekday) whose day and the day after are working days."""
    now = (await env.get_current_time()).astimezone(zone)
    weekday = when.pop("weekday", None)
    found = holidays.country_holidays(country, years=[now.year, now.year + 1])
    day = now.date()
    while True:
        target = datetime.combine(day, time(**when), tzinfo=zone)
        if (
            target > now
            and (weekday is None or day.weekday() == weekday)
            and day not in found
            and day + timedelta(days=1) not in found
        ):
            break
        day += timedelta(days=1)
    await env.sleep(target - now)


async def _open(
    env: WorkflowEnvironment, task_queue: str, policy: Policy, zone: ZoneInfo
) -> WorkflowHandle[Any, Any]:
    case = case_input(f"L-guard-{uuid.uuid4().hex[:8]}", borrower={"timezone": zone.key})
    params = LoanCollectionInput(case=case, policy=policy)
    return await env.client.start_workflow(
        LoanCollection.run, params, id=case.case_id, task_queue=task_queue
    )


def _of(events: list[Event], kind: str) -> list[Any]:
    return [e for e in events if e.type == kind]


async def test_a_case_opened_after_the_window_is_first_contacted_at_the_next_opening(
    ts_env: WorkflowEnvironment, ts_worker: Worker, pool: asyncpg.Pool, task_queue: str
) -> None:
    # 21:50 in New York is after the US window (08:00-21:00, Reg F §1006.6).
    await _skip_to(ts_env, NEW_YORK, "US", hour=21, minute=50)
    policy = _policy("us", [{"channel": "sms", "template": "reminder", "every_days": 3}])
    handle = await _open(ts_env, task_queue, policy, NEW_YORK)
    await skip(ts_env, timedelta(hours=12))

    events = await audit_events(pool, handle.id)
    opened = events[0].at.astimezone(NEW_YORK)
    assert (opened.hour, opened.minute) == (21, 50)
    deferred = _of(events, "contact_deferred")
    assert [(e.rule, e.channel, e.occurrence) for e in deferred] == [("contact_window", "sms", 0)]
    first = _of(events, "contact_attempted")[0].at.astimezone(NEW_YORK)
    assert first.date() == opened.date() + timedelta(days=1)
    assert (first.hour, first.minute) == (8, 0)
    sent = _of(events, "contact_attempted")[0].at
    assert deferred[0].until <= sent < deferred[0].until + timedelta(seconds=1)
    status = await handle.query(LoanCollection.status)
    assert any("deferred by contact_window" in line.summary for line in status.last_events)
    await handle.terminate("test over")


async def test_us_no_call_within_seven_days_after_a_conversation(
    ts_env: WorkflowEnvironment, answering_worker: Worker, pool: asyncpg.Pool, task_queue: str
) -> None:
    await _skip_to(ts_env, NEW_YORK, "US", hour=10, minute=0, weekday=0)  # a Monday
    policy = _policy("us", [{"channel": "call", "every_days": 1}])
    handle = await _open(ts_env, task_queue, policy, NEW_YORK)
    await skip(ts_env, timedelta(days=7, hours=1))

    events = await audit_events(pool, handle.id)
    calls = [e.at.astimezone(NEW_YORK) for e in _of(events, "contact_attempted")]
    assert len(calls) == 2, calls
    monday = calls[0].date()
    assert monday.weekday() == 0
    assert calls[1].date() == monday + timedelta(days=7)  # the next Monday, not before
    skipped = _of(events, "contact_skipped")
    assert len(skipped) == 6 and {e.rule for e in skipped} == {"no_call_after_conversation"}
    assert all(monday < e.at.astimezone(NEW_YORK).date() < calls[1].date() for e in skipped)
    await handle.terminate("test over")


async def test_cn_the_fourth_conversation_in_a_day_is_skipped_and_named(
    ts_env: WorkflowEnvironment, answering_worker: Worker, pool: asyncpg.Pool, task_queue: str
) -> None:
    await _skip_to(ts_env, SHANGHAI, "CN", hour=10, minute=0)
    calls = [{"channel": "call", "at_days": [0]} for _ in range(4)]
    handle = await _open(ts_env, task_queue, _policy("cn", calls), SHANGHAI)
    await skip(ts_env, timedelta(hours=2))

    events = await audit_events(pool, handle.id)
    attempted = _of(events, "contact_attempted")
    assert [e.outcome for e in attempted] == ["answered"] * 3
    skipped = _of(events, "contact_skipped")
    assert [(e.rule, e.channel, e.action_index) for e in skipped] == [
        ("connected_calls_per_day", "call", 3)
    ]
    assert "at most 3" in skipped[0].detail
    await handle.terminate("test over")


async def test_an_unreachable_borrowers_contact_gets_a_message_without_the_debt_once(
    ts_env: WorkflowEnvironment, ts_worker: Worker, pool: asyncpg.Pool, task_queue: str
) -> None:
    # The sandbox dialer reports every call unanswered: after the third, the borrower is
    # unreachable and the emergency contact may be asked to pass a message on.
    await _skip_to(ts_env, SHANGHAI, "CN", hour=10, minute=0)
    policy = _policy(
        "cn",
        [
            {"channel": "call", "every_days": 1},
            {"channel": "third_party_sms", "template": "third_party", "every_days": 1},
        ],
    )
    contact = {"name": "Li Na", "phone": "+86 137 0013 7000", "relation": "sibling"}
    case = case_input(
        f"L-third-{uuid.uuid4().hex[:8]}",
        borrower={"timezone": SHANGHAI.key, "emergency_contacts": [contact]},
    )
    handle = await ts_env.client.start_workflow(
        LoanCollection.run,
        LoanCollectionInput(case=case, policy=policy),
        id=case.case_id,
        task_queue=task_queue,
    )
    await skip(ts_env, timedelta(days=3, hours=1))
    await handle.execute_update(
        "third_party_opt_out", ThirdPartyOptOut(contact=0, operator="op-7", reason="asked")
    )
    await skip(ts_env, timedelta(days=2))

    events = await audit_events(pool, handle.id)
    texts = [e for e in events if getattr(e, "channel", None) == "third_party_sms"]
    assert [(e.type, getattr(e, "rule", None)) for e in texts] == [
        ("contact_skipped", "borrower_reachable"),  # day 0: 1 call
        ("contact_skipped", "borrower_reachable"),  # day 1: 2 calls
        ("contact_attempted", None),  # day 2: the third call went unanswered
        ("contact_attempted", None),  # day 3
        ("contact_skipped", "third_party_opt_out"),  # day 4: she opted out
        ("contact_skipped", "third_party_opt_out"),
    ]
    async with pool.acquire() as conn:
        sent = await conn.fetch(
            "SELECT recipient, body FROM outbox WHERE case_id = $1 AND channel = $2",
            handle.id,
            "third_party_sms",
        )
    assert [row["recipient"] for row in sent] == ["+8613700137000"] * 2
    loan = case.loan
    for row in sent:
        assert case.borrower.name in row["body"]
        for secret in (loan.id, str(loan.outstanding), loan.currency, "逾期", "借款"):
            assert secret not in row["body"], f"{secret!r} disclosed to a third party"
    status = await handle.query(LoanCollection.status)
    assert status.unreachable and status.third_party_opt_outs == [0]
    await handle.terminate("test over")
