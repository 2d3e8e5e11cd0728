"""Pauses and aging: paused days do not count towards escalation unless the policy says
so; a resume never jumps more stages than the policy allows; it may start with a grace."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dunning.sim import fold
from schemas.commands import Pause, Resume
from schemas.events import ContactAttempted, Event, StageEntered
from schemas.policy import Aging, Policy
from tests.factories import case_input, policy
from workflows import actions
from workflows.state import CaseState

OPENED = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a Monday
OP = {"operator": "op-7", "reason": "hardship review"}
PAUSED_AT = OPENED + timedelta(days=3, hours=1)  # in the reminder stage, at dpd 4
PAUSE = timedelta(days=60)


def _pause(state: CaseState, now: datetime) -> list[Event]:
    return actions.pause(state, Pause(**OP), now)


def _resume(state: CaseState, now: datetime) -> list[Event]:
    return actions.resume(state, Resume(**OP), now)


def _run(aging: Aging) -> list[Event]:
    chosen: Policy = policy().model_copy(update={"aging": aging})
    interrupts = {PAUSED_AT: _pause, PAUSED_AT + PAUSE: _resume}
    until = PAUSED_AT + PAUSE + timedelta(days=5)
    _, log = fold.run(case_input(), chosen, OPENED, until=until, interrupts=interrupts)
    return log


def _entered_after_resume(log: list[Event]) -> list[StageEntered]:
    return [e for e in log if isinstance(e, StageEntered) and e.at >= PAUSED_AT + PAUSE]


def test_by_default_paused_days_do_not_age_the_case() -> None:
    log = _run(Aging())
    assert _entered_after_resume(log) == [], "60 paused days moved the case nowhere"
    resumed = next(e for e in log if e.type == "collection_resumed")
    first = next(e for e in log if isinstance(e, ContactAttempted) and e.at > resumed.at)
    assert first.stage == "reminder"


def test_when_paused_days_count_a_resume_moves_at_most_the_allowed_stages() -> None:
    # dpd 4 + 60 paused days = dpd 64: field_visit (from 30) by the calendar.
    one = _entered_after_resume(_run(Aging(exclude_paused_days=False)))
    assert [(e.stage, e.skipped) for e in one] == [("negotiation", ())]
    assert one[0].days_past_due == 15, "the clock is set back to the allowed stage's start"
    two = _entered_after_resume(_run(Aging(exclude_paused_days=False, max_stages_per_resume=2)))
    assert [(e.stage, e.skipped) for e in two] == [("field_visit", ("negotiation",))]


def test_a_resume_grace_delays_the_first_contact_after_it() -> None:
    # Without a grace the cadence goes on where it stood; with one, it starts again on
    # the grace's last day (the reminder SMS is due on its day 0).
    for grace in (1, 4):
        log = _run(Aging(resume_grace_days=grace))
        resumed = next(e for e in log if e.type == "collection_resumed")
        first = next(e for e in log if isinstance(e, ContactAttempted) and e.at > resumed.at)
        assert timedelta(days=grace) <= first.at - resumed.at < timedelta(days=grace + 1), grace
