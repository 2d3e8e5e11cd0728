"""`dunning audit state --as-of`: what the case looked like at a past instant.

Rebuilt from the audit log alone (events that occurred at or before the instant,
folded with `evolve`) and shown as the `status` query would have shown it then, so
an auditor can answer "what did the operator see on that day" without Temporal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from activities.audit_store import read_rows
from dunning.audit.fold import Problem, fold
from schemas.status import CaseStatus
from workflows.status_view import case_status


@dataclass(frozen=True)
class PastStatus:
    status: CaseStatus | None  # None: the case was not open yet
    problems: list[Problem]


async def state_as_of(pool: asyncpg.Pool, case_id: str, as_of: datetime) -> PastStatus:
    if as_of.tzinfo is None:
        raise ValueError("as_of must be timezone-aware")
    async with pool.acquire() as conn:
        rows = await read_rows(conn, case_id)
    folded = fold(rows, until=as_of)
    if folded.state is None:
        return PastStatus(None, folded.problems)
    return PastStatus(case_status(folded.state, as_of), folded.problems)
