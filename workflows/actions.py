"""Operator actions as pure rules: check a command against the case, or say why not,
and turn an accepted command into the events it records.

One rule per command type (`RULES`, filled by `@rule(Command)`): the workflow's
update validators and handlers both look the rule up by the command's type, so an
update can only run the rule of the command it was given. A refusal carries a code
(`schemas.refusals.Refusal`) for programs and a reason for people. No Temporal import:
these run in unit tests as they are.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from schemas.commands import (
    Approve,
    CeaseContact,
    Close,
    Decline,
    Deescalate,
    DisputeOpen,
    DisputeResolve,
    Escalate,
    HardStop,
    MigratePolicy,
    Note,
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
    ApprovalDeclined,
    ApprovalGranted,
    ApprovalKind,
    ApprovalRequested,
    CaseClosed,
    CollectionPaused,
    CollectionResumed,
    ContactCeased,
    DisputeOpened,
    DisputeResolved,
    Event,
    HardStopped,
    NoteRecorded,
    PaymentReceived,
    PlanAgreed,
    PolicyMigrated,
    PromiseMade,
    SettlementAgreed,
    ThirdPartyOptedOut,
    VisitBooked,
    VisitReported,
)
from schemas.money import check_minor_units, minor_units
from schemas.refusals import Refusal
from workflows import compliance
from workflows.calendar import end_of_day, local_date
from workflows.decide import stage_change
from workflows.evolve import allocate
from workflows.state import CaseState, PendingApproval

# Rules 3 brought four eyes, amounts in the currency's minor units and an exact
# settlement floor; cases on older rules keep what they were recorded with.
FOUR_EYES_RULES = 3
# A pending approval lapses after this many policy days (72 hours on real days).
APPROVAL_EXPIRY_DAYS = 3


class Rejected(ValueError):
    """The action does not apply to the case as it stands; `code` says which rule."""

    def __init__(self, code: Refusal, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


C = TypeVar("C", bound=BaseModel)
Rule = Callable[[CaseState, Any, datetime], list[Event]]
RULES: dict[type[BaseModel], Rule] = {}


def rule(command: type[C]) -> Callable[[Callable[[CaseState, C, datetime], list[Event]]], Rule]:
    """Register the rule of `command`: one rule per command type."""

    def register(fn: Callable[[CaseState, C, datetime], list[Event]]) -> Rule:
        if command in RULES:
            raise TypeError(f"a second rule for {command.__name__}")
        RULES[command] = fn
        return fn

    return register


def events_for(state: CaseState, command: BaseModel, now: datetime) -> list[Event]:
    """The events `command` records on `state` at `now`, or Rejected."""
    return RULES[type(command)](state, command, now)


# --- shared checks ----------------------------------------------------------------------


def _actor(command: OperatorAction) -> dict[str, Any]:
    return {
        "actor": f"operator:{command.operator}",
        "operator": command.operator,
        "reason": command.reason,
    }


def same_principal(a: str, b: str) -> bool:
    """Principals compare case-insensitively: `OP-7` and `op-7` are one person."""
    return a.casefold() == b.casefold()


def local_today(state: CaseState, now: datetime) -> date:
    return local_date(now, state.case.borrower.timezone)


def deadline_after(state: CaseState, day: date, grace_days: int) -> datetime:
    return end_of_day(day, state.case.borrower.timezone, grace_days, state.policy.day_length)


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _open(state: CaseState) -> None:
    if state.is_closed:
        raise Rejected(Refusal.case_closed, f"the case is closed ({state.closed_reason})")


def _no_agreement(state: CaseState) -> None:
    if state.promise is not None:
        raise Rejected(
            Refusal.agreement_in_force,
            f"a promise to pay by {state.promise.pay_by} is already in force",
        )
    if state.plan is not None:
        raise Rejected(Refusal.agreement_in_force, "a repayment plan is already in force")
    if state.settlement is not None:
        raise Rejected(
            Refusal.agreement_in_force,
            f"a settlement payable by {state.settlement.pay_by} is already offered",
        )


def _no_dispute(state: CaseState) -> None:
    if state.dispute is not None:
        raise Rejected(Refusal.in_dispute, "the case is in dispute: resolve the dispute first")


def _future_day(state: CaseState, now: datetime, day: date, field: str, limit: int) -> None:
    today = local_today(state, now)
    if day < today:
        raise Rejected(
            Refusal.date_in_past,
            f"{field}: {day} is in the past (today is {today} for the borrower)",
        )
    if day > today + timedelta(days=limit):
        raise Rejected(Refusal.date_too_far, f"{field}: {day} is more than {limit} days ahead")


def _four_eyes(state: CaseState) -> bool:
    return state.rules >= FOUR_EYES_RULES


def _money(state: CaseState, amount: Decimal, field: str) -> None:
    """Rules 3: an amount in the currency's minor units (CNY 2, JPY 0, KWD 3)."""
    if not _four_eyes(state):
        return
    try:
        check_minor_units(amount, state.case.loan.currency)
    except ValueError as exc:
        raise Rejected(Refusal.minor_units, f"{field}: {exc}") from None


def _no_named_supervisor(state: CaseState, supervisor: str | None) -> None:
    if supervisor is not None and _four_eyes(state):
        raise Rejected(
            Refusal.approval_required,
            "supervisor: a supervisor approves with an approval of their own (four eyes), "
            "not by being named in the request",
        )


def _request(
    state: CaseState, command: OperatorAction, kind: ApprovalKind, now: datetime
) -> list[Event]:
    """Four eyes: hold the action as a pending approval instead of applying it."""
    if state.approvals:
        pending = state.approvals[0]
        raise Rejected(
            Refusal.approval_pending,
            f"request #{pending.seq} ({pending.kind}) is waiting for approval: approve or "
            "decline it first",
        )
    return [
        ApprovalRequested(
            at=now,
            kind=kind,
            command=command.model_dump(mode="json"),
            expires_at=now + APPROVAL_EXPIRY_DAYS * state.policy.day_length,
            **_actor(command),
        )
    ]


# --- one rule per action: returns the events, or raises Rejected ----------------------


@rule(Pause)
def pause(state: CaseState, command: Pause, now: datetime) -> list[Event]:
    _open(state)
    if state.paused is not None:
        raise Rejected(Refusal.already_paused, f"already paused since {_utc(state.paused.since)}")
    if command.until is not None and command.until <= now:
        raise Rejected(Refusal.not_in_future, "until: must be in the future")
    return [CollectionPaused(at=now, until=command.until, **_actor(command))]


@rule(Resume)
def resume(state: CaseState, command: Resume, now: datetime) -> list[Event]:
    _open(state)
    if state.paused is None:
        raise Rejected(Refusal.not_paused, "the case is not paused")
    return [CollectionResumed(at=now, paused_for=now - state.paused.since, **_actor(command))]


@rule(CeaseContact)
def cease_contact(state: CaseState, command: CeaseContact, now: datetime) -> list[Event]:
    """The borrower's opt-out, per channel or all: permanent (docs/domain.md rule 5)."""
    _open(state)
    if "all" in state.ceased:
        raise Rejected(Refusal.already_ceased, "contact has already ceased on every channel")
    if command.channel in state.ceased:
        raise Rejected(Refusal.already_ceased, f"contact by {command.channel} has already ceased")
    return [ContactCeased(at=now, channel=command.channel, **_actor(command))]


@rule(HardStop)
def hard_stop(state: CaseState, command: HardStop, now: datetime) -> list[Event]:
    """Bankruptcy, death, legal representation: no collection contact (rule 6). Nothing
    lifts it: a resume ends a pause only."""
    _open(state)
    if command.kind in state.hard_stops:
        raise Rejected(Refusal.already_stopped, f"a hard stop ({command.kind}) is already recorded")
    return [HardStopped(at=now, kind=command.kind, **_actor(command))]


@rule(PromiseToPay)
def promise(state: CaseState, command: PromiseToPay, now: datetime) -> list[Event]:
    _open(state)
    _no_dispute(state)
    _no_agreement(state)
    _money(state, command.amount, "amount")
    terms = state.policy.agreements
    _future_day(state, now, command.pay_by, "pay_by", terms.promise_max_days)
    if command.amount > state.balance.total:
        raise Rejected(
            Refusal.amount_over_balance,
            f"amount: {command.amount} is more than the balance {state.balance.total}",
        )
    return [
        PromiseMade(
            at=now,
            amount=command.amount,
            pay_by=command.pay_by,
            hold_until=deadline_after(state, command.pay_by, terms.promise_grace_days),
            **_actor(command),
        )
    ]


@rule(RepaymentPlan)
def plan(state: CaseState, command: RepaymentPlan, now: datetime) -> list[Event]:
    _open(state)
    _no_dispute(state)
    _no_agreement(state)
    for index, instalment in enumerate(command.instalments):
        _money(state, instalment.amount, f"instalments[{index}].amount")
    if command.total != state.balance.total:
        raise Rejected(
            Refusal.instalments_mismatch,
            f"instalments: they sum to {command.total} but the balance is {state.balance.total}",
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


def settlement_floor(state: CaseState) -> Decimal:
    """The lowest settlement the policy allows: its share of the balance, exactly, rounded
    up to the currency's unit (rules 3); to the cent, half-even, before."""
    exact = state.balance.total * state.policy.agreements.settlement_floor
    if not _four_eyes(state):
        return exact.quantize(Decimal("0.01"))
    unit = Decimal(1).scaleb(-minor_units(state.case.loan.currency))
    return exact.quantize(unit, rounding=ROUND_CEILING)


@rule(Settlement)
def settlement(state: CaseState, command: Settlement, now: datetime) -> list[Event]:
    return _settlement(state, command, now, approved=False)


def _settlement(
    state: CaseState, command: Settlement, now: datetime, *, approved: bool
) -> list[Event]:
    _open(state)
    _no_dispute(state)
    _no_agreement(state)
    _no_named_supervisor(state, command.supervisor)
    _money(state, command.amount, "amount")
    terms = state.policy.agreements
    balance = state.balance.total
    if command.amount >= balance:
        raise Rejected(
            Refusal.amount_not_below_balance,
            f"amount: {command.amount} is not below the balance {balance}",
        )
    floor = settlement_floor(state)
    if command.amount < floor:
        raise Rejected(
            Refusal.below_floor, f"amount: {command.amount} is below the policy's floor of {floor}"
        )
    _future_day(state, now, command.pay_by, "pay_by", terms.promise_max_days)
    waiver = balance - command.amount
    past_share = waiver > balance * terms.settlement_approval_share
    if past_share and not approved:
        if _four_eyes(state):
            return _request(state, command, "settlement", now)
        if command.supervisor is None:
            raise Rejected(
                Refusal.needs_supervisor,
                f"supervisor: a waiver of {waiver} is past the approval threshold "
                f"({terms.settlement_approval_share:%} of the balance)",
            )
        if command.supervisor == command.operator:
            raise Rejected(
                Refusal.same_person, "supervisor: must be someone other than the operator"
            )
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


@rule(DisputeOpen)
def open_dispute(state: CaseState, command: DisputeOpen, now: datetime) -> list[Event]:
    _open(state)
    _no_dispute(state)
    return [DisputeOpened(at=now, **_actor(command))]


@rule(DisputeResolve)
def resolve_dispute(state: CaseState, command: DisputeResolve, now: datetime) -> list[Event]:
    return _resolve_dispute(state, command, now, approved=False)


def _resolve_dispute(
    state: CaseState, command: DisputeResolve, now: datetime, *, approved: bool
) -> list[Event]:
    _open(state)
    if state.dispute is None:
        raise Rejected(Refusal.no_dispute, "the case has no open dispute")
    if command.outcome == "for_borrower" and _four_eyes(state) and not approved:
        # It cancels the debt: a second principal approves (four eyes).
        return _request(state, command, "dispute_for_borrower", now)
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


@rule(ThirdPartyOptOut)
def third_party_opt_out(state: CaseState, command: ThirdPartyOptOut, now: datetime) -> list[Event]:
    """An emergency contact's "don't contact me": permanent, and taken during a hold too."""
    _open(state)
    contacts = state.case.borrower.emergency_contacts
    if command.contact >= len(contacts):
        raise Rejected(
            Refusal.no_such_contact,
            f"contact: the borrower named {len(contacts)} emergency contact(s); "
            f"there is no contact {command.contact}",
        )
    if command.contact in state.third_party_opt_outs:
        raise Rejected(
            Refusal.already_opted_out,
            f"contact: emergency contact {command.contact} has already opted out",
        )
    return [ThirdPartyOptedOut(at=now, contact=command.contact, **_actor(command))]


@rule(MigratePolicy)
def migrate_policy(state: CaseState, command: MigratePolicy, now: datetime) -> list[Event]:
    """Move the case to another policy version. The case keeps its stage (by name) and
    its escalation clock; the stage's cadence restarts under the new policy from now,
    and the new thresholds apply from the next decision (a stage already reached under
    them is entered at once)."""
    _open(state)
    new, old = command.policy, state.policy
    if new.ref == old.ref:
        raise Rejected(Refusal.same_policy, f"policy: the case already runs under {old.ref}")
    if new.day_length != old.day_length:
        raise Rejected(
            Refusal.day_length_differs,
            f"policy: {new.ref} counts days of {new.day_length}, the case {old.day_length}",
        )
    stage = state.stage
    index = max(state.stage_index, 0)
    if stage is not None:
        names = [s.name for s in new.stages]
        if stage.name not in names:
            raise Rejected(
                Refusal.stage_missing,
                f"policy: {new.ref} has no stage {stage.name!r} (it has {', '.join(names)}); "
                "move the case to a stage both have first",
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


@rule(VisitBooking)
def book_visit(state: CaseState, command: VisitBooking, now: datetime) -> list[Event]:
    _open(state)
    _no_dispute(state)
    if state.paused is not None:
        raise Rejected(Refusal.paused, "the case is paused")
    if state.hard_stops:
        raise Rejected(
            Refusal.hard_stopped,
            f"hard stop ({', '.join(state.hard_stops)}): no collection contact",
        )
    if state.ceased:
        raise Rejected(
            Refusal.contact_ceased,
            f"the borrower asked to cease contact ({', '.join(state.ceased)})",
        )
    if command.at <= now:
        raise Rejected(Refusal.not_in_future, "at: the appointment must be in the future")
    if state.rules >= 2:
        _visit_allowed(state, command.at)
    window = state.policy.contact_window
    if window is not None:
        local = command.at.astimezone(ZoneInfo(state.case.borrower.timezone)).time()
        if not window.start <= local < window.end:
            raise Rejected(
                Refusal.outside_window,
                f"at: {local:%H:%M} borrower time is outside the contact window "
                f"{window.start:%H:%M}-{window.end:%H:%M}",
            )
    if state.visit is not None and state.visit.outcome is None:
        raise Rejected(
            Refusal.visit_booked, f"a visit is already booked for {_utc(state.visit.at)}"
        )
    return [
        VisitBooked(at=now, visit_at=command.at, collectors=command.collectors, **_actor(command))
    ]


def _visit_allowed(state: CaseState, at: datetime) -> None:
    """A visit only inside the compliance window and not on a quiet day (rule 7)."""
    opening, rule_name, detail = compliance.next_allowed(state, at)
    if opening <= at:
        return
    local = at.astimezone(ZoneInfo(state.case.borrower.timezone))
    if rule_name == "quiet_day":
        raise Rejected(
            Refusal.quiet_day, f"at: {local:%Y-%m-%d} is a quiet day ({detail}); no visit"
        )
    raise Rejected(
        Refusal.outside_window,
        f"at: {local:%H:%M} borrower time is outside the contact window {detail}",
    )


@rule(VisitReport)
def report_visit(state: CaseState, command: VisitReport, now: datetime) -> list[Event]:
    _open(state)
    if state.visit is None or state.visit.outcome is not None:
        raise Rejected(Refusal.no_visit, "no booked visit is waiting for its report")
    if state.visit.at > now:
        raise Rejected(
            Refusal.visit_not_yet, f"the visit is booked for {_utc(state.visit.at)}, not yet"
        )
    return [VisitReported(at=now, outcome=command.outcome, **_actor(command))]


@rule(Escalate)
def escalate(state: CaseState, command: Escalate, now: datetime) -> list[Event]:
    _open(state)
    target = state.stage_index + 1
    if target >= len(state.policy.stages):
        raise Rejected(Refusal.last_stage, "the case is already in the last stage")
    return [stage_change(state, now, target, operator=command.operator, reason=command.reason)]


@rule(Deescalate)
def deescalate(state: CaseState, command: Deescalate, now: datetime) -> list[Event]:
    _open(state)
    if state.stage_index <= 0:
        raise Rejected(Refusal.first_stage, "the case is already in the first stage")
    if state.handed_to_legal:
        raise Rejected(Refusal.handed_to_legal, "the case has been handed to legal")
    target = state.stage_index - 1
    return [stage_change(state, now, target, operator=command.operator, reason=command.reason)]


@rule(WriteOff)
def write_off(state: CaseState, command: WriteOff, now: datetime) -> list[Event]:
    return _write_off(state, command, now, approved=False)


def _write_off(
    state: CaseState, command: WriteOff, now: datetime, *, approved: bool
) -> list[Event]:
    _open(state)
    _no_named_supervisor(state, command.supervisor)
    if _four_eyes(state) and not approved:
        return _request(state, command, "write_off", now)
    if not _four_eyes(state):
        if command.supervisor is None:
            raise Rejected(
                Refusal.needs_supervisor, "supervisor: a write-off needs an approving supervisor"
            )
        if command.supervisor == command.operator:
            raise Rejected(
                Refusal.same_person, "supervisor: must be someone other than the operator"
            )
    approval = f" (approved by {command.supervisor})" if command.supervisor else ""
    return [
        CaseClosed(
            at=now,
            actor=f"operator:{command.operator}",
            reason="written_off",
            waived=state.balance.total,
            operator=command.operator,
            note=f"{command.reason}{approval}",
        )
    ]


@rule(Close)
def close(state: CaseState, command: Close, now: datetime) -> list[Event]:
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


@rule(Note)
def note(state: CaseState, command: Note, now: datetime) -> list[Event]:
    _open(state)
    return [NoteRecorded(at=now, topic=command.topic, **_actor(command))]


# --- four eyes --------------------------------------------------------------------------

# The command each kind of request holds, and how it applies once approved.
APPROVED: dict[ApprovalKind, tuple[type[OperatorAction], Callable[..., list[Event]]]] = {
    "write_off": (WriteOff, _write_off),
    "settlement": (Settlement, _settlement),
    "dispute_for_borrower": (DisputeResolve, _resolve_dispute),
}


def _pending(state: CaseState, request: int) -> PendingApproval:
    for pending in state.approvals:
        if pending.seq == request:
            return pending
    raise Rejected(Refusal.no_such_approval, f"request: no pending approval #{request}")


@rule(Approve)
def approve(state: CaseState, command: Approve, now: datetime) -> list[Event]:
    """A different principal approves; the action applies as the case stands now (it
    may refuse, e.g. a settlement no longer below a balance paid down meanwhile)."""
    _open(state)
    pending = _pending(state, command.request)
    if same_principal(pending.requested_by, command.operator):
        raise Rejected(
            Refusal.same_person,
            f"operator: {command.operator} asked for request #{pending.seq}; "
            "a different principal must approve it",
        )
    model, apply = APPROVED[pending.kind]
    requested = model.model_validate(pending.command)
    granted = ApprovalGranted(at=now, request=pending.seq, kind=pending.kind, **_actor(command))
    return [granted, *apply(state, requested, now, approved=True)]


@rule(Decline)
def decline(state: CaseState, command: Decline, now: datetime) -> list[Event]:
    _open(state)
    pending = _pending(state, command.request)
    return [ApprovalDeclined(at=now, request=pending.seq, kind=pending.kind, **_actor(command))]


# --- payments (a backend's report, not an operator's action) -----------------------------


@rule(Payment)
def payment(state: CaseState, command: Payment, now: datetime) -> list[Event]:
    """A payment: penalty, fees, interest, then principal; any excess is recorded as
    overpaid and the balance never goes below zero. A known reference counts once."""
    _open(state)
    if command.reference in state.payment_refs:
        return []
    _money(state, command.amount, "amount")
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
