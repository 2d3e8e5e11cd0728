"""The collectors' work queue on the real PostgreSQL, through the real claim code
(`dunning.work_queue`) and the real enqueue of the activity
(`activities.providers.call_queue`): 200 tasks claimed by 4 collectors at once, each
claimed exactly once and none lost; the documented priority order; expiry at the
deadline; one team never sees another's tasks; a task the guard refuses at claim time
is withdrawn and the next one given; a retried activity finds its task again."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from activities.providers.call_queue import enqueue
from dunning import work_queue
from schemas.activity_io import CallTaskFacts, OutboundRequest
from schemas.call_tasks import OUTCOMES, ClaimAnswer
from schemas.compliance import CONNECTED_OUTCOMES, INVALID_NUMBER_OUTCOMES

LATER = timedelta(hours=1)


def _team() -> str:
    return f"t-{uuid.uuid4().hex[:8]}"


def _request(
    team: str,
    n: int,
    stage_rank: int = 0,
    balance: str = "100.00",
    promise_due: date | None = None,
    lasts: timedelta = LATER,
) -> OutboundRequest:
    return OutboundRequest(
        case_id=f"case-L-q-{team}-{n}",
        idempotency_key=f"{team}:{n}:agent_call",
        channel="agent_call",
        stage="reminder",
        recipient="+8613800138000",
        language="en",
        task=CallTaskFacts(
            team=team,
            stage_rank=stage_rank,
            balance=Decimal(balance),
            currency="CNY",
            promise_due=promise_due,
            expires_at=datetime.now(UTC) + lasts,
        ),
    )


async def _add(pool: asyncpg.Pool, request: OutboundRequest) -> int:
    assert request.task is not None
    return await enqueue(pool, request, request.case_id)


async def _allow(task: work_queue.Task) -> ClaimAnswer:
    return ClaimAnswer(allowed=True)


def test_the_outcomes_feed_caps_and_reachability_as_a_dialers_do() -> None:
    assert set(OUTCOMES) == {"answered", "no_answer", "wrong_number", "promise"}
    assert {"answered", "promise"} <= CONNECTED_OUTCOMES
    assert "no_answer" not in CONNECTED_OUTCOMES | INVALID_NUMBER_OUTCOMES
    assert "wrong_number" in INVALID_NUMBER_OUTCOMES


async def test_200_tasks_claimed_by_4_collectors_at_once_none_twice_none_lost(
    pool: asyncpg.Pool,
) -> None:
    team = _team()
    ids = [await _add(pool, _request(team, n, balance=str(100 + n))) for n in range(200)]
    assert len(set(ids)) == 200
    got: dict[str, list[int]] = {f"collector-{i}": [] for i in range(4)}

    async def work(collector: str) -> None:
        while True:
            claimed = await work_queue.claim(pool, collector, team, _allow)
            if claimed.task is None:
                return
            got[collector].append(claimed.task.id)
            await asyncio.sleep(0)  # let the others interleave

    await asyncio.gather(*(work(name) for name in got))
    every = [task for tasks in got.values() for task in tasks]
    assert sorted(every) == sorted(ids), "each task claimed exactly once, none lost"
    assert all(tasks for tasks in got.values()), {c: len(t) for c, t in got.items()}
    rows = await pool.fetch("SELECT id, state, claimed_by FROM call_tasks WHERE team = $1", team)
    assert {r["state"] for r in rows} == {"claimed"}
    owner = {task: collector for collector, tasks in got.items() for task in tasks}
    assert all(owner[r["id"]] == r["claimed_by"] for r in rows)
    assert (await work_queue.depth(pool, team)).depth == 0


async def test_the_queue_is_in_its_documented_priority_order(pool: asyncpg.Pool) -> None:
    team = _team()
    order = {
        "early small": (0, "100", None),
        "early large": (0, "900", None),
        "late stage": (2, "50", None),
        "broken promise": (0, "10", date(2026, 11, 1)),
        "older broken promise": (0, "10", date(2026, 10, 1)),
    }
    added = {}
    for n, (label, (rank, balance, due)) in enumerate(order.items()):
        added[await _add(pool, _request(team, n, rank, balance, due))] = label
    claimed = []
    while (got := await work_queue.claim(pool, "c-1", team, _allow)).task is not None:
        claimed.append(added[got.task.id])
    assert claimed == [
        "late stage",
        "older broken promise",
        "broken promise",
        "early large",
        "early small",
    ]


async def test_teams_are_separate_and_an_expired_task_is_never_claimed(
    pool: asyncpg.Pool,
) -> None:
    north, south = _team(), _team()
    await _add(pool, _request(north, 1))
    expired = await _add(pool, _request(north, 2, stage_rank=9, lasts=timedelta(seconds=-1)))
    assert (await work_queue.claim(pool, "s-1", south, _allow)).task is None
    got = await work_queue.claim(pool, "n-1", north, _allow)
    assert got.task is not None and got.task.id != expired
    state = await pool.fetchval("SELECT state FROM call_tasks WHERE id = $1", expired)
    assert state == "expired"


async def test_a_task_the_guard_refuses_at_claim_is_withdrawn_and_the_next_given(
    pool: asyncpg.Pool,
) -> None:
    team = _team()
    paused = await _add(pool, _request(team, 1, stage_rank=1))
    fine = await _add(pool, _request(team, 2, stage_rank=0))

    async def guard(task: work_queue.Task) -> ClaimAnswer:
        if task.id == paused:
            return ClaimAnswer(allowed=False, rule="paused", detail="collection paused")
        return ClaimAnswer(allowed=True)

    got = await work_queue.claim(pool, "c-1", team, guard)
    assert got.task is not None and got.task.id == fine
    assert [(r.task_id, r.rule) for r in got.refused] == [(paused, "paused")]
    row = await pool.fetchrow("SELECT state, ended_reason FROM call_tasks WHERE id = $1", paused)
    assert row["state"] == "withdrawn" and "paused" in row["ended_reason"]


async def test_a_retried_activity_finds_its_task_and_only_the_claimer_completes(
    pool: asyncpg.Pool,
) -> None:
    team = _team()
    request = _request(team, 1)
    first = await _add(pool, request)
    assert await _add(pool, request) == first, "the same key is the same task"
    assert await pool.fetchval("SELECT count(*) FROM call_tasks WHERE team = $1", team) == 1
    got = await work_queue.claim(pool, "c-1", team, _allow)
    assert got.task is not None
    with pytest.raises(work_queue.NotYours):
        await work_queue.complete(pool, first, "c-2", "answered")
    with pytest.raises(ValueError, match="outcome"):
        await work_queue.complete(pool, first, "c-1", "promise")
    done = await work_queue.complete(pool, first, "c-1", "no_answer")
    assert done.state == "completed" and done.outcome == "no_answer"
    with pytest.raises(work_queue.NotClaimed):
        await work_queue.complete(pool, first, "c-1", "answered")
