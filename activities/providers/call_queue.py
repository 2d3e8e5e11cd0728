"""The collectors' partner: a call task in the team's queue (`call_tasks`), not a dialer.

`deliver` adds the attempt's task once (its idempotency key is the row's key: an
activity retried after a worker died finds its task) and waits, heartbeating through
`activities.outbound.delivering`, until a collector completes it: the outcome they
chose is the receipt's, so it feeds the caps and reachability as a dialer's does. The
row holds no personal data: the phone number stays in the case (the console shows it to
the claiming collector only, recorded).

- Withdrawn by the case (the workflow cancels the attempt): the task leaves the queue
  (`withdrawn`) unless it was completed meanwhile, which wins.
- Ended without an outcome (expired at its deadline, or refused by the guard when a
  collector claimed it): the activity fails with a retry that cannot fit before its
  deadline, so the attempt ends as `contact_expired` and is decided again at the next
  opening. Claims never take a task past its `expires_at` (the attempt's deadline: the
  end of the borrower's contact window).
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.providers.base import Content
from schemas.activity_io import OutboundRequest, ProviderReceipt

log = structlog.get_logger("dunning.call_queue")

POLL_EVERY_S = 0.5
# Past any deadline: the server gives up at once and the attempt ends as expired.
NO_RETRY_FITS = timedelta(days=2)

ENQUEUE = """
INSERT INTO call_tasks (case_id, workflow_id, idempotency_key, team, stage, stage_rank,
                        balance, currency, promise_due, phone_index, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id
"""
BY_KEY = "SELECT id FROM call_tasks WHERE idempotency_key = $1"
STATE = "SELECT state, outcome, ended_reason FROM call_tasks WHERE id = $1"
# Taken out of the queue unless a collector completed it first (the row's lock orders
# this after a completion in progress: then nothing changes and the outcome wins).
END = """
UPDATE call_tasks SET state = $2, ended_reason = $3, ended_at = now()
WHERE id = $1 AND state IN ('queued', 'claimed')
"""


async def enqueue(pool: asyncpg.Pool, request: OutboundRequest, workflow_id: str) -> int:
    """The task of `request` (added now, or the one an earlier try added): its id."""
    facts = request.task
    if facts is None:
        raise ApplicationError(
            f"{request.channel} request without the call task's facts",
            type="NoTaskFacts",
            non_retryable=True,
        )
    async with pool.acquire() as conn:
        found = await conn.fetchval(
            ENQUEUE,
            request.case_id,
            workflow_id,
            request.idempotency_key,
            facts.team,
            request.stage,
            facts.stage_rank,
            facts.balance,
            facts.currency,
            facts.promise_due,
            facts.phone_index,
            facts.expires_at,
        )
        if found is None:
            found = await conn.fetchval(BY_KEY, request.idempotency_key)
    return int(found)


class CallQueueProvider:
    """Partner `collectors` of the channel table: the team's queue in PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool, poll_s: float = POLL_EVERY_S) -> None:
        self._pool = pool
        self._poll_s = poll_s
        # A person's task lasts until they finish it or its deadline: no bound.
        self.call_timeout_s = 0.0

    async def deliver(self, request: OutboundRequest, content: Content) -> ProviderReceipt:
        info = activity.info()
        if request.task is None:
            raise ApplicationError(
                f"{request.channel} request without the call task's facts",
                type="NoTaskFacts",
                non_retryable=True,
            )
        expires_at = request.task.expires_at
        workflow_id = info.workflow_id or request.case_id
        task_id = await enqueue(self._pool, request, workflow_id)
        try:
            return await self._outcome(task_id)
        except asyncio.CancelledError:
            # Withdrawn by the case, or the deadline came (the server cancels us).
            ended = "expired" if datetime.now(UTC) >= expires_at else "withdrawn"
            done = await self._pool.execute(END, task_id, ended, "the case withdrew the attempt")
            if done.endswith(" 0"):
                row = await self._pool.fetchrow(STATE, task_id)
                if row is not None and row["state"] == "completed":
                    log.info("completed before the withdrawal reached it", task=task_id)
                    return _receipt(task_id, str(row["outcome"]))
            raise

    async def _outcome(self, task_id: int) -> ProviderReceipt:
        while True:
            row = await self._pool.fetchrow(STATE, task_id)
            if row is None:  # pragma: no cover - rows are never deleted
                raise ApplicationError(f"call task {task_id} vanished", type="TaskMissing")
            if row["state"] == "completed":
                return _receipt(task_id, str(row["outcome"]))
            if row["state"] in ("expired", "withdrawn"):
                raise ApplicationError(
                    f"call task {task_id} {row['state']}: {row['ended_reason'] or '-'}",
                    type="CallTaskEnded",
                    next_retry_delay=NO_RETRY_FITS,
                )
            await asyncio.sleep(self._poll_s)


def _receipt(task_id: int, outcome: str) -> ProviderReceipt:
    return ProviderReceipt(provider_ref=f"call-task-{task_id}", outcome=outcome)
