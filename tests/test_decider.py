"""The pure decider: cadence, escalation, pauses, payments and windows, in microseconds."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from dunning.sim import fold
from schemas.events import (
    CaseClosed,
    CollectionPaused,
    CollectionResumed,
    ContactAttempted,
    Event,
    PaymentReceived,
    StageEntered,
)
from tests.factories import case_input, policy
from workflows.evolve import allocate
from workflows.state import CaseState

SHANGHAI = ZoneInfo("Asia/Shanghai")
# 10:00 in Shanghai, inside the 08:00-22:00 window.
OPENED = datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)

# Worked out by hand from dunning/policies/default.toml for a case opened at 1 dpd:
# reminder lasts 14 days (sms on days 0,3,6,9,12; calls on 2,9), negotiation 15
# (sms 0,5,10; calls 1,3,...,13), field visit 60 (sms 0; visit 3; calls 1,8,...,57).
DEFAULT_COUNTS = {
    ("reminder", "sms"): 5,
    ("reminder", "call"): 2,
    ("negotiation", "sms"): 3,
    ("negotiation", "call"): 7,
    ("field_visit", "sms"): 1,
    ("field_visit", "field_visit"): 1,
    ("field_visit", "call"): 9,
    ("legal", "legal_handoff"): 1,
}


def per_stage(log: list[Event]) -> Counter[tuple[str, str]]:
    counts: Counter[tuple[str, str]] = Counter()
    for event in log:
        if isinstance(event, ContactAttempted):
            counts[(event.stage, event.channel)] += 1
        elif event.type == "field_visit_scheduled":
            counts[(event.stage, "field_visit")] += 1  # type: ignore[union-attr]
        elif event.type == "handed_to_legal":
            counts[(event.stage, "legal_handoff")] += 1  # type: ignore[union-attr]
    return counts


def test_default_policy_walks_every_stage_to_legal() -> None:
    state, log = fold.run(case_input(), policy(), OPENED)

    assert state.closed_reason == "transferred_to_legal"
    stages = [e.stage for e in log if isinstance(e, StageEntered)]
    assert stages == ["reminder", "negotiation", "field_visit", "legal"]
    assert per_stage(log) == DEFAULT_COUNTS
    legal = next(e for e in log if isinstance(e, StageEntered) and e.stage == "legal")
    assert legal.at == OPENED + timedelta(days=89)
    assert legal.days_past_due == 90


def test_contacts_fall_inside_the_borrowers_window() -> None:
    # Opened at 23:30 local: every contact is deferred to the next 08:00, none dropped.
    late = datetime(2026, 11, 2, 23, 30, tzinfo=SHANGHAI).astimezone(UTC)
    _, log = fold.run(case_input(), policy(), late)

    contacts = [e for e in log if isinstance(e, ContactAttempted)]
    assert contacts, "no contact at all"
    for event in contacts:
        local = event.at.astimezone(SHANGHAI).time()
        assert local.hour >= 8 and local.hour < 22, event
    first = contacts[0].at.astimezone(SHANGHAI)
    assert (first.day, first.hour, first.minute) == (3, 8, 0)
    assert per_stage(log) == DEFAULT_COUNTS


def test_case_opened_late_starts_in_its_stage() -> None:
    case = case_input(loan={"days_past_due": 40})
    state, log = fold.run(case, policy(), OPENED, until=OPENED + timedelta(hours=1))

    entered = [e for e in log if isinstance(e, StageEntered)]
    assert [(e.stage, e.skipped) for e in entered] == [("field_visit", ())]
    assert state.days_past_due(OPENED) == 40


def test_pause_stops_contact_and_shifts_escalation() -> None:
    pause_at = OPENED + timedelta(days=4, hours=1)
    resume_at = pause_at + timedelta(days=10)

    def pause(state: CaseState, now: datetime) -> list[Event]:
        return [CollectionPaused(at=now, actor="operator:op1", reason="complaint", operator="op1")]

    def resume(state: CaseState, now: datetime) -> list[Event]:
        return [
            CollectionResumed(
                at=now,
                actor="operator:op1",
                reason="done",
                operator="op1",
                paused_for=now - pause_at,
            )
        ]

    state, log = fold.run(
        case_input(), policy(), OPENED, interrupts={pause_at: pause, resume_at: resume}
    )

    contacts = [e.at for e in log if isinstance(e, ContactAttempted)]
    assert not [at for at in contacts if pause_at <= at < resume_at]
    assert [at for at in contacts if at >= resume_at], "contact did not restart"
    negotiation = next(e for e in log if isinstance(e, StageEntered) and e.stage == "negotiation")
    assert negotiation.at == OPENED + timedelta(days=14 + 10)  # aging excludes the pause
    assert per_stage(log) == DEFAULT_COUNTS  # nothing lost, nothing doubled
    assert state.paused_total == timedelta(days=10)


def _payment(amount: str, reference: str) -> fold.Interrupt:
    def pay(state: CaseState, now: datetime) -> list[Event]:
        split = allocate(state.balance, Decimal(amount))
        return [
            PaymentReceived(
                at=now,
                amount=Decimal(amount),
                reference=reference,
                applied_penalty=split["penalty"],
                applied_fees=split["fees"],
                applied_interest=split["interest"],
                applied_principal=split["principal"],
                overpaid=split["overpaid"],
                balance_after=state.balance.total - Decimal(amount) + split["overpaid"],
            )
        ]

    return pay


def test_partial_payment_lowers_balance_fees_first_and_full_payment_closes() -> None:
    partial_at = OPENED + timedelta(days=5)
    full_at = OPENED + timedelta(days=20)
    state, log = fold.run(
        case_input(),
        policy(),
        OPENED,
        interrupts={partial_at: _payment("30.00", "P-1"), full_at: _payment("1100.00", "P-2")},
    )

    partial = next(e for e in log if isinstance(e, PaymentReceived))
    assert (partial.applied_fees, partial.applied_interest) == (Decimal("20.00"), Decimal("10.00"))
    assert partial.balance_after == Decimal("1040.00")
    assert state.closed_reason == "paid"
    assert state.overpaid == Decimal("60.00")
    assert state.balance.total == 0
    assert isinstance(log[-1], CaseClosed) and log[-1].at == full_at
    assert not [e for e in log if isinstance(e, ContactAttempted) and e.at > full_at]


def test_idempotency_keys_are_unique_and_name_the_case() -> None:
    _, log = fold.run(case_input(), policy(), OPENED)
    keys = [e.idempotency_key for e in log if hasattr(e, "idempotency_key")]
    assert len(keys) == len(set(keys)) == sum(DEFAULT_COUNTS.values())
    assert all(key.startswith("case-L-1001:") for key in keys)
