"""`dunning audit verify`: is a case's audit log intact, and does it agree with the case?

Three checks, each naming the row that fails:

- the chain: seqs run 1..n without gaps, every `prev_hash` is the previous row's
  `hash` (GENESIS for the first), and every `hash` is recomputed from the row's
  content. Only the first broken row is reported: everything after it is suspect.
- the fold: every payload is a valid event agreeing with its columns, and the events
  apply in order with `evolve`, like in the workflow.
- the live case: the status rebuilt from the log against the workflow's `status`
  query (open case) or result (completed case), field by field.
- the anchors (`dunning.audit.anchors`): the head the last append returned, kept in
  the case's Temporal history (live), and the signed checkpoints (`keys` given; with
  or without live), so rows removed from the end or a rewritten tail are reported.

Rows written before the chain existed (NULL hashes) are counted as legacy, not
broken; a legacy row after a chained one is broken.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities import checkpoints as stored
from activities.audit_store import AuditRow, case_ids, read_rows
from activities.chain import GENESIS
from activities.checkpoints import CheckpointVerifier
from dunning.audit.anchors import Anchor, check_anchor, check_checkpoints, history_anchor
from dunning.audit.fold import Problem, fold
from schemas.status import CaseStatus
from workflows.status_view import case_status

# Fields of CaseStatus that depend on the instant it is computed at (a query answers
# at the workflow's last task time), so a rebuilt status cannot be asked to match them.
TIME_DEPENDENT = frozenset({"days_past_due", "next_action"})
# Fields only the running workflow knows, not its events: the attempt in flight, and
# whether the audit store refuses its events (then `state` says so too).
SHELL_ONLY = frozenset({"in_flight", "audit_blocked"})
# A query may see events the workflow has not flushed to the log yet (they are
# written before every wait); give it this long to catch up before calling it a gap.
SETTLE_ATTEMPTS = 20
SETTLE_DELAY = 0.25


@dataclass
class CaseReport:
    case_id: str
    rows: int = 0
    legacy_rows: int = 0
    head_hash: str | None = None
    live: str = "not compared"
    anchor: str = "not compared"
    checkpoint: str = "not checked"
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "ok": self.ok,
            "rows": self.rows,
            "legacy_rows": self.legacy_rows,
            "head_hash": self.head_hash,
            "live": self.live,
            "anchor": self.anchor,
            "checkpoint": self.checkpoint,
            "problems": [
                {"seq": p.seq, "check": p.check, "detail": p.detail} for p in self.problems
            ],
        }


def check_chain(rows: list[AuditRow]) -> tuple[int, Problem | None]:
    """(legacy rows, first broken row or None)."""
    legacy = 0
    previous: AuditRow | None = None
    for expected, row in enumerate(rows, start=1):
        if row.seq != expected:
            return legacy, Problem(
                row.case_id, row.seq, "chain", f"seq {expected} is missing (next is {row.seq})"
            )
        if row.hash is None:
            if previous is not None and previous.hash is not None:
                return legacy, Problem(row.case_id, row.seq, "chain", "unchained row in the chain")
            legacy += 1
            previous = row
            continue
        link = previous.hash if previous is not None and previous.hash is not None else GENESIS
        if row.prev_hash != link:
            return legacy, Problem(
                row.case_id,
                row.seq,
                "chain",
                f"prev_hash does not link to seq {row.seq - 1}"
                if row.seq > 1
                else "prev_hash of the first row is not GENESIS",
            )
        if row.computed_hash() != row.hash:
            return legacy, Problem(
                row.case_id, row.seq, "chain", "hash does not match the row's content"
            )
        previous = row
    return legacy, None


def compare(case_id: str, audit: CaseStatus, live: CaseStatus) -> list[Problem]:
    """Every field where the status rebuilt from the log differs from the live one."""
    skip = set(TIME_DEPENDENT | SHELL_ONLY) | ({"state"} if live.audit_blocked else set())
    ours = _flat(audit.model_dump(mode="json", exclude=skip))
    theirs = _flat(live.model_dump(mode="json", exclude=skip))
    return [
        Problem(case_id, None, "live", f"{key}: audit {ours.get(key)!r}, live {theirs.get(key)!r}")
        for key in sorted(ours.keys() | theirs.keys())
        if ours.get(key) != theirs.get(key)
    ]


def _flat(value: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict) and key != "counters":
            flat.update(_flat(item, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = item
    return flat


async def verify_case(
    pool: asyncpg.Pool,
    case_id: str,
    client: Client | None,
    now: datetime | None = None,
    *,
    keys: CheckpointVerifier | None = None,
) -> CaseReport:
    """Check one case; `client=None` checks the log alone, `keys` the signed
    checkpoints too (`dunning.db.checkpoints.verifier(settings)`)."""
    report = CaseReport(case_id)
    async with pool.acquire() as conn:
        rows = await read_rows(conn, case_id)
        live, report.live = await _live(client, case_id) if rows else (None, "not compared")
        for _ in range(SETTLE_ATTEMPTS):
            if live is None or live.events == len(rows) or report.live != "open":
                break
            if _carried(live, len(rows)):
                break  # behind by what an attempt waiting for its turn carries: as built
            await asyncio.sleep(SETTLE_DELAY)  # events not flushed yet, or new ones since
            live, report.live = await _live(client, case_id)
            rows = await read_rows(conn, case_id)
        # The history first, then the rows it vouches for: an append that completes in
        # between makes the log longer than the anchor, never shorter.
        anchor = await history_anchor(client, case_id) if client is not None else None
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await read_rows(conn, case_id)  # with its checkpoints, one snapshot
            signed = await stored.read(conn, case_id) if keys is not None else []
            began = await stored.since(conn) if keys is not None else None
    report.rows = len(rows)
    anchored: list[Problem] = []
    if client is not None:
        report.anchor = _anchor_summary(anchor)
        anchored += check_anchor(case_id, rows, anchor)
    if keys is not None:
        found, last_good = check_checkpoints(case_id, rows, signed, keys, began)
        anchored += found
        report.checkpoint = f"seq {last_good}" if last_good is not None else "none"
    if not rows:
        report.problems += anchored  # an anchor says what the log lost
        if not anchored and anchor is not None and anchor.appends == 0:
            report.live = "open: nothing appended yet"
        elif not anchored:
            report.problems.append(Problem(case_id, None, "chain", "no audit rows"))
        return report
    report.head_hash = rows[-1].hash
    report.legacy_rows, broken = check_chain(rows)
    if broken is not None:
        report.problems.append(broken)
    folded = fold(rows)
    report.problems += folded.problems
    if live is not None and _carried(live, len(rows)):
        # The log is the case's past up to the attempt, which appends the rest before
        # the provider is asked: the chain, fold and anchors are checked, not the status.
        report.live = f"open: {live.events - len(rows)} events carried by the attempt in flight"
    elif live is not None and folded.state is not None and not folded.problems:
        rebuilt = case_status(folded.state, now or datetime.now(UTC))
        report.problems += compare(case_id, rebuilt, live)
    report.problems += anchored
    return report


def _carried(live: CaseStatus, rows: int) -> bool:
    """The log is behind the live case by no more than the events its attempt in flight
    carries (appended by the attempt before it calls the provider)."""
    flight = live.in_flight
    return flight is not None and 0 < live.events - rows <= flight.carried


def _anchor_summary(anchor: Anchor | None) -> str:
    if anchor is None:
        return "no workflow"
    if anchor.seq is not None:
        return f"seq {anchor.seq}"
    return "count only" if anchor.appends else "none recorded"


async def all_case_ids(pool: asyncpg.Pool, client: Client | None) -> list[str]:
    """Every case `verify --all` checks: those with audit rows, those with checkpoints,
    and (live) those Temporal knows, whose log may be missing entirely."""
    from dunning.audit.replay import case_ids as temporal_case_ids

    async with pool.acquire() as conn:
        found = set(await case_ids(conn)) | set(await stored.case_ids(conn))
    if client is not None:
        found |= set(await temporal_case_ids(client))
    return sorted(found)


async def _live(client: Client | None, case_id: str) -> tuple[CaseStatus | None, str]:
    """The workflow's own view of the case and how it was obtained."""
    from workflows.loan_collection import LoanCollection

    if client is None:
        return None, "not compared"
    handle = client.get_workflow_handle_for(LoanCollection.run, case_id)
    try:
        described = await handle.describe()
        if described.status == WorkflowExecutionStatus.RUNNING:
            return await handle.query(LoanCollection.status), "open"
        if described.status == WorkflowExecutionStatus.COMPLETED:
            return await handle.result(), "completed"
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None, "no workflow (past retention?): not compared"
        # A query no worker answered in time, say: the log is still checked.
        return None, f"not compared ({exc.status.name.lower()})"
    status = described.status.name.lower() if described.status is not None else "unknown"
    return None, f"workflow {status}: not compared"
