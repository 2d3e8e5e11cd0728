"""`evolve(state, event) -> state`: how each domain event changes a case. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from schemas.compliance import CONNECTED_OUTCOMES, INVALID_NUMBER_OUTCOMES
from schemas.events import (
    AgreementRecorded,
    CaseClosed,
    CaseOpened,
    CollectionPaused,
    CollectionResumed,
    ContactAttempted,
    ContactCeased,
    ContactDeferred,
    ContactSkipped,
    DisputeOpened,
    DisputeResolved,
    Event,
    FieldVisitScheduled,
    HandedToLegal,
    HardStopped,
    PaymentReceived,
    PlanAgreed,
    PlanBroken,
    PolicyMigrated,
    PromiseEnded,
    PromiseKept,
    PromiseMade,
    SettlementAgreed,
    SettlementLapsed,
    StageChanged,
    StageEntered,
    ThirdPartyOptedOut,
    VisitBooked,
    VisitReported,
)
from workflows.state import (
    RECENT_EVENTS,
    AgreementRef,
    Balance,
    CallRecord,
    CaseState,
    DisputeInfo,
    PauseInfo,
    PlanInfo,
    PromiseInfo,
    SettlementInfo,
    VisitInfo,
)


class EvolveError(ValueError):
    """An event that cannot apply to the state: a bug or a tampered log, never user input."""


def evolve(state: CaseState | None, event: Event) -> CaseState:
    if state is None:
        if not isinstance(event, CaseOpened):
            raise EvolveError(f"a case starts with case_opened, not {event.type}")
        return _opened(event)
    if isinstance(event, CaseOpened):
        raise EvolveError("case_opened on a case that is already open")
    if state.is_closed:
        raise EvolveError(f"{event.type} on a closed case")

    new = state.model_copy(deep=True)
    new.seq += 1
    new.recent = [*new.recent, (new.seq, event)][-RECENT_EVENTS:]
    was_frozen = new.clock_frozen
    _apply(new, event)
    _move_clock(new, was_frozen, event)
    if isinstance(event, CollectionResumed):
        _after_resume(new, event.at)
    return new


def _move_clock(state: CaseState, was_frozen: bool, event: Event) -> None:
    """The escalation clock stands still while a hold stops it (`clock_frozen`)."""
    if was_frozen and not state.clock_frozen:
        if state.frozen_since is None:
            raise EvolveError("clock frozen without a start")
        state.paused_total += event.at - state.frozen_since
        state.frozen_since = None
    elif not was_frozen and state.clock_frozen:
        state.frozen_since = event.at


def _after_resume(state: CaseState, at: datetime) -> None:
    """The policy's aging rules on resume: at most `max_stages_per_resume` stages up
    (the clock is set back to the start of the furthest allowed stage), then the
    stage's cadence starts again after `resume_grace_days`."""
    if state.is_frozen:
        return  # another hold (a dispute, an agreement) still stands
    aging = state.policy.aging
    active = state.active_elapsed(at)
    allowed = state.stage_index + aging.max_stages_per_resume
    # The clock only ran on during the pause if paused days count; a case that has not
    # entered its first stage yet is opening, not jumping.
    counted = not aging.exclude_paused_days and state.stage_index >= 0
    if counted and allowed + 1 < len(state.policy.stages):
        limit = state.stage_start_offset(allowed + 1)
        if active >= limit:
            state.clock_shift -= active - state.stage_start_offset(allowed)
            active = state.active_elapsed(at)
    if aging.resume_grace_days:
        state.stage_offset = active + aging.resume_grace_days * state.policy.day_length
        state.done = {}
        state.deferred = {}


def _restart_stage(state: CaseState, at: datetime) -> None:
    """Collection resumes after an agreement: the stage's cadence starts again from day 0."""
    state.stage_offset = state.active_elapsed(at)
    state.done = {}
    state.deferred = {}


def _opened(event: CaseOpened) -> CaseState:
    loan = event.case.loan
    state = CaseState(
        case_id=event.case.case_id,
        case=event.case,
        policy=event.policy,
        opened_at=event.at,
        balance=Balance(
            principal=loan.principal, interest=loan.interest, fees=loan.fees, penalty=loan.penalty
        ),
        seq=1,
        rules=event.rules,
        assignment=event.assignment,
    )
    state.recent = [(1, event)]
    return state


def _apply(state: CaseState, event: Event) -> None:
    if isinstance(event, StageEntered):
        state.stage_index = event.stage_index
        state.stage_offset = event.active_offset
        state.done = {}
        state.deferred = {}
    elif isinstance(event, ContactAttempted | FieldVisitScheduled):
        state.done[event.action_index] = event.occurrence + 1
        state.deferred.pop(event.action_index, None)
        _count(state, event.channel if isinstance(event, ContactAttempted) else "field_visit")
        if isinstance(event, ContactAttempted) and event.channel in ("call", "sms"):
            _reachability(state, event)
        if isinstance(event, ContactAttempted) and event.channel == "call":
            _remember_call(state, event)
    elif isinstance(event, ContactDeferred):
        state.deferred[event.action_index] = event.until
    elif isinstance(event, ContactSkipped):
        state.done[event.action_index] = event.occurrence + 1
        state.deferred.pop(event.action_index, None)
        _count(state, "skipped")
    elif isinstance(event, HandedToLegal):
        state.done[event.action_index] = 1
        state.handed_to_legal = True
        _count(state, "legal_handoff")
    elif isinstance(event, PaymentReceived):
        _pay(state, event)
    elif isinstance(event, CollectionPaused):
        state.paused = PauseInfo(
            since=event.at, reason=event.reason, operator=event.operator, until=event.until
        )
    elif isinstance(event, CollectionResumed):
        if state.paused is None:
            raise EvolveError("collection_resumed while not paused")
        state.paused = None
    elif isinstance(event, CaseClosed):
        state.closed_reason = event.reason
        state.closed_at = event.at
    else:
        _apply_agreement(state, event)


def _apply_agreement(state: CaseState, event: Event) -> None:
    """Operator actions: agreements, disputes, visits, stage moves."""
    if isinstance(event, PromiseMade):
        state.promise = PromiseInfo(
            seq=state.seq, amount=event.amount, pay_by=event.pay_by, hold_until=event.hold_until
        )
    elif isinstance(event, PromiseKept):
        _need(state.promise, event).kept = True
    elif isinstance(event, PromiseEnded):
        _need(state.promise, event)
        _restart_stage(state, event.at)
        state.promise = None
    elif isinstance(event, PlanAgreed):
        state.plan = PlanInfo(
            seq=state.seq, instalments=event.instalments, deadlines=event.deadlines
        )
    elif isinstance(event, PlanBroken):
        _need(state.plan, event)
        _restart_stage(state, event.at)
        state.plan = None
    elif isinstance(event, SettlementAgreed):
        state.settlement = SettlementInfo(
            seq=state.seq,
            amount=event.amount,
            pay_by=event.pay_by,
            deadline=event.deadline,
            waiver=event.waiver,
            supervisor=event.supervisor,
        )
    elif isinstance(event, SettlementLapsed):
        _need(state.settlement, event)
        _restart_stage(state, event.at)
        state.settlement = None
    elif isinstance(event, DisputeOpened):
        state.dispute = DisputeInfo(since=event.at, operator=event.operator, reason=event.reason)
    elif isinstance(event, DisputeResolved):
        _need(state.dispute, event)
        state.dispute = None
    elif isinstance(event, ContactCeased):
        state.ceased.append(event.channel)
    elif isinstance(event, HardStopped):
        state.hard_stops.append(event.kind)
    elif isinstance(event, ThirdPartyOptedOut):
        state.third_party_opt_outs.append(event.contact)
    elif isinstance(event, PolicyMigrated):
        state.policy = event.policy
        state.stage_index = event.stage_index
        _restart_stage(state, event.at)
    elif isinstance(event, VisitBooked):
        state.visit = VisitInfo(at=event.visit_at, collectors=event.collectors)
    elif isinstance(event, VisitReported):
        _need(state.visit, event).outcome = event.outcome
    elif isinstance(event, StageChanged):
        state.clock_shift += event.shift
        state.stage_index = event.stage_index
        state.stage_offset = event.active_offset
        state.done = {}
        state.deferred = {}
    elif isinstance(event, AgreementRecorded):
        state.agreements.append(
            AgreementRef(
                kind=event.kind,
                agreement_seq=event.agreement_seq,
                document_id=event.document_id,
                sha256=event.sha256,
            )
        )
    else:  # pragma: no cover - every event type is handled above
        raise EvolveError(f"unknown event {event.type}")


T = TypeVar("T")


def _need(value: T | None, event: Event) -> T:
    if value is None:
        raise EvolveError(f"{event.type} without the state it refers to")
    return value


CALL_MEMORY_DAYS = 9


def _remember_call(state: CaseState, event: ContactAttempted) -> None:
    """Keep the calls the compliance caps look back on (7 days, and a margin)."""
    horizon = event.at - CALL_MEMORY_DAYS * max(state.policy.day_length, timedelta(days=1))
    state.calls = [c for c in state.calls if c.at > horizon]
    state.calls.append(
        CallRecord(
            at=event.at,
            phone_index=event.phone_index,
            connected=event.outcome in CONNECTED_OUTCOMES,
        )
    )


def _reachability(state: CaseState, event: ContactAttempted) -> None:
    """What the borrower's own contacts tell about reaching them (docs/domain.md rule 3)."""
    if event.outcome in INVALID_NUMBER_OUTCOMES:
        if event.phone_index not in state.invalid_phones:
            state.invalid_phones.append(event.phone_index)
    if event.channel != "call":
        return
    if event.outcome in CONNECTED_OUTCOMES:
        state.failed_calls = 0
    else:
        state.failed_calls += 1


def _count(state: CaseState, key: str) -> None:
    state.counters[key] = state.counters.get(key, 0) + 1


def _pay(state: CaseState, event: PaymentReceived) -> None:
    balance = state.balance
    balance.penalty -= event.applied_penalty
    balance.fees -= event.applied_fees
    balance.interest -= event.applied_interest
    balance.principal -= event.applied_principal
    if min(balance.penalty, balance.fees, balance.interest, balance.principal) < 0:
        raise EvolveError("payment applied more than was owed")
    state.paid += event.amount
    state.overpaid += event.overpaid
    state.payment_refs.append(event.reference)
    applied = event.amount - event.overpaid
    for agreement in (state.promise, state.plan, state.settlement):
        if agreement is not None:
            agreement.paid += applied


def allocate(balance: Balance, amount: Decimal) -> dict[str, Decimal]:
    """Split a payment over penalty, fees, interest, then principal; the rest is overpaid."""
    remaining = amount
    applied: dict[str, Decimal] = {}
    for part in ("penalty", "fees", "interest", "principal"):
        take = min(remaining, getattr(balance, part))
        applied[part] = take
        remaining -= take
    applied["overpaid"] = remaining
    return applied
