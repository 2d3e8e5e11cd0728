"""The audit log in PostgreSQL: append (idempotent) and read back.

Rows are unique per (case, sequence number). Appending a row that is already there
with the same content is a no-op (a retried activity); with different content it is
refused, because two versions of one event means something is badly wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from schemas.events import EVENT_ADAPTER, AuditRecord, Event

INSERT = """
INSERT INTO audit_events
    (case_id, seq, event_type, occurred_at, actor, workflow_id, run_id, payload)
SELECT r.case_id, r.seq, r.event_type, r.occurred_at, r.actor, $1, $2, r.payload::jsonb
FROM unnest($3::text[], $4::int[], $5::text[], $6::timestamptz[], $7::text[], $8::text[])
     AS r(case_id, seq, event_type, occurred_at, actor, payload)
ON CONFLICT (case_id, seq) DO NOTHING
RETURNING seq
"""


class AuditConflict(RuntimeError):
    """The log already holds a different event at this case and sequence number."""


@dataclass(frozen=True)
class StoredEvent:
    case_id: str
    seq: int
    event: Event
    workflow_id: str
    run_id: str
    recorded_at: datetime


def _payload(record: AuditRecord) -> str:
    return json.dumps(record.event.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)


async def append(
    conn: asyncpg.Connection, workflow_id: str, run_id: str, records: list[AuditRecord]
) -> int:
    """Append records; returns how many were new. Safe to repeat."""
    if not records:
        return 0
    payloads = [_payload(r) for r in records]
    async with conn.transaction():
        inserted = await conn.fetch(
            INSERT,
            workflow_id,
            run_id,
            [r.case_id for r in records],
            [r.seq for r in records],
            [r.event.type for r in records],
            [r.event.at for r in records],
            [r.event.actor for r in records],
            payloads,
        )
        fresh = {row["seq"] for row in inserted}
        stale = [(r, p) for r, p in zip(records, payloads, strict=True) if r.seq not in fresh]
        for record, payload in stale:
            existing = await conn.fetchval(
                "SELECT payload FROM audit_events WHERE case_id = $1 AND seq = $2",
                record.case_id,
                record.seq,
            )
            if json.loads(existing) != json.loads(payload):
                raise AuditConflict(
                    f"audit row {record.case_id}#{record.seq} already holds a different event"
                )
    return len(fresh)


async def read_case(conn: asyncpg.Connection, case_id: str) -> list[StoredEvent]:
    rows = await conn.fetch(
        "SELECT case_id, seq, payload, workflow_id, run_id, recorded_at FROM audit_events "
        "WHERE case_id = $1 ORDER BY seq",
        case_id,
    )
    return [_stored(row) for row in rows]


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(
        case_id=row["case_id"],
        seq=row["seq"],
        event=EVENT_ADAPTER.validate_json(row["payload"]),
        workflow_id=row["workflow_id"],
        run_id=row["run_id"],
        recorded_at=row["recorded_at"],
    )
