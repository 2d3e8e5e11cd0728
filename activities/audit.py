"""The audit append activity: every domain event, once, in the PostgreSQL log.

Its result, the head the append left (seq and hash per case), is kept by Temporal in
the case's history, and the same head is signed into `audit_checkpoints`: the two
anchors `dunning audit verify` holds the log to (docs/architecture.md, "Audit")."""

from __future__ import annotations

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from dunning.db import audit_store
from dunning.db.checkpoints import CheckpointSigner
from schemas.activity_io import AuditAppended, AuditBatch

log = structlog.get_logger("dunning.audit")


class AuditActivities:
    def __init__(self, pool: asyncpg.Pool, signer: CheckpointSigner) -> None:
        self._pool = pool
        self._signer = signer

    @activity.defn(name="append_audit")
    async def append_audit(self, batch: AuditBatch) -> AuditAppended:
        async with self._pool.acquire() as conn:
            try:
                appended = await audit_store.append_batch(
                    conn, batch.workflow_id, batch.run_id, batch.records, self._signer
                )
            except audit_store.AuditConflict as exc:
                raise ApplicationError(str(exc), type="AuditConflict", non_retryable=True) from exc
        log.debug(
            "audit appended",
            case_id=batch.records[0].case_id if batch.records else None,
            workflow_id=batch.workflow_id,
            records=len(batch.records),
            new=appended.new,
        )
        return appended
