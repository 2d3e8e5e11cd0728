"""Decision rules 3 against the defects rules 2 had (issue 12, items 4-6 and 14), on the
pure decider: each test shows the old behaviour, still what a case pinned to rules 2
replays, and the new one."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from dunning.policies import load
from dunning.samples import sample_case
from dunning.sim.fold import run
from schemas.commands import CeaseContact, HardStop, PromiseToPay, VisitBooking
from schemas.events import (
    AgreementRecorded,
    CaseOpened,
    ContactAttempted,
    Event,
    StageEntered,
    VisitBooked,
)
from schemas.policy import ActionSpec, Policy, Stage
from workflows import actions, compliance
from workflows.decide import decide
from workflows.evolve import evolve
from workflows.state import CaseState
from workflows.status_view import describe

SHANGHAI = ZoneInfo("Asia/Shanghai")
OP: dict[str, Any] = {"operator": "op-7", "reason": "test"}


def _at_8_on_october_8(log: list[Event]) -> Counter[str]:
    eight = datetime(2026, 10, 8, 8, 0, tzinfo=SHANGHAI)
    return Counter(e.channel for e in log if isinstance(e, ContactAttempted) and e.at == eight)


def test_the_national_day_backlog_goes_out_as_one_call_not_two() -> None:
    # Opened on 14 September: in negotiation (calls every 2 days) over the week of
    # quiet days from 1 October; everything waits for 08:00 on 8 October.
    opened = datetime(2026, 9, 14, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)
    until = opened + timedelta(days=40)
    _, old = run(sample_case(), load("default"), opened, until=until, rules=2)
    _, new = run(sample_case(), load("default"), opened, until=until, rules=3)

    assert _at_8_on_october_8(old)["call"] == 2, "rules 2: the burst the issue reports"
    assert _at_8_on_october_8(new)["call"] == 1
    coalesced = [e for e in new if e.type == "contact_skipped" and e.rule == "coalesced"]  # type: ignore[union-attr]
    assert coalesced and all(e.channel == "call" for e in coalesced)  # type: ignore[union-attr]


def test_a_daily_sms_piled_up_over_the_holiday_sends_one() -> None:
    daily = ActionSpec(channel="sms", template="reminder", every_days=1)
    policy = Policy(
        name="daily", version=1, stages=(Stage(name="s", from_dpd=1, actions=(daily,)),)
    )
    opened = datetime(2026, 9, 30, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)
    until = opened + timedelta(days=10)
    _, old = run(sample_case(), policy, opened, until=until, rules=2)
    _, new = run(sample_case(), policy, opened, until=until, rules=3)

    assert _at_8_on_october_8(old)["sms"] >= 3, "rules 2: a burst of SMS at the opening"
    assert _at_8_on_october_8(new)["sms"] == 1


def _case_with_calls(rules: int, outcomes: list[str]) -> tuple[CaseState, datetime]:
    opened = datetime(2026, 11, 2, 9, 0, tzinfo=SHANGHAI).astimezone(UTC)
    state = evolve(
        None, CaseOpened(at=opened, case=sample_case(), policy=load("default"), rules=rules)
    )
    state = evolve(
        state,
        StageEntered(
            at=opened, stage="reminder", stage_index=0, days_past_due=1, active_offset=timedelta(0)
        ),
    )
    for n, outcome in enumerate(outcomes):
        state = evolve(
            state,
            ContactAttempted(
                at=opened + timedelta(minutes=10 * n),
                channel="call",
                stage="reminder",
                action_index=1,
                occurrence=n,
                phone_index=0,
                idempotency_key=f"k{n}",
                provider_ref="p",
                outcome=outcome,
            ),
        )
    return state, opened + timedelta(hours=2)


def test_the_unanswered_dials_cap_counts_the_number_dialled() -> None:
    # Six unanswered dials to the first number today, the last reporting it wrong: the
    # next call goes to the second number, which nobody has dialled today.
    dials = ["no_answer"] * 5 + ["wrong_number"]
    old, now = _case_with_calls(2, dials)
    new, _ = _case_with_calls(3, dials)
    assert old.phone() == new.phone() == 1

    blocked = compliance.check(old, "call", now)
    assert blocked is not None and blocked.rule == "unanswered_dials_per_number_per_day"
    assert compliance.check(new, "call", now) is None
    # The number dialled six times stays capped in its own right.
    six, _ = _case_with_calls(3, ["no_answer"] * 6)
    assert six.phone() == 0
    capped = compliance.check(six, "call", now)
    assert capped is not None and capped.rule == "unanswered_dials_per_number_per_day"


def _promised(*before: Any, phones_invalid: int = 0, hour: int = 10) -> tuple[CaseState, datetime]:
    """A rules-3 case on which a promise was just agreed and its document recorded."""
    now = datetime(2026, 11, 2, hour, 0, tzinfo=SHANGHAI).astimezone(UTC)
    state, _ = _case_with_calls(3, ["wrong_number"] * phones_invalid)
    for command in before:
        for event in actions.events_for(state, command, now - timedelta(minutes=5)):
            state = evolve(state, event)
    if phones_invalid > 1:  # a wrong number at the second phone too
        state = state.model_copy(update={"invalid_phones": [0, 1]})
    promise = PromiseToPay(amount=Decimal("100.00"), pay_by=date(2026, 11, 9), **OP)
    [made] = actions.events_for(state, promise, now)
    state = evolve(state, made)
    state = evolve(
        state,
        AgreementRecorded(
            at=now, kind="promise", agreement_seq=state.seq, document_id="d", sha256="0" * 64
        ),
    )
    return state, now


def test_an_agreements_confirmation_goes_through_the_guard() -> None:
    state, now = _promised()
    decision = decide(state, now)
    assert decision.effect is not None and decision.effect.agreement_seq == state.seq - 1
    assert decision.effect.template == "agreement_confirmation"

    late, late_now = _promised(hour=23)  # outside 08:00-22:00: deferred, not dropped
    [deferred] = decide(late, late_now).events
    assert deferred.type == "contact_deferred" and deferred.agreement_seq is not None  # type: ignore[union-attr]
    assert deferred.until.astimezone(SHANGHAI).hour == 8  # type: ignore[union-attr]

    for stop, rule in (
        (HardStop(kind="represented", **OP), "hard_stop"),
        (CeaseContact(channel="sms", **OP), "cease_contact"),
    ):
        stopped, stopped_now = _promised(stop)
        [skipped] = decide(stopped, stopped_now).events
        assert skipped.type == "contact_skipped" and skipped.rule == rule  # type: ignore[union-attr]


def test_a_confirmation_never_goes_to_a_number_reported_wrong() -> None:
    state, now = _promised(phones_invalid=1)
    effect = decide(state, now).effect
    assert effect is not None and effect.phone_index == 1
    nobody, nobody_now = _promised(phones_invalid=2)
    [skipped] = decide(nobody, nobody_now).events
    assert skipped.type == "contact_skipped" and skipped.rule == "no_valid_number"  # type: ignore[union-attr]


@pytest.mark.parametrize("rules", [2, 3])
def test_visit_times_are_shown_in_utc_whatever_offset_they_were_booked_in(rules: int) -> None:
    at = datetime(2026, 11, 3, 10, 0, tzinfo=SHANGHAI)  # 02:00 UTC
    booked = VisitBooked(
        at=datetime(2026, 11, 2, 3, 0, tzinfo=UTC), visit_at=at, collectors=("a", "b"), **OP
    )
    assert "2026-11-03 02:00 UTC" in describe(booked)
    state, now = _case_with_calls(rules, [])
    state = evolve(state, booked)
    again = VisitBooking(at=at + timedelta(days=1), collectors=("a", "b"), **OP)
    with pytest.raises(actions.Rejected) as refused:
        actions.events_for(state, again, now)
    assert "2026-11-03 02:00 UTC" in refused.value.reason
