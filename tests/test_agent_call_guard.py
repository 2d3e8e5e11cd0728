"""The guard on agent calls: a case on a real worker withdraws its queued call task on
a pause or a cease of calls; a claim is checked again by the case (its
`attempt_check` query) and a refused one withdrawn, the attempt ending as expired
(decided again at the next opening); a collector's outcome is the attempt's, counted as
a dialer's is: no answer toward the call caps and reachability, a wrong number marks
the phone invalid (pure, side by side with the dialer's `call`)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from dunning import case_client, work_queue
from schemas.call_tasks import ClaimAnswer
from schemas.channels import CHANNELS
from schemas.commands import CeaseContact, Pause
from schemas.events import CaseOpened, CollectionPaused, ContactAttempted
from tests.call_queue_support import agent_policy, open_agent_case, task_of, team
from tests.factories import case_input
from tests.records import audit_events
from tests.test_api import poll
from workflows import delivery
from workflows.decide import Effect
from workflows.evolve import evolve
from workflows.loan_collection import LoanCollection
from workflows.state import CaseState

OP = {"operator": "op-7", "reason": "asked"}


async def _ended(pool: asyncpg.Pool, case_id: str, kind: str) -> Any:
    async def found() -> Any:
        events = [e for e in await audit_events(pool, case_id) if e.type == kind]
        return events[0] if events else None

    return await poll(found, within=30)


@pytest.mark.parametrize(
    ("update", "command", "rule"),
    [
        (LoanCollection.pause_case, Pause(**OP), "paused"),
        (LoanCollection.cease_contact, CeaseContact(channel="call", **OP), "cease_contact"),
    ],
)
async def test_a_pause_or_a_cease_withdraws_the_queued_task(
    dev_worker: Worker,
    dev_client: Client,
    pool: asyncpg.Pool,
    task_queue: str,
    update: Any,
    command: Any,
    rule: str,
) -> None:
    crew = team()
    handle = await open_agent_case(dev_client, task_queue, crew, f"L-ag-{uuid.uuid4().hex[:8]}")
    task = await task_of(pool, handle.id)
    await case_client.act(dev_client, handle.id, update, command)
    withdrawn = await _ended(pool, handle.id, "contact_withdrawn")
    assert withdrawn.channel == "agent_call" and withdrawn.rule == rule
    assert await pool.fetchval("SELECT state FROM call_tasks WHERE id = $1", task) == "withdrawn"
    got = await work_queue.claim(pool, "c-1", crew, _never)
    assert got.task is None, "nothing left to claim"
    with pytest.raises(work_queue.NotYours):
        await work_queue.complete(pool, task, "c-1", "answered")
    await handle.terminate("test over")


async def _never(task: work_queue.Task) -> ClaimAnswer:
    raise AssertionError(f"task {task.id} should not be offered")


async def test_a_claim_the_case_refuses_withdraws_the_task_and_the_attempt_expires(
    dev_worker: Worker, dev_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    now = datetime.now(UTC)
    if now.hour >= 21:
        pytest.skip("needs a window closing later today (UTC)")
    closes = (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    window = {"start": "00:00", "end": closes.strftime("%H:%M")}
    crew = team()
    handle = await open_agent_case(
        dev_client, task_queue, crew, f"L-ag-{uuid.uuid4().hex[:8]}", window, timezone="UTC"
    )
    task = await task_of(pool, handle.id)
    row = await pool.fetchrow("SELECT * FROM call_tasks WHERE id = $1", task)
    assert row["expires_at"] == closes - delivery.DEADLINE_MARGIN, "ends with the window"
    asked: list[ClaimAnswer] = []

    async def after_the_window(found: work_queue.Task) -> ClaimAnswer:
        # The real query, for an instant after the window closed.
        answer = await case_client.attempt_check(
            dev_client, found.workflow_id, found.idempotency_key, closes + timedelta(minutes=5)
        )
        asked.append(answer)
        return answer

    now_allowed = await case_client.attempt_check(
        dev_client, row["workflow_id"], row["idempotency_key"], datetime.now(UTC)
    )
    assert now_allowed.allowed
    got = await work_queue.claim(pool, "c-1", crew, after_the_window)
    assert got.task is None
    assert [(r.task_id, r.rule) for r in got.refused] == [(task, "contact_window")]
    assert asked and not asked[0].allowed
    expired = await _ended(pool, handle.id, "contact_expired")
    assert expired.channel == "agent_call" and expired.retry_at > closes
    await handle.terminate("test over")


async def test_no_answer_from_a_collector_is_the_attempts_outcome(
    dev_worker: Worker, dev_client: Client, pool: asyncpg.Pool, task_queue: str
) -> None:
    crew = team()
    handle = await open_agent_case(dev_client, task_queue, crew, f"L-ag-{uuid.uuid4().hex[:8]}")
    task = await task_of(pool, handle.id)

    async def allow(found: work_queue.Task) -> ClaimAnswer:
        return await case_client.attempt_check(
            dev_client, found.workflow_id, found.idempotency_key, datetime.now(UTC)
        )

    got = await work_queue.claim(pool, "c-1", crew, allow)
    assert got.task is not None and got.task.id == task
    await work_queue.complete(pool, task, "c-1", "no_answer")
    attempted = await _ended(pool, handle.id, "contact_attempted")
    assert (attempted.channel, attempted.outcome) == ("agent_call", "no_answer")
    status = await case_client.status(dev_client, handle.id)
    assert status.in_flight is None
    await handle.terminate("test over")


NOW = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)


def _state() -> CaseState:
    opened = CaseOpened(at=NOW, case=case_input("L-ag-pure"), policy=agent_policy("a"), rules=3)
    return evolve(None, opened)


def _attempt(channel: str, outcome: str, n: int) -> ContactAttempted:
    return ContactAttempted(
        at=NOW + timedelta(minutes=n),
        channel=channel,  # type: ignore[arg-type]
        stage="reminder",
        action_index=0,
        occurrence=n,
        idempotency_key=f"k-{n}",
        provider_ref=f"r-{n}",
        outcome=outcome,
    )


@pytest.mark.parametrize("outcome", ["no_answer", "answered", "wrong_number", "promise"])
def test_a_collectors_outcome_counts_as_a_dialers(outcome: str) -> None:
    assert CHANNELS["agent_call"].capped and CHANNELS["agent_call"].guarded
    by_collector = evolve(_state(), _attempt("agent_call", outcome, 1))
    by_dialer = evolve(_state(), _attempt("call", outcome, 1))
    for field in ("calls", "failed_calls", "invalid_phones"):
        assert getattr(by_collector, field) == getattr(by_dialer, field), field
    if outcome == "wrong_number":
        assert by_collector.invalid_phones == [0]
    if outcome == "no_answer":
        assert by_collector.failed_calls == 1 and len(by_collector.calls) == 1


def test_a_paused_case_refuses_a_claim() -> None:
    paused = evolve(_state(), CollectionPaused(at=NOW, **OP))
    effect = Effect(
        channel="agent_call",
        stage="reminder",
        action_index=0,
        occurrence=0,
        template=None,
        idempotency_key="k",
    )
    assert delivery.claim_check(_state(), effect, NOW) is None
    block = delivery.claim_check(paused, effect, NOW)
    assert block is not None and block.rule == "paused"
