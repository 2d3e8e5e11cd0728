"""The guard's rules, one by one, on the pure decider."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from dunning.sim import fold
from schemas.commands import CeaseContact, HardStop, Pause, Resume, VisitBooking
from schemas.events import EVENT_ADAPTER, CaseOpened, ContactAttempted, ContactSkipped
from tests.factories import case_input, policy
from workflows import actions
from workflows.evolve import evolve

SHANGHAI = ZoneInfo("Asia/Shanghai")
OPENED = datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)
OP = {"operator": "op-1", "reason": "borrower asked"}


def test_an_event_written_before_rules_existed_reads_as_rules_1() -> None:
    opened = CaseOpened(at=OPENED, case=case_input(), policy=policy())
    raw = opened.model_dump(mode="json")
    del raw["rules"]
    del raw["policy"]["compliance"], raw["policy"]["quiet_days"]
    old = EVENT_ADAPTER.validate_python(raw)
    assert isinstance(old, CaseOpened) and old.rules == 1
    assert evolve(None, old).rules == 1


def test_rules_1_decides_as_before_and_rules_2_defers_over_a_holiday() -> None:
    # Opened on 2026-09-28: China's National Day week falls in the reminder stage.
    opened = datetime(2026, 9, 28, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)
    _, old = fold.run(case_input(), policy(), opened, rules=1)
    _, new = fold.run(case_input(), policy(), opened, rules=2)
    # Third-party messages came with the guard and always go through it (this case
    # names no emergency contact, so they are skipped under both rules).
    held = [e for e in old if e.type in ("contact_deferred", "contact_skipped")]
    assert {e.rule for e in held} == {"no_third_party"}  # type: ignore[union-attr]
    new = [e for e in new if getattr(e, "channel", None) != "third_party_sms"]
    deferred = [e for e in new if e.type == "contact_deferred"]
    assert deferred and {e.rule for e in deferred} == {"quiet_day"}  # type: ignore[union-attr]
    sent = [e for e in new if isinstance(e, ContactAttempted)]
    assert len(sent) == len([e for e in old if isinstance(e, ContactAttempted)])
    assert not [
        e
        for e in sent
        if datetime(2026, 10, 1) <= e.at.replace(tzinfo=None) < datetime(2026, 10, 4)
    ]


def test_cease_sms_skips_sms_only_and_a_resume_never_lifts_a_hard_stop() -> None:
    state = evolve(None, CaseOpened(at=OPENED, case=case_input(), policy=policy(), rules=2))
    for event in actions.cease_contact(state, CeaseContact(channel="sms", **OP), OPENED):
        state = evolve(state, event)
    with pytest.raises(actions.Rejected, match="already ceased"):
        actions.cease_contact(state, CeaseContact(channel="sms", **OP), OPENED)
    now = OPENED + timedelta(minutes=1)
    for rule, command in [
        (actions.pause, Pause(**OP)),
        (actions.hard_stop, HardStop(kind="deceased", **OP)),
        (actions.resume, Resume(**OP)),
    ]:
        for event in rule(state, command, now):
            state = evolve(state, event)
    assert state.paused is None and state.hard_stops == ["deceased"]
    with pytest.raises(actions.Rejected, match="already recorded"):
        actions.hard_stop(state, HardStop(kind="deceased", **OP), now)


def test_every_contact_after_a_hard_stop_is_skipped_with_the_rule_named() -> None:
    def stop(state, now):  # type: ignore[no-untyped-def]
        return actions.hard_stop(state, HardStop(kind="bankruptcy", **OP), now)

    at = OPENED + timedelta(days=3, hours=1)
    state, log = fold.run(case_input(), policy(), OPENED, rules=2, interrupts={at: stop})
    after = [e for e in log if e.at > at]
    assert not [e for e in after if isinstance(e, ContactAttempted)]
    skipped = [e for e in after if isinstance(e, ContactSkipped)]
    assert skipped and {e.rule for e in skipped} == {"hard_stop"}
    assert state.closed_reason == "transferred_to_legal"  # escalation goes on


VISITS = [
    (
        datetime(2026, 11, 20, 23, 0),
        "23:00 borrower time is outside the contact window 08:00-22:00",
    ),
    (datetime(2027, 1, 1, 10, 0), "2027-01-01 is a quiet day (New Year's Day); no visit"),
]


@pytest.mark.parametrize(("local", "problem"), VISITS)
def test_a_field_visit_is_booked_only_inside_the_window_and_not_on_a_quiet_day(
    local: datetime, problem: str
) -> None:
    state = evolve(None, CaseOpened(at=OPENED, case=case_input(), policy=policy(), rules=2))
    collectors = ("c-1", "c-2")
    with pytest.raises(actions.Rejected, match=re.escape(problem)):
        actions.book_visit(
            state,
            VisitBooking(at=local.replace(tzinfo=SHANGHAI), collectors=collectors, **OP),
            OPENED,
        )
    fine = datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI)
    [booked] = actions.book_visit(state, VisitBooking(at=fine, collectors=collectors, **OP), OPENED)
    assert booked.type == "visit_booked"
