"""Every operator action's rule, given/when/then, on the pure functions: no server.

Given a case (the fold of some events), when a command is checked at an instant, then
it records these events, or it is refused with this code. Every refusal code the rules
can raise is exercised here (the last test checks that none is left out).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from schemas import commands as c
from schemas.events import (
    CaseOpened,
    CollectionPaused,
    ContactCeased,
    DisputeOpened,
    Event,
    HandedToLegal,
    HardStopped,
    PaymentReceived,
    StageEntered,
    ThirdPartyOptedOut,
    VisitBooked,
)
from schemas.refusals import Refusal
from tests.factories import TOTAL, case_input, policy
from workflows import actions
from workflows.evolve import evolve
from workflows.state import CaseState

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 2, 10, 0, tzinfo=SHANGHAI).astimezone(UTC)  # a Monday, 10:00
TODAY = date(2026, 11, 2)
OP: dict[str, Any] = {"operator": "op-7", "reason": "agreed on the phone"}
CONTACT = {"name": "Li Na", "phone": "+86 137 0013 7000", "relation": "sibling"}


def given(*events: Callable[[CaseState], Event], rules: int = 3, **case: Any) -> CaseState:
    """A case opened an hour before NOW, in its first stage, then `events` (each built
    from the state so far)."""
    opened = NOW - timedelta(hours=1)
    state = evolve(
        None,
        CaseOpened(at=opened, case=case_input(**case), policy=policy(), rules=rules),
    )
    state = evolve(
        state,
        StageEntered(
            at=opened, stage="reminder", stage_index=0, days_past_due=1, active_offset=timedelta(0)
        ),
    )
    for make in events:
        state = evolve(state, make(state))
    return state


def paused(state: CaseState) -> Event:
    return CollectionPaused(at=NOW - timedelta(minutes=30), **OP)


def disputed(state: CaseState) -> Event:
    return DisputeOpened(at=NOW - timedelta(minutes=30), **OP)


def ceased(channel: str) -> Callable[[CaseState], Event]:
    return lambda state: ContactCeased(at=NOW - timedelta(minutes=30), channel=channel, **OP)  # type: ignore[arg-type]


def stopped(state: CaseState) -> Event:
    return HardStopped(at=NOW - timedelta(minutes=30), kind="represented", **OP)


def visit_booked(at: datetime) -> Callable[[CaseState], Event]:
    return lambda state: VisitBooked(
        at=NOW - timedelta(minutes=30), visit_at=at, collectors=("c-1", "c-2"), **OP
    )


def opted_out(state: CaseState) -> Event:
    return ThirdPartyOptedOut(at=NOW - timedelta(minutes=30), contact=0, **OP)


def in_stage(index: int) -> Callable[[CaseState], Event]:
    return lambda state: StageEntered(
        at=NOW - timedelta(minutes=20),
        stage=state.policy.stages[index].name,
        stage_index=index,
        days_past_due=state.policy.stages[index].from_dpd,
        active_offset=state.stage_start_offset(index),
    )


def handed(state: CaseState) -> Event:
    return HandedToLegal(
        at=NOW - timedelta(minutes=10),
        stage="legal",
        action_index=0,
        idempotency_key="k",
        provider_ref="p",
    )


def paid(amount: Decimal) -> Callable[[CaseState], Event]:
    def make(state: CaseState) -> Event:
        [event] = actions.payment(
            state, c.Payment(amount=amount, reference=f"P-{amount}"), NOW - timedelta(minutes=5)
        )
        return event

    return make


def agreed(command: BaseModel) -> Callable[[CaseState], Event]:
    def make(state: CaseState) -> Event:
        [event] = actions.events_for(state, command, NOW - timedelta(minutes=5))
        return event

    return make


def promise(amount: str = "300.00", pay_by: date = TODAY + timedelta(days=5)) -> c.PromiseToPay:
    return c.PromiseToPay(amount=Decimal(amount), pay_by=pay_by, **OP)


def settle(amount: str, **extra: Any) -> c.Settlement:
    return c.Settlement(amount=Decimal(amount), pay_by=TODAY + timedelta(days=5), **OP, **extra)


def resolve(outcome: str, **who: Any) -> c.DisputeResolve:
    return c.DisputeResolve(outcome=outcome, **{**OP, **who})  # type: ignore[arg-type]


VISIT_AT = datetime(2026, 11, 3, 10, 0, tzinfo=SHANGHAI)


@dataclass(frozen=True)
class Refused:
    state: CaseState
    command: BaseModel
    code: Refusal
    at: datetime = NOW


REFUSALS: dict[str, Refused] = {
    "any action on a closed case": Refused(
        given(agreed(c.Close(**OP))), c.Pause(**OP), Refusal.case_closed
    ),
    "pause twice": Refused(given(paused), c.Pause(**OP), Refusal.already_paused),
    "pause until the past": Refused(
        given(), c.Pause(until=NOW - timedelta(minutes=1), **OP), Refusal.not_in_future
    ),
    "resume an unpaused case": Refused(given(), c.Resume(**OP), Refusal.not_paused),
    "cease a channel twice": Refused(
        given(ceased("sms")), c.CeaseContact(channel="sms", **OP), Refusal.already_ceased
    ),
    "cease after ceasing all": Refused(
        given(ceased("all")), c.CeaseContact(channel="call", **OP), Refusal.already_ceased
    ),
    "the same hard stop twice": Refused(
        given(stopped), c.HardStop(kind="represented", **OP), Refusal.already_stopped
    ),
    "a promise during a dispute": Refused(given(disputed), promise(), Refusal.in_dispute),
    "a second agreement": Refused(given(agreed(promise())), promise(), Refusal.agreement_in_force),
    "a promise in the past": Refused(
        given(), promise(pay_by=TODAY - timedelta(days=1)), Refusal.date_in_past
    ),
    "a promise too far ahead": Refused(
        given(), promise(pay_by=TODAY + timedelta(days=31)), Refusal.date_too_far
    ),
    "a promise over the balance": Refused(
        given(), promise(amount="2000.00"), Refusal.amount_over_balance
    ),
    "a CNY promise of a tenth of a cent": Refused(
        given(), promise(amount="300.001"), Refusal.minor_units
    ),
    "a JPY payment of half a yen": Refused(
        given(loan={"currency": "JPY", "principal": "1000", "interest": "0", "fees": "0"}),
        c.Payment(amount=Decimal("999.5"), reference="P-1"),
        Refusal.minor_units,
    ),
    "a plan that does not sum to the balance": Refused(
        given(),
        c.RepaymentPlan(
            instalments=(c.Instalment(amount=Decimal("100.00"), due=TODAY + timedelta(days=3)),),
            **OP,
        ),
        Refusal.instalments_mismatch,
    ),
    "a settlement not below the balance": Refused(
        given(), settle("1070.00"), Refusal.amount_not_below_balance
    ),
    "a settlement below the floor": Refused(given(), settle("534.00"), Refusal.below_floor),
    "a settlement naming its supervisor (rules 3)": Refused(
        given(), settle("800.00", supervisor="sup-2"), Refusal.approval_required
    ),
    "a second request while one is pending": Refused(
        given(agreed(c.WriteOff(**OP))), settle("800.00"), Refusal.approval_pending
    ),
    "a settlement past the share without a supervisor (rules 2)": Refused(
        given(rules=2), settle("800.00"), Refusal.needs_supervisor
    ),
    "a settlement approved by its operator (rules 2)": Refused(
        given(rules=2), settle("800.00", supervisor="op-7"), Refusal.same_person
    ),
    "a second dispute": Refused(given(disputed), c.DisputeOpen(**OP), Refusal.in_dispute),
    "resolving no dispute": Refused(given(), resolve("for_lender"), Refusal.no_dispute),
    "an opt-out for a contact the borrower did not name": Refused(
        given(), c.ThirdPartyOptOut(contact=0, **OP), Refusal.no_such_contact
    ),
    "an opt-out twice": Refused(
        given(opted_out, borrower={"emergency_contacts": [CONTACT]}),
        c.ThirdPartyOptOut(contact=0, **OP),
        Refusal.already_opted_out,
    ),
    "a migration to the same policy": Refused(
        given(), c.MigratePolicy(policy=policy(), **OP), Refusal.same_policy
    ),
    "a migration to another day length": Refused(
        given(),
        c.MigratePolicy(
            policy=policy().model_copy(update={"version": 2, "day_length": timedelta(hours=1)}),
            **OP,
        ),
        Refusal.day_length_differs,
    ),
    "a migration to a policy without the case's stage": Refused(
        given(),
        c.MigratePolicy(
            policy=policy().model_copy(update={"version": 2, "stages": policy().stages[1:]}),
            **OP,
        ),
        Refusal.stage_missing,
    ),
    "a visit while paused": Refused(
        given(paused), c.VisitBooking(at=VISIT_AT, collectors=("a", "b"), **OP), Refusal.paused
    ),
    "a visit after a hard stop": Refused(
        given(stopped),
        c.VisitBooking(at=VISIT_AT, collectors=("a", "b"), **OP),
        Refusal.hard_stopped,
    ),
    "a visit after a cease": Refused(
        given(ceased("call")),
        c.VisitBooking(at=VISIT_AT, collectors=("a", "b"), **OP),
        Refusal.contact_ceased,
    ),
    "a visit in the past": Refused(
        given(),
        c.VisitBooking(at=NOW - timedelta(hours=1), collectors=("a", "b"), **OP),
        Refusal.not_in_future,
    ),
    "a visit at 23:00": Refused(
        given(),
        c.VisitBooking(at=VISIT_AT.replace(hour=23), collectors=("a", "b"), **OP),
        Refusal.outside_window,
    ),
    "a visit on National Day": Refused(
        given(),
        c.VisitBooking(at=datetime(2027, 10, 1, 10, tzinfo=SHANGHAI), collectors=("a", "b"), **OP),
        Refusal.quiet_day,
    ),
    "a second visit": Refused(
        given(visit_booked(VISIT_AT)),
        c.VisitBooking(at=VISIT_AT + timedelta(days=1), collectors=("a", "b"), **OP),
        Refusal.visit_booked,
    ),
    "a report without a visit": Refused(
        given(), c.VisitReport(outcome="met", **OP), Refusal.no_visit
    ),
    "a report before the visit": Refused(
        given(visit_booked(VISIT_AT)), c.VisitReport(outcome="met", **OP), Refusal.visit_not_yet
    ),
    "escalating the last stage": Refused(given(in_stage(3)), c.Escalate(**OP), Refusal.last_stage),
    "de-escalating the first stage": Refused(given(), c.Deescalate(**OP), Refusal.first_stage),
    "de-escalating a case handed to legal": Refused(
        given(in_stage(3), handed), c.Deescalate(**OP), Refusal.handed_to_legal
    ),
    "a write-off naming its supervisor (rules 3)": Refused(
        given(), c.WriteOff(supervisor="sup-2", **OP), Refusal.approval_required
    ),
    "a one-step write-off without a supervisor (rules 2)": Refused(
        given(rules=2), c.WriteOff(**OP), Refusal.needs_supervisor
    ),
    "approving a request that is not pending": Refused(
        given(), c.Approve(request=3, **OP), Refusal.no_such_approval
    ),
    "approving one's own request, in other letters": Refused(
        given(agreed(c.WriteOff(**OP))),
        c.Approve(request=3, operator="OP-7", reason="fine"),
        Refusal.same_person,
    ),
    "declining a request that is not pending": Refused(
        given(), c.Decline(request=3, **OP), Refusal.no_such_approval
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_refused_action_names_its_code(case: str) -> None:
    refused = REFUSALS[case]
    with pytest.raises(actions.Rejected) as caught:
        actions.events_for(refused.state, refused.command, refused.at)
    assert caught.value.code is refused.code, caught.value.reason
    assert caught.value.reason  # and a reason for people


def test_every_refusal_the_rules_raise_is_exercised() -> None:
    raised_by_the_shell = {Refusal.agreement_not_stored}
    assert {r.code for r in REFUSALS.values()} == set(Refusal) - raised_by_the_shell


# --- acceptance -------------------------------------------------------------------------


def types_of(events: list[Event]) -> list[str]:
    return [e.type for e in events]


def test_a_pause_and_a_resume_are_recorded() -> None:
    assert types_of(actions.events_for(given(), c.Pause(**OP), NOW)) == ["collection_paused"]
    assert types_of(actions.events_for(given(paused), c.Resume(**OP), NOW)) == [
        "collection_resumed"
    ]


def test_a_payment_is_allocated_and_counted_once_per_reference() -> None:
    state = given(paid(Decimal("50.00")))
    [event] = actions.events_for(state, c.Payment(amount=Decimal("20.00"), reference="X"), NOW)
    assert isinstance(event, PaymentReceived)
    assert event.balance_after == TOTAL - Decimal("70.00")
    assert actions.events_for(state, c.Payment(amount=Decimal("1"), reference="P-50.00"), NOW) == []


def test_a_promise_within_terms_is_made() -> None:
    [event] = actions.events_for(given(), promise(), NOW)
    assert event.type == "promise_made"


def test_a_settlement_within_the_share_is_agreed_at_once() -> None:
    [event] = actions.events_for(given(), settle("900.00"), NOW)
    assert event.type == "settlement_agreed"


def test_a_settlement_past_the_share_waits_for_a_second_principal() -> None:
    state = given()
    [request] = actions.events_for(state, settle("800.00"), NOW)
    assert request.type == "approval_requested"
    state = evolve(state, request)
    approval = c.Approve(request=state.seq, operator="sup-2", reason="within policy")
    events = actions.events_for(state, approval, NOW)
    assert types_of(events) == ["approval_granted", "settlement_agreed"]


def test_an_approved_request_is_checked_again_as_the_case_stands() -> None:
    state = evolve(given(), actions.events_for(given(), settle("800.00"), NOW)[0])
    request = state.seq
    state = evolve(state, paid(Decimal("600.00"))(state))  # the balance is now 470
    with pytest.raises(actions.Rejected) as caught:
        actions.events_for(state, c.Approve(request=request, operator="sup-2", reason="ok"), NOW)
    assert caught.value.code is Refusal.amount_not_below_balance


def test_a_write_off_is_requested_then_approved_by_someone_else() -> None:
    state = given()
    [request] = actions.events_for(state, c.WriteOff(**OP), NOW)
    state = evolve(state, request)
    approval = c.Approve(request=state.seq, operator="sup-2", reason="uncollectable")
    assert types_of(actions.events_for(state, approval, NOW)) == [
        "approval_granted",
        "case_closed",
    ]


def test_a_declined_request_leaves_the_case_open() -> None:
    state = evolve(given(), actions.events_for(given(), c.WriteOff(**OP), NOW)[0])
    [declined] = actions.events_for(state, c.Decline(request=state.seq, **OP), NOW)
    state = evolve(state, declined)
    assert not state.approvals and not state.is_closed


def test_a_dispute_for_the_borrower_waits_for_approval_one_for_the_lender_does_not() -> None:
    state = given(disputed)
    [request] = actions.events_for(state, resolve("for_borrower"), NOW)
    assert request.type == "approval_requested"
    assert types_of(actions.events_for(state, resolve("for_lender"), NOW)) == ["dispute_resolved"]
    state = evolve(state, request)
    approve = c.Approve(request=state.seq, operator="sup-2", reason="evidence holds")
    assert types_of(actions.events_for(state, approve, NOW)) == [
        "approval_granted",
        "dispute_resolved",
        "case_closed",
    ]


def test_rules_2_keep_their_one_step_actions() -> None:
    state = given(rules=2)
    assert types_of(actions.events_for(state, c.WriteOff(supervisor="sup-2", **OP), NOW)) == [
        "case_closed"
    ]
    assert types_of(actions.events_for(state, settle("800.00", supervisor="sup-2"), NOW)) == [
        "settlement_agreed"
    ]


def test_the_settlement_floor_is_exact_and_rounded_up_to_the_currency_unit() -> None:
    # 1070.01 * 0.5 = 535.005: the floor is 535.01 (up), never 535.00.
    state = given(loan={"principal": "1000.01"})
    assert actions.settlement_floor(state) == Decimal("535.01")
    with pytest.raises(actions.Rejected):
        actions.events_for(state, settle("535.00"), NOW)
    # JPY has no minor unit: 1001 * 0.5 = 500.5 rounds up to 501.
    yen = given(loan={"currency": "JPY", "principal": "1001", "interest": "0", "fees": "0"})
    assert actions.settlement_floor(yen) == Decimal("501")


def test_the_other_actions_record_their_event() -> None:
    contact = given(borrower={"emergency_contacts": [CONTACT]})
    cases: list[tuple[CaseState, BaseModel, list[str]]] = [
        (given(), c.CeaseContact(channel="sms", **OP), ["contact_ceased"]),
        (given(), c.HardStop(kind="deceased", **OP), ["hard_stopped"]),
        (contact, c.ThirdPartyOptOut(contact=0, **OP), ["third_party_opted_out"]),
        (
            given(),
            c.MigratePolicy(policy=policy().model_copy(update={"version": 2}), **OP),
            ["policy_migrated"],
        ),
        (
            given(),
            c.RepaymentPlan(
                instalments=(
                    c.Instalment(amount=Decimal("500.00"), due=TODAY + timedelta(days=3)),
                    c.Instalment(amount=Decimal("570.00"), due=TODAY + timedelta(days=33)),
                ),
                **OP,
            ),
            ["plan_agreed"],
        ),
        (given(), c.DisputeOpen(**OP), ["dispute_opened"]),
        (
            given(),
            c.VisitBooking(at=VISIT_AT, collectors=("a", "b"), **OP),
            ["visit_booked"],
        ),
        (
            given(visit_booked(NOW - timedelta(minutes=1))),
            c.VisitReport(outcome="met", **OP),
            ["visit_reported"],
        ),
        (given(), c.Escalate(**OP), ["stage_changed"]),
        (given(in_stage(1)), c.Deescalate(**OP), ["stage_changed"]),
        (given(), c.Close(**OP), ["case_closed"]),
        (given(paused), c.Note(topic="call", **OP), ["note_recorded"]),
    ]
    for state, command, expected in cases:
        assert types_of(actions.events_for(state, command, NOW)) == expected, command


def test_a_pending_approval_expires_after_three_policy_days() -> None:
    from workflows.decide import decide

    state = given()
    [request] = actions.events_for(state, c.WriteOff(**OP), NOW)
    state = evolve(state, request)
    early = decide(state, NOW + timedelta(days=2, hours=23))
    assert not [e for e in early.events if e.type == "approval_expired"]
    [expired] = decide(state, NOW + timedelta(days=3, seconds=1)).events
    assert expired.type == "approval_expired" and expired.request == state.seq  # type: ignore[union-attr]
    state = evolve(state, expired)
    assert not state.approvals and not state.is_closed
