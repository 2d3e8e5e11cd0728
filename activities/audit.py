"""The audit append activity: every domain event, once, in the PostgreSQL log.

Its result, the head the append left (seq and hash per case), is kept by Temporal in
the case's history, and the same head is signed into `audit_checkpoints`: the two
anchors `dunning audit verify` holds the log to (docs/architecture.md, "Audit").

A passing outage (no connection, a restart, a deadlock) is raised as it is and the
activity retries. An append the store refuses for good — the events themselves are
refused (a data or constraint error, a trigger's exception) or the database denies the
writer (a privilege taken away) — would fail the same way forever: it is raised as a
non-retryable `AuditRefused` naming the error class and SQLSTATE (never the values),
and the workflow shows the case as blocked and tries again now and then.
"""

from __future__ import annotations

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import audit_store
from activities.audit_store import refused_for_good
from activities.checkpoints import CheckpointSigner
from schemas.activity_io import (
    APPEND_AUDIT,
    AUDIT_CONFLICT,
    AUDIT_REFUSED,
    AuditAppended,
    AuditBatch,
)

log = structlog.get_logger("dunning.audit")


class AuditActivities:
    def __init__(self, pool: asyncpg.Pool, signer: CheckpointSigner) -> None:
        self._pool = pool
        self._signer = signer

    @activity.defn(name=APPEND_AUDIT)
    async def append_audit(self, batch: AuditBatch) -> AuditAppended:
        return await self.append(batch)

    async def append(self, batch: AuditBatch) -> AuditAppended:
        """Append `batch` (safe to repeat): the activity's body, and what an outbound
        activity runs first with the events its attempt carries."""
        case_id = batch.records[0].case_id if batch.records else None
        async with self._pool.acquire() as conn:
            try:
                appended = await audit_store.append_batch(
                    conn, batch.workflow_id, batch.run_id, batch.records, self._signer
                )
            except audit_store.AuditConflict as exc:
                raise ApplicationError(str(exc), type=AUDIT_CONFLICT, non_retryable=True) from exc
            except asyncpg.PostgresError as exc:
                if not refused_for_good(exc):
                    raise
                reason = f"{type(exc).__name__} (SQLSTATE {exc.sqlstate})"
                log.error("audit append refused", case_id=case_id, error=reason)
                raise ApplicationError(
                    f"the audit store refused the events: {reason}",
                    type=AUDIT_REFUSED,
                    non_retryable=True,
                ) from None
        log.debug(
            "audit appended",
            case_id=case_id,
            workflow_id=batch.workflow_id,
            records=len(batch.records),
            new=appended.new,
        )
        return appended
