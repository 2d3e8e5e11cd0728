"""Loads the committed audit log of `tests/fixtures/report_audit.json` (written by
`tests/make_report_fixture.py`) into a database, chained like the audit store chains
rows, so `dunning audit verify` would accept them. Loading twice adds nothing."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import asyncpg

from activities.chain import GENESIS, canonical, row_hash

FIXTURE = Path(__file__).parent / "fixtures" / "report_audit.json"
PERIOD = ("2020-03-01", "2020-03-31")  # --from, --to (a date: the whole day)

INSERT = """
INSERT INTO audit_events
    (case_id, seq, event_type, occurred_at, actor, workflow_id, run_id, payload,
     prev_hash, hash)
SELECT r.case_id, r.seq, r.event_type, r.occurred_at, r.actor, r.workflow_id, r.run_id,
       r.payload::jsonb, r.prev_hash, r.hash
FROM unnest($1::text[], $2::int[], $3::text[], $4::timestamptz[], $5::text[], $6::text[],
            $7::text[], $8::text[], $9::text[], $10::text[])
     AS r(case_id, seq, event_type, occurred_at, actor, workflow_id, run_id, payload,
          prev_hash, hash)
ON CONFLICT (case_id, seq) DO NOTHING
"""


async def load_report_fixture(pool: asyncpg.Pool) -> int:
    """Insert the fixture's rows; returns how many were new."""
    rows = json.loads(FIXTURE.read_text(encoding="utf-8"))
    columns: list[list[object]] = [[] for _ in range(10)]
    previous: dict[str, str] = {}
    for row in rows:
        occurred = datetime.fromisoformat(row["occurred_at"])
        prev_hash = previous.get(row["case_id"], GENESIS)
        digest = row_hash(
            case_id=row["case_id"],
            seq=row["seq"],
            event_type=row["event_type"],
            occurred_at=occurred,
            actor=row["actor"],
            workflow_id=row["workflow_id"],
            run_id=row["run_id"],
            payload=row["payload"],
            prev_hash=prev_hash,
        )
        previous[row["case_id"]] = digest
        values = (
            row["case_id"],
            row["seq"],
            row["event_type"],
            occurred,
            row["actor"],
            row["workflow_id"],
            row["run_id"],
            canonical(row["payload"]),
            prev_hash,
            digest,
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    status = await pool.execute(INSERT, *columns)
    return int(status.split()[-1])
