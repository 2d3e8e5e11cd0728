"""Rebuilding a case from its audit rows, with `workflows.evolve.evolve`.

The auditor folds the same events with the same function as the workflow, so a
state rebuilt here is what the workflow held after those events. Rows that do not
parse or do not apply are reported by seq instead of raising: an auditor wants to
know where a log went wrong, not a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pydantic import ValidationError

from activities.audit_store import AuditRow
from schemas.events import EVENT_ADAPTER, Event
from workflows.evolve import EvolveError, evolve
from workflows.state import CaseState


@dataclass(frozen=True)
class Problem:
    """Something wrong with a case, at a row (`seq`) when there is one."""

    case_id: str
    seq: int | None
    check: str  # chain | fold | live
    detail: str

    def __str__(self) -> str:
        where = f"{self.case_id}#{self.seq}" if self.seq is not None else self.case_id
        return f"{where} [{self.check}] {self.detail}"


@dataclass
class Folded:
    state: CaseState | None
    problems: list[Problem] = field(default_factory=list)


def parse(row: AuditRow) -> Event:
    """The row's event; raises ValueError when payload and columns disagree."""
    event = EVENT_ADAPTER.validate_python(row.payload)
    if event.type != row.event_type:
        raise ValueError(f"event_type column {row.event_type!r} but payload is {event.type!r}")
    if event.at != row.occurred_at:
        raise ValueError("occurred_at column differs from the event's time")
    if event.actor != row.actor:
        raise ValueError(f"actor column {row.actor!r} differs from the event's actor")
    return event


def fold(rows: list[AuditRow], until: datetime | None = None) -> Folded:
    """Fold rows in order (only those that occurred at or before `until`, if given);
    stops at the first row that cannot apply."""
    result = Folded(state=None)
    for row in rows:
        if until is not None and row.occurred_at > until:
            break
        try:
            event = parse(row)
        except (ValidationError, ValueError) as exc:
            detail = f"payload is not a valid event ({_short(exc)})"
            result.problems.append(Problem(row.case_id, row.seq, "fold", detail))
            return result
        try:
            result.state = evolve(result.state, event)
        except EvolveError as exc:
            result.problems.append(Problem(row.case_id, row.seq, "fold", f"does not apply: {exc}"))
            return result
    return result


def _short(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return str(exc)
