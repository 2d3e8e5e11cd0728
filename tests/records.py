"""Reading what the engine left behind: the audit log and the sandbox outbox."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import asyncpg

from activities import audit_store
from schemas.events import Event


async def audit_counts(conn: asyncpg.Connection | asyncpg.Pool, prefix: str) -> tuple[int, int]:
    """(audit rows so far, cases closed so far) of the cases whose loan ids start with
    `prefix`: how far a portfolio in flight has come."""
    row = await conn.fetchrow(
        "SELECT count(*) AS rows, count(*) FILTER (WHERE event_type = 'case_closed') "
        "AS closed FROM audit_events WHERE case_id LIKE $1",
        f"case-{prefix}-%",
    )
    assert row is not None
    return row["rows"], row["closed"]


async def audit_events(pool: asyncpg.Pool, case_id: str) -> list[Event]:
    """The case's events in order; fails if the sequence has a gap or starts elsewhere."""
    async with pool.acquire() as conn:
        stored = await audit_store.read_case(conn, case_id)
    seqs = [s.seq for s in stored]
    assert seqs == list(range(1, len(seqs) + 1)), f"{case_id}: audit sequence {seqs}"
    return [s.event for s in stored]


async def outbox_rows(pool: asyncpg.Pool, case_id: str) -> list[dict[str, Any]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT idempotency_key, channel, payload, created_at FROM outbox "
            "WHERE case_id = $1 ORDER BY id",
            case_id,
        )
    return [{**dict(row), "stage": json.loads(row["payload"])["stage"]} for row in rows]


def contacts_in_audit(events: list[Event]) -> Counter[tuple[str, str]]:
    """(stage, channel) -> how many provider calls the audit log records."""
    counts: Counter[tuple[str, str]] = Counter()
    for event in events:
        if event.type == "contact_attempted":
            counts[(event.stage, event.channel)] += 1
        elif event.type == "field_visit_scheduled":
            counts[(event.stage, "field_visit")] += 1
        elif event.type == "handed_to_legal":
            counts[(event.stage, "legal_handoff")] += 1
    return counts


def keys_in_audit(events: list[Event]) -> list[str]:
    return [
        e.idempotency_key
        for e in events
        if e.type in ("contact_attempted", "field_visit_scheduled", "handed_to_legal")
    ]


def contacts_in_outbox(rows: list[dict[str, Any]]) -> Counter[tuple[str, str]]:
    return Counter((row["stage"], row["channel"]) for row in rows)
