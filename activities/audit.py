"""The audit append activity: every domain event, once, in the PostgreSQL log."""

from __future__ import annotations

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from dunning.db import audit_store
from schemas.activity_io import AuditBatch

log = structlog.get_logger("dunning.audit")


class AuditActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @activity.defn(name="append_audit")
    async def append_audit(self, batch: AuditBatch) -> int:
        async with self._pool.acquire() as conn:
            try:
                fresh = await audit_store.append(
                    conn, batch.workflow_id, batch.run_id, batch.records
                )
            except audit_store.AuditConflict as exc:
                raise ApplicationError(str(exc), type="AuditConflict", non_retryable=True) from exc
        log.debug(
            "audit appended",
            case_id=batch.records[0].case_id if batch.records else None,
            workflow_id=batch.workflow_id,
            records=len(batch.records),
            new=fresh,
        )
        return fresh
