"""The collectors' side of the work queue (`call_tasks`): claim, read, complete.

The case's side (a task added per `agent_call` attempt, waited on) is
`activities/providers/call_queue.py`. A claim takes the team's first queued task in
`schemas.call_tasks.PRIORITY` order under `FOR UPDATE SKIP LOCKED`, so concurrent
collectors each get a different one and none waits on another's; the compliance guard
is asked again (`check`: the case's `attempt_check` query) while the row is locked, and
a refused task is withdrawn with the guard's reason and the next one tried. A
completion is the claiming collector's only; with a promise, the promise is sent to the
case first (the row locked meanwhile), and the task completes only if the case accepts
it. See docs/console.md, "The collectors' queue".
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import asyncpg

from schemas.call_tasks import PRIORITY, ClaimAnswer, Outcome, TaskState

COLUMNS = (
    "id, case_id, workflow_id, idempotency_key, team, stage, stage_rank, balance, currency, "
    "promise_due, phone_index, due_at, expires_at, state, claimed_by, claimed_at, outcome, "
    "promise_amount, promise_pay_by, ended_reason, ended_at"
)
NEXT = f"""
SELECT {COLUMNS} FROM call_tasks
WHERE team = $1 AND state = 'queued' AND expires_at > now()
ORDER BY {PRIORITY}
LIMIT 1
FOR UPDATE SKIP LOCKED
"""
EXPIRE = """
UPDATE call_tasks SET state = 'expired', ended_reason = 'the contact window closed',
       ended_at = now()
WHERE team = $1 AND state IN ('queued', 'claimed') AND expires_at <= now()
"""
CLAIMED = """
UPDATE call_tasks SET state = 'claimed', claimed_by = $2, claimed_at = now()
WHERE id = $1
"""
WITHDRAW = """
UPDATE call_tasks SET state = 'withdrawn', ended_reason = $2, ended_at = now() WHERE id = $1
"""
COMPLETE = """
UPDATE call_tasks SET state = 'completed', outcome = $2, promise_amount = $3,
       promise_pay_by = $4, ended_at = now()
WHERE id = $1
"""
DEPTH = """
SELECT count(*) AS depth, min(due_at) AS oldest FROM call_tasks
WHERE team = $1 AND state = 'queued' AND expires_at > now()
"""
ALL_DEPTH = """
SELECT team, count(*) AS depth, min(due_at) AS oldest FROM call_tasks
WHERE state = 'queued' AND expires_at > now() GROUP BY team ORDER BY team
"""


@dataclass(frozen=True)
class Task:
    id: int
    case_id: str
    workflow_id: str
    idempotency_key: str
    team: str
    stage: str
    stage_rank: int
    balance: Decimal
    currency: str
    promise_due: date | None
    phone_index: int
    due_at: datetime
    expires_at: datetime
    state: TaskState
    claimed_by: str | None
    claimed_at: datetime | None
    outcome: Outcome | None
    promise_amount: Decimal | None
    promise_pay_by: date | None
    ended_reason: str | None
    ended_at: datetime | None


@dataclass(frozen=True)
class Refused:
    """A task the guard refused at claim time (withdrawn), and why."""

    task_id: int
    rule: str
    detail: str


@dataclass(frozen=True)
class Claim:
    task: Task | None  # None: the queue is empty
    refused: tuple[Refused, ...] = ()


@dataclass(frozen=True)
class Depth:
    team: str
    depth: int
    oldest: datetime | None


Check = Callable[[Task], Awaitable[ClaimAnswer]]


class NotYours(LookupError):
    """No such task, or not claimed by this collector (they are told the same)."""


class NotClaimed(ValueError):
    """The task is no longer claimed (completed, withdrawn, expired): `state` says."""

    def __init__(self, state: str) -> None:
        super().__init__(f"the task is {state}")
        self.state = state


def _task(row: asyncpg.Record) -> Task:
    return Task(**dict(row))


async def claim(pool: asyncpg.Pool, collector: str, team: str, check: Check) -> Claim:
    """The next task of `team` for `collector`, checked by the guard (`check`), claimed;
    tasks the guard refuses are withdrawn on the way (returned in `refused`)."""
    refused: list[Refused] = []
    async with pool.acquire() as conn:
        await conn.execute(EXPIRE, team)
        while True:
            async with conn.transaction():
                row = await conn.fetchrow(NEXT, team)
                if row is None:
                    return Claim(None, tuple(refused))
                task = _task(row)
                answer = await check(task)
                if answer.allowed:
                    await conn.execute(CLAIMED, task.id, collector)
                    claimed = await conn.fetchrow(
                        f"SELECT {COLUMNS} FROM call_tasks WHERE id = $1", task.id
                    )
                    return Claim(_task(claimed), tuple(refused))
                rule = answer.rule or "refused"
                await conn.execute(WITHDRAW, task.id, f"at claim: {rule}")
                refused.append(Refused(task.id, rule, answer.detail or ""))


async def held(pool: asyncpg.Pool, task_id: int, collector: str) -> Task:
    """Task `task_id` if `collector` claimed it (whatever its state now); else NotYours."""
    row = await pool.fetchrow(f"SELECT {COLUMNS} FROM call_tasks WHERE id = $1", task_id)
    if row is None or row["claimed_by"] != collector:
        raise NotYours(task_id)
    return _task(row)


async def complete(
    pool: asyncpg.Pool,
    task_id: int,
    collector: str,
    outcome: Outcome,
    promise: tuple[Decimal, date] | None = None,
    send_promise: Callable[[Task], Awaitable[None]] | None = None,
) -> Task:
    """Complete `collector`'s claimed task with `outcome`. A promise (`outcome` promise,
    its amount and date) is sent to the case by `send_promise` while the row is locked:
    if it raises, nothing changes here and the error reaches the caller."""
    if (outcome == "promise") != (promise is not None):
        raise ValueError("outcome: a promise needs its amount and date, and only a promise")
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {COLUMNS} FROM call_tasks WHERE id = $1 FOR UPDATE", task_id
        )
        if row is None or row["claimed_by"] != collector:
            raise NotYours(task_id)
        task = _task(row)
        if task.state == "claimed" and task.expires_at <= await conn.fetchval("SELECT now()"):
            await conn.execute(
                "UPDATE call_tasks SET state = 'expired', ended_reason = $2, ended_at = now() "
                "WHERE id = $1",
                task_id,
                "the contact window closed",
            )
            return _task(
                await conn.fetchrow(f"SELECT {COLUMNS} FROM call_tasks WHERE id = $1", task_id)
            )
        if task.state != "claimed":
            raise NotClaimed(task.state)
        if promise is not None and send_promise is not None:
            await send_promise(task)
        amount, pay_by = promise if promise is not None else (None, None)
        await conn.execute(COMPLETE, task_id, outcome, amount, pay_by)
        done = await conn.fetchrow(f"SELECT {COLUMNS} FROM call_tasks WHERE id = $1", task_id)
    return _task(done)


async def depth(pool: asyncpg.Pool, team: str) -> Depth:
    row = await pool.fetchrow(DEPTH, team)
    return Depth(team, int(row["depth"]), row["oldest"])


async def depths(pool: asyncpg.Pool) -> list[Depth]:
    """Every team's queued tasks and its oldest (the supervisors' dashboard)."""
    return [Depth(r["team"], int(r["depth"]), r["oldest"]) for r in await pool.fetch(ALL_DEPTH)]


async def claimed_by(pool: asyncpg.Pool, collector: str) -> list[Task]:
    """The tasks `collector` holds now (claimed, not completed)."""
    rows = await pool.fetch(
        f"SELECT {COLUMNS} FROM call_tasks WHERE claimed_by = $1 AND state = 'claimed' "
        "ORDER BY claimed_at",
        collector,
    )
    return [_task(r) for r in rows]
