"""Operator actions as pure rules: check a command against the case, or say why not,
and turn an accepted command into the events it records.

The workflow's update validators call `check`; its handlers call `events_for` under
the case's lock (state may have moved between validation and handling, so the
handler checks again). No Temporal import: these run in unit tests as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from schemas.commands import (
    CeaseContact,
    DisputeOpen,
    DisputeResolve,
    HardStop,
    MigratePolicy,
    OperatorAction,
    Pause,
    Payment,
    PromiseToPay,
    RepaymentPlan,
    Resume,
    Settlement,
    ThirdPartyOptOut,
    VisitBooking,
    VisitReport,
    WriteOff,
)
from schemas.events import (
    CaseClosed,
    CollectionPaused,
    CollectionResumed,
    ContactCeased,
    DisputeOpened,
    DisputeResolved,
    Event,
    HardStopped,
    PaymentReceived,
    PlanAgreed,
    PolicyMigrated,
    PromiseMade,
    SettlementAgreed,
    ThirdPartyOptedOut,
    VisitBooked,
    VisitReported,
)
from workflows import compliance
from workflows.calendar import end_of_day, local_date
from workflows.decide import stage_change
from workflows.evolve import allocate
from workflows.state import CaseState


class Rejected(ValueError):
    """The action does not apply to the case as it stands; the message says why."""


def _actor(command: OperatorAction) -> dict[str, Any]:
    return {
        "actor": f"operator:{command.operator}",
        "operator": command.operator,
        "reason": command.reason,
    }


def local_today(state: CaseState, now: datetime) -> date:
    return local_date(now, state.case.borrower.timezone)


def deadline_after(state: CaseState, day: date, grace_days: int) -> datetime:
    return end_of_day(day, state.case.borrower.timezone, grace_days, state.policy.day_length)


def _open(state: CaseState) -> None:
    if state.is_closed:
        raise Rejected(f"the case is closed ({state.closed_reason})")


def _no_agreement(state: CaseState) -> None:
    if state.promise is not None:
        raise Rejected(f"a promise to pay by {state.promise.pay_by} is already in force")
    if state.plan is not None:
        raise Rejected("a repayment plan is already in force")
    if state.settlement is not None:
        raise Rejected(f"a settlement payable by {state.settlement.pay_by} is already offered")


def _no_dispute(state: CaseState) -> None:
    if state.dispute is not None:
        raise Rejected("the case is in dispute: resolve the dispute first")


def _future_day(state: CaseState, now: datetime, day: date, field: str, limit: int) -> None:
    today = local_today(state, now)
    if day < today:
        raise Rejected(f"{field}: {day} is in the past (today is {today} for the borrower)")
    if day > today + timedelta(days=limit):
        raise Rejected(f"{field}: {day} is more than {limit} days ahead")


# --- one rule per action: returns the events, or raises Rejected ----------------------


def pause(state: CaseState, command: Pause, now: datetime) -> list[Event]:
    _open(state)
    if state.paused is not None:
        raise Rejected(f"already paused since {state.paused.since:%Y-%m-%d %H:%M} UTC")
    if command.until is not None and command.until <= now:
        raise Rejected("until: must be in the future")
    return [CollectionPaused(at=now, until=command.until, **_actor(command))]


def resume(state: CaseState, command: Resume, now: datetime) -> list[Event]:
    _open(state)
    if state.paused is None:
        raise Rejected("the case is not paused")
    return [CollectionResumed(at=now, paused_for=now - state.paused.since, **_actor(command))]


def cease_contact(state: CaseState, command: CeaseContact, now: datetime) -> list[Event]:
    """The borrower's opt-out, per channel or all: permanent (docs/domain.md rule 5)."""
    _open(state)
    if "all" in state.ceased:
        raise Rejected("contact has already ceased on every channel")
    if command.channel in state.ceased:
        raise Rejected(f"contact by {command.channel} has already ceased")
    return [ContactCeased(at=now, channel=command.channel, **_actor(command))]


def hard_stop(state: CaseState, command: HardStop, now: datetime) -> list[Event]:
    """Bankruptcy, death, legal representation: no collection contact (rule 6). Nothing
    lifts it: a resume ends a pause only."""
    _open(state)
    if command.kind in state.hard_stops:
        raise Rejected(f"a hard stop ({command.kind}) is already recorded")
    return [HardStopped(at=now, kind=command.kind, **_actor(command))]


def promise(state: CaseState, command: PromiseToPay, now: datetime) -> list[Event]:
    _open(state)
    _no_dispute(state)
    _no_agreement(state)
    terms = state.policy.agreements
    _future_day(state, now, command.pay_by, "pay_by", terms.promise_max_days)
    if command.amount > state.balance.total:
        raise Rejected(f"amount: {command.amount} is more than the balance {state.balance.total}")
    return [
        PromiseMade(
            at=now,
            amount=command.amount,
            pay_by=command.pay_by,
            hold_until=deadline_after(state, command.pay_by, terms.promise_grace_days),
            **_actor(command),
        )
    ]


def plan(state: CaseState, command: RepaymentPlan, now: datetime) -> list[Event]:
    _open(state)
    _no_dispute(state)
    _no_agreement(state)
    if command.total != state.balance.total:
        raise Rejected(
            f"instalments: they sum to {command.total} but the balance is {state.balance.total}"
        )
    first, last = command.instalments[0].due, command.instalments[-1].due
    _future_day(state, now, first, "instalments[0].due", 366)
    _future_day(state, now, last, f"instalments[{len(command.instalments) - 1}].due", 3 * 366)
    grace = state.policy.agreements.plan_grace_days
    return [
        PlanAgreed(
            at=now,
            instalments=command.instalments,
            deadlines=tuple(deadline_after(state, i.due, grace) for i in command.instalments),
            **_actor(command),
        )
    ]


def settlement(state: CaseState, command: Settlement, now: datetime) -> list[Event]:
    _open(state)
    _no_dispute(state)
    _no_agreement(state)
    terms = state.policy.agreements
    balance = state.balance.total
    if command.amount >= balance:
        raise Rejected(f"amount: {command.amount} is not below the balance {balance}")
    floor = (balance * terms.settlement_floor).quantize(Decimal("0.01"))
    if command.amount < floor:
        raise Rejected(f"amount: {command.amount} is below the policy's floor of {floor}")
    waiver = balance - command.amount
    if waiver > balance * terms.settlement_approval_share:
        if command.supervisor is None:
            raise Rejected(
                f"supervisor: a waiver of {waiver} is past the approval threshold "
                f"({terms.settlement_approval_share:%} of the balance)"
            )
        if command.supervisor == command.operator:
            raise Rejected("supervisor: must be someone other than the operator")
    _future_day(state, now, command.pay_by, "pay_by", terms.promise_max_days)
    return [
        SettlementAgreed(
            at=now,
            amount=command.amount,
            pay_by=command.pay_by,
            deadline=deadline_after(state, command.pay_by, 0),
            waiver=waiver,
            supervisor=command.supervisor,
            **_actor(command),
        )
    ]


def open_dispute(state: CaseState, command: DisputeOpen, now: datetime) -> list[Event]:
    _open(state)
    _no_dispute(state)
    return [DisputeOpened(at=now, **_actor(command))]


def resolve_dispute(state: CaseState, command: DisputeResolve, now: datetime) -> list[Event]:
    _open(state)
    if state.dispute is None:
        raise Rejected("the case has no open dispute")
    events: list[Event] = [DisputeResolved(at=now, outcome=command.outcome, **_actor(command))]
    if command.outcome == "for_borrower":
        events.append(
            CaseClosed(
                at=now,
                actor=f"operator:{command.operator}",
                reason="cancelled",
                waived=state.balance.total,
                operator=command.operator,
                note=command.reason,
            )
        )
    return events


def third_party_opt_out(state: CaseState, command: ThirdPartyOptOut, now: datetime) -> list[Event]:
    """An emergency contact's "don't contact me": permanent, and taken during a hold too."""
    _open(state)
    contacts = state.case.borrower.emergency_contacts
    if command.contact >= len(contacts):
        raise Rejected(
            f"contact: the borrower named {len(contacts)} emergency contact(s); "
            f"there is no contact {command.contact}"
        )
    if command.contact in state.third_party_opt_outs:
        raise Rejected(f"contact: emergency contact {command.contact} has already opted out")
    return [ThirdPartyOptedOut(at=now, contact=command.contact, **_actor(command))]


def migrate_policy(state: CaseState, command: MigratePolicy, now: datetime) -> list[Event]:
    """Move the case to another policy version. The case keeps its stage (by name) and
    its escalation clock; the stage's cadence restarts under the new policy from now,
    and the new thresholds apply from the next decision (a stage already reached under
    them is entered at once)."""
    _open(state)
    new, old = command.policy, state.policy
    if new.ref == old.ref:
        raise Rejected(f"policy: the case already runs under {old.ref}")
    if new.day_length != old.day_length:
        raise Rejected(
            f"policy: {new.ref} counts days of {new.day_length}, the case {old.day_length}"
        )
    stage = state.stage
    index = max(state.stage_index, 0)
    if stage is not None:
        names = [s.name for s in new.stages]
        if stage.name not in names:
            raise Rejected(
                f"policy: {new.ref} has no stage {stage.name!r} (it has {', '.join(names)}); "
                "move the case to a stage both have first"
            )
        index = names.index(stage.name)
    return [
        PolicyMigrated(
            at=now,
            previous=old.ref,
            policy=new,
            stage=new.stages[index].name if stage is not None else "",
            stage_index=state.stage_index if stage is None else index,
            **_actor(command),
        )
    ]


def book_visit(state: CaseState, command: VisitBooking, now: datetime) -> list[Event]:
    _open(state)
    _no_dispute(state)
    if state.paused is not None:
        raise Rejected("the case is paused")
    if state.hard_stops:
        raise Rejected(f"hard stop ({', '.join(state.hard_stops)}): no collection contact")
    if state.ceased:
        raise Rejected(f"the borrower asked to cease contact ({', '.join(state.ceased)})")
    if command.at <= now:
        raise Rejected("at: the appointment must be in the future")
    if state.rules >= 2:
        _visit_allowed(state, command.at)
    window = state.policy.contact_window
    if window is not None:
        local = command.at.astimezone(ZoneInfo(state.case.borrower.timezone)).time()
        if not window.start <= local < window.end:
            raise Rejected(
                f"at: {local:%H:%M} borrower time is outside the contact window "
                f"{window.start:%H:%M}-{window.end:%H:%M}"
            )
    if state.visit is not None and state.visit.outcome is None:
        raise Rejected(f"a visit is already booked for {state.visit.at:%Y-%m-%d %H:%M} UTC")
    return [
        VisitBooked(at=now, visit_at=command.at, collectors=command.collectors, **_actor(command))
    ]


def _visit_allowed(state: CaseState, at: datetime) -> None:
    """A visit only inside the compliance window and not on a quiet day (rule 7)."""
    opening, rule, detail = compliance.next_allowed(state, at)
    if opening <= at:
        return
    local = at.astimezone(ZoneInfo(state.case.borrower.timezone))
    if rule == "quiet_day":
        raise Rejected(f"at: {local:%Y-%m-%d} is a quiet day ({detail}); no visit")
    raise Rejected(f"at: {local:%H:%M} borrower time is outside the contact window {detail}")


def report_visit(state: CaseState, command: VisitReport, now: datetime) -> list[Event]:
    _open(state)
    if state.visit is None or state.visit.outcome is not None:
        raise Rejected("no booked visit is waiting for its report")
    if state.visit.at > now:
        raise Rejected(f"the visit is booked for {state.visit.at:%Y-%m-%d %H:%M} UTC, not yet")
    return [VisitReported(at=now, outcome=command.outcome, **_actor(command))]


def escalate(state: CaseState, command: OperatorAction, now: datetime) -> list[Event]:
    _open(state)
    target = state.stage_index + 1
    if target >= len(state.policy.stages):
        raise Rejected("the case is already in the last stage")
    return [stage_change(state, now, target, operator=command.operator, reason=command.reason)]


def deescalate(state: CaseState, command: OperatorAction, now: datetime) -> list[Event]:
    _open(state)
    if state.stage_index <= 0:
        raise Rejected("the case is already in the first stage")
    if state.handed_to_legal:
        raise Rejected("the case has been handed to legal")
    target = state.stage_index - 1
    return [stage_change(state, now, target, operator=command.operator, reason=command.reason)]


def write_off(state: CaseState, command: WriteOff, now: datetime) -> list[Event]:
    _open(state)
    if command.supervisor == command.operator:
        raise Rejected("supervisor: must be someone other than the operator")
    return [
        CaseClosed(
            at=now,
            actor=f"operator:{command.operator}",
            reason="written_off",
            waived=state.balance.total,
            operator=command.operator,
            note=f"{command.reason} (approved by {command.supervisor})",
        )
    ]


def close(state: CaseState, command: OperatorAction, now: datetime) -> list[Event]:
    _open(state)
    return [
        CaseClosed(
            at=now,
            actor=f"operator:{command.operator}",
            reason="closed",
            operator=command.operator,
            note=command.reason,
        )
    ]


Rule = Callable[[CaseState, Any, datetime], list[Event]]

RULES: dict[str, tuple[type[BaseModel], Rule]] = {
    "pause_case": (Pause, pause),
    "resume_case": (Resume, resume),
    "cease_contact": (CeaseContact, cease_contact),
    "hard_stop": (HardStop, hard_stop),
    "migrate_policy": (MigratePolicy, migrate_policy),
    "third_party_opt_out": (ThirdPartyOptOut, third_party_opt_out),
    "promise_to_pay": (PromiseToPay, promise),
    "agree_plan": (RepaymentPlan, plan),
    "offer_settlement": (Settlement, settlement),
    "open_dispute": (DisputeOpen, open_dispute),
    "resolve_dispute": (DisputeResolve, resolve_dispute),
    "book_visit": (VisitBooking, book_visit),
    "report_visit": (VisitReport, report_visit),
    "escalate": (OperatorAction, escalate),
    "deescalate": (OperatorAction, deescalate),
    "write_off": (WriteOff, write_off),
    "close_case": (OperatorAction, close),
}


def payment(state: CaseState, command: Payment, now: datetime) -> list[Event]:
    """A payment: penalty, fees, interest, then principal; any excess is recorded as
    overpaid and the balance never goes below zero. A known reference counts once."""
    _open(state)
    if command.reference in state.payment_refs:
        return []
    split = allocate(state.balance, command.amount)
    return [
        PaymentReceived(
            at=now,
            actor=f"service:{command.source}",
            amount=command.amount,
            reference=command.reference,
            applied_penalty=split["penalty"],
            applied_fees=split["fees"],
            applied_interest=split["interest"],
            applied_principal=split["principal"],
            overpaid=split["overpaid"],
            balance_after=state.balance.total - (command.amount - split["overpaid"]),
        )
    ]
