"""Why a case refuses an action: one code per refusal, each declared once with its kind.

The workflow raises a refusal with its code and an English reason for people; callers
branch on the code only: the HTTP API maps the kind to a status and a problem type,
the CLI to an exit code, the console shows the reason. Rewording a reason changes
nothing else.
"""

from __future__ import annotations

from enum import StrEnum


class RefusalKind(StrEnum):
    conflict = "conflict"  # the case as it stands does not allow it (HTTP 409, exit 1)
    invalid = "invalid"  # the input does not fit this case (HTTP 422, exit 2)
    forbidden = "forbidden"  # who asks may not (four eyes; HTTP 403, exit 1)
    unavailable = "unavailable"  # a dependency did not answer; retry (HTTP 503, exit 1)


class Refusal(StrEnum):
    """A refusal code. `Refusal.case_closed.kind` is its kind."""

    kind: RefusalKind

    def __new__(cls, value: str, kind: RefusalKind) -> Refusal:
        member = str.__new__(cls, value)
        member._value_ = value
        member.kind = kind
        return member

    # the case
    case_closed = "case_closed", RefusalKind.conflict
    already_paused = "already_paused", RefusalKind.conflict
    not_paused = "not_paused", RefusalKind.conflict
    paused = "paused", RefusalKind.conflict
    in_dispute = "in_dispute", RefusalKind.conflict
    no_dispute = "no_dispute", RefusalKind.conflict
    agreement_in_force = "agreement_in_force", RefusalKind.conflict
    already_ceased = "already_ceased", RefusalKind.conflict
    contact_ceased = "contact_ceased", RefusalKind.conflict
    already_stopped = "already_stopped", RefusalKind.conflict
    hard_stopped = "hard_stopped", RefusalKind.conflict
    already_opted_out = "already_opted_out", RefusalKind.conflict
    last_stage = "last_stage", RefusalKind.conflict
    first_stage = "first_stage", RefusalKind.conflict
    handed_to_legal = "handed_to_legal", RefusalKind.conflict
    visit_booked = "visit_booked", RefusalKind.conflict
    no_visit = "no_visit", RefusalKind.conflict
    visit_not_yet = "visit_not_yet", RefusalKind.conflict
    same_policy = "same_policy", RefusalKind.conflict
    approval_pending = "approval_pending", RefusalKind.conflict
    no_such_approval = "no_such_approval", RefusalKind.conflict
    # the input, against this case
    date_in_past = "date_in_past", RefusalKind.invalid
    date_too_far = "date_too_far", RefusalKind.invalid
    not_in_future = "not_in_future", RefusalKind.invalid
    minor_units = "minor_units", RefusalKind.invalid
    amount_over_balance = "amount_over_balance", RefusalKind.invalid
    amount_not_below_balance = "amount_not_below_balance", RefusalKind.invalid
    below_floor = "below_floor", RefusalKind.invalid
    instalments_mismatch = "instalments_mismatch", RefusalKind.invalid
    outside_window = "outside_window", RefusalKind.invalid
    quiet_day = "quiet_day", RefusalKind.invalid
    no_such_contact = "no_such_contact", RefusalKind.invalid
    day_length_differs = "day_length_differs", RefusalKind.invalid
    stage_missing = "stage_missing", RefusalKind.invalid
    # who asks
    needs_supervisor = "needs_supervisor", RefusalKind.forbidden
    same_person = "same_person", RefusalKind.forbidden
    approval_required = "approval_required", RefusalKind.forbidden
    # dependencies
    agreement_not_stored = "agreement_not_stored", RefusalKind.unavailable
