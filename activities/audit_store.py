"""The audit log in PostgreSQL: append (idempotent) and read back.

Rows are unique per (case, sequence number). Appending a row that is already there
with the same content is a no-op (a retried activity); with different content it is
refused, because two versions of one event means something is badly wrong.

Every row is chained: it stores the SHA-256 of its content and of the previous row's
hash (`activities.chain`), so `dunning audit verify` can tell a changed row by its seq.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from activities import checkpoints
from activities.chain import GENESIS, canonical, row_hash
from activities.checkpoints import CheckpointSigner
from schemas.activity_io import AuditAppended, AuditHead
from schemas.events import EVENT_ADAPTER, AuditRecord, Event

INSERT = """
INSERT INTO audit_events
    (case_id, seq, event_type, occurred_at, actor, workflow_id, run_id, payload,
     prev_hash, hash)
SELECT r.case_id, r.seq, r.event_type, r.occurred_at, r.actor, $1, $2, r.payload::jsonb,
       r.prev_hash, r.hash
FROM unnest($3::text[], $4::int[], $5::text[], $6::timestamptz[], $7::text[], $8::text[],
            $9::text[], $10::text[])
     AS r(case_id, seq, event_type, occurred_at, actor, payload, prev_hash, hash)
"""


# SQLSTATE classes that retrying the same statement cannot fix: data exceptions (22),
# integrity violations (23), syntax or access rule violations incl. privileges (42),
# and exceptions raised by triggers or functions (P0).
REFUSED_CLASSES = frozenset({"22", "23", "42", "P0"})


def refused_for_good(exc: BaseException) -> bool:
    state = getattr(exc, "sqlstate", None)
    return isinstance(exc, asyncpg.PostgresError) and str(state or "")[:2] in REFUSED_CLASSES


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


@dataclass(frozen=True)
class _Row:
    record: AuditRecord
    payload: dict[str, Any]
    prev_hash: str
    hash: str


def _payload(record: AuditRecord) -> dict[str, Any]:
    payload: dict[str, Any] = record.event.model_dump(mode="json")
    return payload


async def append(
    conn: asyncpg.Connection,
    workflow_id: str,
    run_id: str,
    records: list[AuditRecord],
    signer: CheckpointSigner | None = None,
) -> int:
    """Append records (see `append_batch`); returns how many were new."""
    return (await append_batch(conn, workflow_id, run_id, records, signer)).new


async def append_batch(
    conn: asyncpg.Connection,
    workflow_id: str,
    run_id: str,
    records: list[AuditRecord],
    signer: CheckpointSigner | None = None,
) -> AuditAppended:
    """Append records, chaining each to its predecessor; returns how many were new and
    each case's head after the append (its last row's seq and hash).

    Safe to repeat: rows already there with the same event are skipped. Appends to
    one case are serialised by a transaction-scoped advisory lock, so two writers
    never chain two rows to the same predecessor. With a `signer`, each head is also
    recorded as a signed checkpoint in the same transaction (`dunning.db.checkpoints`):
    the workers always pass one.
    """
    if not records:
        return AuditAppended(new=0, heads=[])
    by_case: dict[str, list[AuditRecord]] = {}
    for record in records:
        by_case.setdefault(record.case_id, []).append(record)
    fresh: list[_Row] = []
    async with conn.transaction():
        for case_id in sorted(by_case):  # one lock order, so no deadlock between batches
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", case_id)
        for case_id, case_records in sorted(by_case.items()):
            fresh += await _new_rows(conn, workflow_id, run_id, case_id, case_records)
        if fresh:
            await conn.execute(
                INSERT,
                workflow_id,
                run_id,
                [r.record.case_id for r in fresh],
                [r.record.seq for r in fresh],
                [r.record.event.type for r in fresh],
                [r.record.event.at for r in fresh],
                [r.record.event.actor for r in fresh],
                [canonical(r.payload) for r in fresh],
                [r.prev_hash for r in fresh],
                [r.hash for r in fresh],
            )
        heads = [await _head(conn, case_id) for case_id in sorted(by_case)]
        if signer is not None:
            for head in heads:
                await checkpoints.record(conn, signer, head.case_id, head.seq, head.hash)
    return AuditAppended(new=len(fresh), heads=heads)


async def _head(conn: asyncpg.Connection, case_id: str) -> AuditHead:
    row = await conn.fetchrow(
        "SELECT seq, hash FROM audit_events WHERE case_id = $1 ORDER BY seq DESC LIMIT 1",
        case_id,
    )
    assert row is not None, "a case just appended to has rows"
    return AuditHead(case_id=case_id, seq=row["seq"], hash=row["hash"] or "")


async def _new_rows(
    conn: asyncpg.Connection,
    workflow_id: str,
    run_id: str,
    case_id: str,
    records: list[AuditRecord],
) -> list[_Row]:
    """The records not stored yet, hashed in sequence; refuses a changed event."""
    existing = {
        row["seq"]: json.loads(row["payload"])
        for row in await conn.fetch(
            "SELECT seq, payload FROM audit_events WHERE case_id = $1 AND seq = ANY($2::int[])",
            case_id,
            [r.seq for r in records],
        )
    }
    rows: list[_Row] = []
    previous: tuple[int, str] | None = None  # (seq, hash) of the last row hashed here
    for record in sorted(records, key=lambda r: r.seq):
        payload = _payload(record)
        if record.seq in existing:
            if existing[record.seq] != payload:
                raise AuditConflict(
                    f"audit row {case_id}#{record.seq} already holds a different event"
                )
            continue
        if previous is not None and previous[0] == record.seq - 1:
            prev_hash = previous[1]
        else:
            prev_hash = await _hash_before(conn, case_id, record.seq)
        digest = row_hash(
            case_id=case_id,
            seq=record.seq,
            event_type=record.event.type,
            occurred_at=record.event.at,
            actor=record.event.actor,
            workflow_id=workflow_id,
            run_id=run_id,
            payload=payload,
            prev_hash=prev_hash,
        )
        rows.append(_Row(record, payload, prev_hash, digest))
        previous = (record.seq, digest)
    return rows


async def _hash_before(conn: asyncpg.Connection, case_id: str, seq: int) -> str:
    """The hash to chain row `seq` to: its predecessor's, or GENESIS at the start of the
    case or after unchained rows written before the chain existed."""
    if seq == 1:
        return GENESIS
    found: str | None = await conn.fetchval(
        "SELECT hash FROM audit_events WHERE case_id = $1 AND seq = $2", case_id, seq - 1
    )
    return found or GENESIS


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


@dataclass(frozen=True)
class AuditRow:
    """One row exactly as stored, for auditors: the payload is the raw JSON, not yet an
    Event, so a row that no longer validates can still be shown and reported."""

    case_id: str
    seq: int
    event_type: str
    occurred_at: datetime
    actor: str
    workflow_id: str
    run_id: str
    payload: dict[str, Any]
    recorded_at: datetime
    prev_hash: str | None
    hash: str | None

    def computed_hash(self) -> str:
        """What `hash` must be for this content and this `prev_hash`."""
        return row_hash(
            case_id=self.case_id,
            seq=self.seq,
            event_type=self.event_type,
            occurred_at=self.occurred_at,
            actor=self.actor,
            workflow_id=self.workflow_id,
            run_id=self.run_id,
            payload=self.payload,
            prev_hash=self.prev_hash or GENESIS,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "seq": self.seq,
            "event_type": self.event_type,
            "occurred_at": self.occurred_at.isoformat(),
            "actor": self.actor,
            "workflow_id": self.workflow_id,
            "run_id": self.run_id,
            "payload": self.payload,
            "recorded_at": self.recorded_at.isoformat(),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


async def read_rows(conn: asyncpg.Connection, case_id: str) -> list[AuditRow]:
    """Every row of a case in seq order, with its hashes."""
    rows = await conn.fetch(
        "SELECT case_id, seq, event_type, occurred_at, actor, workflow_id, run_id, payload, "
        "recorded_at, prev_hash, hash FROM audit_events WHERE case_id = $1 ORDER BY seq",
        case_id,
    )
    return [AuditRow(**{**dict(row), "payload": json.loads(row["payload"])}) for row in rows]


async def case_ids(conn: asyncpg.Connection) -> list[str]:
    """Every case the log knows, sorted."""
    rows = await conn.fetch("SELECT DISTINCT case_id FROM audit_events ORDER BY case_id")
    return [row["case_id"] for row in rows]


async def logged_among(
    conn: asyncpg.Connection | asyncpg.Pool, case_ids: Sequence[str]
) -> frozenset[str]:
    """Which of `case_ids` the log holds any row of (`has_rows` for many at once)."""
    found = await conn.fetch(
        "SELECT DISTINCT case_id FROM audit_events WHERE case_id = ANY($1::text[])",
        list(case_ids),
    )
    return frozenset(row["case_id"] for row in found)


async def has_rows(conn: asyncpg.Connection | asyncpg.Pool, case_id: str) -> bool:
    """Whether the log holds any row of this case (a case opened before, maybe long
    closed and gone from Temporal)."""
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM audit_events WHERE case_id = $1)", case_id
    )
    return found
