"""The audit log held to anchors outside its rows: what `dunning audit verify` checks
beyond the chain.

A hash chain shows a changed row; rows removed from the end of a case, or a tail
rewritten with fresh hashes, leave a valid one. Two anchors are kept elsewhere:

- **Temporal's history.** Every `append_audit` returns the head it left (seq and
  hash, `schemas.activity_io.AuditAppended`), and so does an outbound activity that
  appended the events its attempt carried (its receipt's `audit`); Temporal keeps
  those results in the case's history. The furthest of them, in chain order, is
  where the log must at least reach, with that hash (`history_anchor`,
  `check_anchor`; live only).
- **Signed checkpoints** in `audit_checkpoints` (`activities.checkpoints`), which
  the log alone can be checked against (`check_checkpoints`; `--no-live` too).

Which attacker each defeats, and which not: docs/architecture.md ("Audit") and
docs/security.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from temporalio.client import Client

from activities.audit_store import AuditRow
from activities.checkpoints import Checkpoint, CheckpointVerifier
from dunning.audit.fold import Problem
from dunning.case_client import CaseNotFound
from schemas.activity_io import APPEND_AUDIT
from schemas.channels import ACTIVITIES as OUTBOUND_ACTIVITIES


@dataclass(frozen=True)
class Anchor:
    """What the case's Temporal history says was appended."""

    appends: int  # completed appends that wrote or found rows
    seq: int | None = None  # the last head recorded (None: only old results, a count)
    hash: str | None = None


async def history_anchor(client: Client, case_id: str) -> Anchor | None:
    """The furthest head an append returned for this case (`append_audit`, or an
    attempt that carried events), over every run of its continue-as-new chain; None
    when Temporal no longer holds the case."""
    from dunning.audit.replay import fetch_histories

    try:
        histories = await fetch_histories(client, case_id)
    except CaseNotFound:
        return None
    appends, seq, head_hash = 0, None, None
    for history in histories:
        scheduled: dict[int, str] = {}
        for event in history.events:
            if event.HasField("activity_task_scheduled_event_attributes"):
                kind = event.activity_task_scheduled_event_attributes.activity_type.name
                scheduled[event.event_id] = kind
            elif event.HasField("activity_task_completed_event_attributes"):
                done = event.activity_task_completed_event_attributes
                kind = scheduled.get(done.scheduled_event_id, "")
                if kind != APPEND_AUDIT and kind not in OUTBOUND_ACTIVITIES:
                    continue
                (result,) = await client.data_converter.decode(done.result.payloads) or [None]
                if kind != APPEND_AUDIT:
                    # An attempt that carried events returns the head their append left.
                    result = result.get("audit") if isinstance(result, dict) else None
                    if result is None:
                        continue
                head = _head(result, case_id)
                if head is not None:
                    appends += 1
                    # An attempt's receipt can land after a later flush's: keep the
                    # furthest head, not the last reported.
                    if seq is None or head[0] >= seq:
                        seq, head_hash = head
                elif isinstance(result, int) and result > 0:
                    appends += 1  # recorded before heads were returned: a count only
    return Anchor(appends, seq, head_hash)


def _head(result: Any, case_id: str) -> tuple[int, str] | None:
    if not isinstance(result, dict):
        return None
    for head in result.get("heads") or []:
        if isinstance(head, dict) and head.get("case_id") == case_id:
            return int(head["seq"]), str(head["hash"])
    return None


def _ends(rows: list[AuditRow]) -> str:
    return f"the log ends at seq {rows[-1].seq}" if rows else "the log has no row of this case"


def check_anchor(case_id: str, rows: list[AuditRow], anchor: Anchor | None) -> list[Problem]:
    """The log against the last head Temporal's history recorded."""
    if anchor is None or anchor.appends == 0:
        return []
    source = "the case's Temporal history"
    if anchor.seq is None:
        if rows:
            return []
        return [Problem(case_id, None, "anchor", f"{_ends(rows)}, but {source} recorded appends")]
    by_seq = {row.seq: row for row in rows}
    row = by_seq.get(anchor.seq)
    if row is None:
        return [
            Problem(
                case_id,
                anchor.seq,
                "anchor",
                f"{_ends(rows)}, but {source} recorded the append of seq {anchor.seq}: "
                "rows were removed",
            )
        ]
    if row.hash != anchor.hash:
        return [
            Problem(
                case_id,
                anchor.seq,
                "anchor",
                f"hash differs from the one {source} recorded at its append: the log was rewritten",
            )
        ]
    return []


def check_checkpoints(
    case_id: str,
    rows: list[AuditRow],
    found: list[Checkpoint],
    keys: CheckpointVerifier,
    began: datetime | None,
) -> tuple[list[Problem], int | None]:
    """The log against its signed checkpoints: (problems, seq of the last good one).

    A checkpoint that does not verify is reported; a good one must find its row with
    its hash; and the log's last row, if written since checkpoints began (`began`),
    must have one, since every append signs the head it leaves."""
    problems: list[Problem] = []
    good: list[Checkpoint] = []
    for checkpoint in found:
        refused = keys.problem(checkpoint)
        if refused is None:
            good.append(checkpoint)
        else:
            problems.append(Problem(case_id, checkpoint.seq, "checkpoint", refused))
    by_seq = {row.seq: row for row in rows}
    last = rows[-1].seq if rows else 0
    beyond = [c for c in good if c.seq > last]
    if beyond:
        top = beyond[-1]
        problems.append(
            Problem(
                case_id,
                top.seq,
                "checkpoint",
                f"{_ends(rows)}, but a signed checkpoint holds seq {top.seq}: rows were removed",
            )
        )
    for checkpoint in good:
        row = by_seq.get(checkpoint.seq)
        if row is not None and row.hash != checkpoint.hash:
            problems.append(
                Problem(
                    case_id,
                    checkpoint.seq,
                    "checkpoint",
                    "hash differs from the row's signed checkpoint: the log was rewritten",
                )
            )
    head = rows[-1] if rows else None
    signed = {c.seq for c in good}
    if head is not None and not beyond and began is not None and head.recorded_at >= began:
        if head.seq not in signed:
            problems.append(
                Problem(
                    case_id,
                    head.seq,
                    "checkpoint",
                    "the last row has no signed checkpoint, though every append signs the "
                    "head it leaves: rows after it were removed, or a worker did not write it",
                )
            )
    return problems, (good[-1].seq if good else None)
