"""`evolve(state, event) -> state`: how each domain event changes a case. Pure.

One function per event type (`APPLY`), grouped below by what the events are about;
the table is checked complete when this module is imported.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from schemas.channels import CHANNELS
from schemas.compliance import CONNECTED_OUTCOMES, INVALID_NUMBER_OUTCOMES
from schemas.events import (
    AgreementRecorded,
    ApprovalDeclined,
    ApprovalExpired,
    ApprovalGranted,
    ApprovalRequested,
    CaseClosed,
    CaseOpened,
    CollectionPaused,
    CollectionResumed,
    ContactAttempted,
    ContactCeased,
    ContactDeferred,
    ContactExpired,
    ContactFailed,
    ContactSkipped,
    ContactWithdrawn,
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
    RulesUpgraded,
    SettlementAgreed,
    SettlementLapsed,
    StageChanged,
    StageEntered,
    ThirdPartyOptedOut,
    TimelineEvent,
    VisitBooked,
    VisitReported,
)
from workflows.dispatch import ByEvent
from workflows.state import (
    RECENT_EVENTS,
    AgreementRef,
    Balance,
    CallRecord,
    CaseState,
    DisputeInfo,
    FailureRecord,
    PauseInfo,
    PendingApproval,
    PlanInfo,
    PromiseInfo,
    SettlementInfo,
    VisitInfo,
)

# What a provider answered for an attempt in flight when the case closed (a payment,
# a write-off landing mid-attempt): it happened, so it is recorded on the closed case.
LATE_OUTCOMES = frozenset(
    {
        "contact_attempted",
        "field_visit_scheduled",
        "handed_to_legal",
        "contact_withdrawn",
        "contact_expired",
        "contact_failed",
    }
)
# Rules 3 confirm agreements through the guard, as contacts of their own.
CONFIRMATIONS_RULES = 3
RECENT_FAILURES = 5
CALL_MEMORY_DAYS = 9


class EvolveError(ValueError):
    """An event that cannot apply to the state: a bug or a tampered log, never user input."""


Apply = Any  # Callable[[CaseState, <the event type>], None]; typed per function below
APPLY: ByEvent[Apply] = ByEvent("evolve")


def evolve(state: CaseState | None, event: Event) -> CaseState:
    if state is None:
        if not isinstance(event, CaseOpened):
            raise EvolveError(f"a case starts with case_opened, not {event.type}")
        return _opened(event)
    if state.is_closed and event.type not in LATE_OUTCOMES:
        raise EvolveError(f"{event.type} on a closed case")

    new = state.model_copy(deep=True)
    new.seq += 1
    new.recent = [*new.recent, (new.seq, event)][-RECENT_EVENTS:]
    was_frozen = new.clock_frozen
    APPLY[type(event)](new, event)
    _move_clock(new, was_frozen, event)
    if isinstance(event, CollectionResumed):
        _after_resume(new, event.at)  # the aging rules look at the clock just settled
    return new


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


@APPLY.on(CaseOpened)
def _opened_twice(state: CaseState, event: CaseOpened) -> None:
    raise EvolveError("case_opened on a case that is already open")


@APPLY.on(RulesUpgraded)
def _rules_upgraded(state: CaseState, event: RulesUpgraded) -> None:
    if event.previous != state.rules or event.rules <= state.rules:
        raise EvolveError(f"rules_upgraded from {event.previous} on rules {state.rules}")
    state.rules = event.rules
    state.cadence_seq = state.seq  # attempts from here are named on the new scheme


# --- the escalation clock and the cadence ------------------------------------------------


def _move_clock(state: CaseState, was_frozen: bool, event: Event) -> None:
    """The escalation clock stands still while a hold stops it (`clock_frozen`)."""
    if was_frozen and not state.clock_frozen:
        if state.frozen_since is None:
            raise EvolveError("clock frozen without a start")
        state.paused_total += event.at - state.frozen_since
        state.frozen_since = None
    elif not was_frozen and state.clock_frozen:
        state.frozen_since = event.at


def _restart_cadence(state: CaseState, offset: timedelta) -> None:
    """The stage's cadence counts again from `offset` (active time): nothing done yet."""
    state.stage_offset = offset
    state.done = {}
    state.deferred = {}
    state.cadence_seq = state.seq


def _restart_stage(state: CaseState, at: datetime) -> None:
    """Collection resumes after an agreement: the stage's cadence starts again from day 0."""
    _restart_cadence(state, state.active_elapsed(at))


@APPLY.on(StageEntered)
def _stage_entered(state: CaseState, event: StageEntered) -> None:
    state.stage_index = event.stage_index
    _restart_cadence(state, event.active_offset)


@APPLY.on(StageChanged)
def _stage_changed(state: CaseState, event: StageChanged) -> None:
    state.clock_shift += event.shift
    state.stage_index = event.stage_index
    _restart_cadence(state, event.active_offset)


@APPLY.on(PolicyMigrated)
def _policy_migrated(state: CaseState, event: PolicyMigrated) -> None:
    state.policy = event.policy
    state.stage_index = event.stage_index
    _restart_stage(state, event.at)


# --- contacts -----------------------------------------------------------------------------


@APPLY.on(ContactAttempted)
def _contact_attempted(state: CaseState, event: ContactAttempted) -> None:
    _count(state, event.channel if event.agreement_seq is None else "confirmation")
    channel = CHANNELS[event.channel]
    if channel.address == "phone":
        _reachability(state, event)
    if event.agreement_seq is not None:
        _confirmed(state, event.agreement_seq)
        return
    _done(state, event.action_index, event.occurrence)
    if channel.capped:
        _remember_call(state, event)


@APPLY.on(FieldVisitScheduled)
def _field_visit_scheduled(state: CaseState, event: FieldVisitScheduled) -> None:
    _done(state, event.action_index, event.occurrence)
    _count(state, "field_visit")


@APPLY.on(HandedToLegal)
def _handed_to_legal(state: CaseState, event: HandedToLegal) -> None:
    state.done[event.action_index] = 1
    state.handed_to_legal = True
    _count(state, "legal_handoff")


@APPLY.on(ContactDeferred)
def _contact_deferred(state: CaseState, event: ContactDeferred) -> None:
    if event.agreement_seq is not None:
        state.confirmation_deferred[event.agreement_seq] = event.until
    else:
        state.deferred[event.action_index] = event.until


@APPLY.on(ContactSkipped)
def _contact_skipped(state: CaseState, event: ContactSkipped) -> None:
    _count(state, "skipped")
    if event.agreement_seq is not None:
        _confirmed(state, event.agreement_seq)
    else:
        _done(state, event.action_index, event.occurrence)


@APPLY.on(ContactWithdrawn)
def _contact_withdrawn(state: CaseState, event: ContactWithdrawn) -> None:
    """Not sent: the occurrence stays due and is decided again (after the hold)."""
    _count(state, "withdrawn")
    if event.agreement_seq is not None:
        state.confirmation_deferred.pop(event.agreement_seq, None)
    else:
        state.deferred.pop(event.action_index, None)


@APPLY.on(ContactExpired)
def _contact_expired(state: CaseState, event: ContactExpired) -> None:
    """Not sent before the window closed: the occurrence waits for the next opening."""
    _count(state, "expired")
    if event.agreement_seq is not None:
        state.confirmation_deferred[event.agreement_seq] = event.retry_at
    else:
        state.deferred[event.action_index] = event.retry_at


@APPLY.on(ContactFailed)
def _contact_failed(state: CaseState, event: ContactFailed) -> None:
    """Refused for good: the occurrence is spent (the cadence goes on), the reason kept."""
    _count(state, "failed")
    state.failures = [
        *state.failures,
        FailureRecord(at=event.at, channel=event.channel, stage=event.stage, reason=event.reason),
    ][-RECENT_FAILURES:]
    if event.agreement_seq is not None:
        _confirmed(state, event.agreement_seq)
    else:
        _done(state, event.action_index, event.occurrence)


def _done(state: CaseState, action_index: int, occurrence: int) -> None:
    state.done[action_index] = occurrence + 1
    state.deferred.pop(action_index, None)


def _confirmed(state: CaseState, agreement_seq: int) -> None:
    if agreement_seq in state.confirmations:
        state.confirmations.remove(agreement_seq)
    state.confirmation_deferred.pop(agreement_seq, None)


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
    if not CHANNELS[event.channel].capped:
        return  # only calls tell whether the borrower answers
    if event.outcome in CONNECTED_OUTCOMES:
        state.failed_calls = 0
    else:
        state.failed_calls += 1


def _count(state: CaseState, key: str) -> None:
    state.counters[key] = state.counters.get(key, 0) + 1


# --- payments ----------------------------------------------------------------------------


@APPLY.on(PaymentReceived)
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


# --- holds: pauses and disputes ------------------------------------------------------------


@APPLY.on(CollectionPaused)
def _paused(state: CaseState, event: CollectionPaused) -> None:
    state.paused = PauseInfo(
        since=event.at, reason=event.reason, operator=event.operator, until=event.until
    )


@APPLY.on(CollectionResumed)
def _resumed(state: CaseState, event: CollectionResumed) -> None:
    if state.paused is None:
        raise EvolveError("collection_resumed while not paused")
    state.paused = None


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
        _restart_cadence(state, active + aging.resume_grace_days * state.policy.day_length)


@APPLY.on(DisputeOpened)
def _dispute_opened(state: CaseState, event: DisputeOpened) -> None:
    state.dispute = DisputeInfo(since=event.at, operator=event.operator, reason=event.reason)


@APPLY.on(DisputeResolved)
def _dispute_resolved(state: CaseState, event: DisputeResolved) -> None:
    _need(state.dispute, event)
    state.dispute = None


# --- agreements ------------------------------------------------------------------------------


@APPLY.on(PromiseMade)
def _promise_made(state: CaseState, event: PromiseMade) -> None:
    state.promise = PromiseInfo(
        seq=state.seq, amount=event.amount, pay_by=event.pay_by, hold_until=event.hold_until
    )


@APPLY.on(PromiseKept)
def _promise_kept(state: CaseState, event: PromiseKept) -> None:
    _need(state.promise, event).kept = True


@APPLY.on(PromiseEnded)
def _promise_ended(state: CaseState, event: PromiseEnded) -> None:
    _need(state.promise, event)
    _restart_stage(state, event.at)
    state.promise = None


@APPLY.on(PlanAgreed)
def _plan_agreed(state: CaseState, event: PlanAgreed) -> None:
    state.plan = PlanInfo(seq=state.seq, instalments=event.instalments, deadlines=event.deadlines)


@APPLY.on(PlanBroken)
def _plan_broken(state: CaseState, event: PlanBroken) -> None:
    _need(state.plan, event)
    _restart_stage(state, event.at)
    state.plan = None


@APPLY.on(SettlementAgreed)
def _settlement_agreed(state: CaseState, event: SettlementAgreed) -> None:
    state.settlement = SettlementInfo(
        seq=state.seq,
        amount=event.amount,
        pay_by=event.pay_by,
        deadline=event.deadline,
        waiver=event.waiver,
        supervisor=event.supervisor,
    )


@APPLY.on(SettlementLapsed)
def _settlement_lapsed(state: CaseState, event: SettlementLapsed) -> None:
    _need(state.settlement, event)
    _restart_stage(state, event.at)
    state.settlement = None


@APPLY.on(AgreementRecorded)
def _agreement_recorded(state: CaseState, event: AgreementRecorded) -> None:
    state.agreements.append(
        AgreementRef(
            kind=event.kind,
            agreement_seq=event.agreement_seq,
            document_id=event.document_id,
            sha256=event.sha256,
        )
    )
    if state.rules >= CONFIRMATIONS_RULES:
        state.confirmations.append(event.agreement_seq)


# --- the borrower's requests and stops --------------------------------------------------------


@APPLY.on(ContactCeased)
def _contact_ceased(state: CaseState, event: ContactCeased) -> None:
    state.ceased.append(event.channel)


@APPLY.on(HardStopped)
def _hard_stopped(state: CaseState, event: HardStopped) -> None:
    state.hard_stops.append(event.kind)


@APPLY.on(ThirdPartyOptedOut)
def _third_party_opted_out(state: CaseState, event: ThirdPartyOptedOut) -> None:
    state.third_party_opt_outs.append(event.contact)


# --- visits -------------------------------------------------------------------------------------


@APPLY.on(VisitBooked)
def _visit_booked(state: CaseState, event: VisitBooked) -> None:
    state.visit = VisitInfo(at=event.visit_at, collectors=event.collectors)


@APPLY.on(VisitReported)
def _visit_reported(state: CaseState, event: VisitReported) -> None:
    _need(state.visit, event).outcome = event.outcome


# --- four eyes -----------------------------------------------------------------------------------


@APPLY.on(ApprovalRequested)
def _approval_requested(state: CaseState, event: ApprovalRequested) -> None:
    state.approvals.append(
        PendingApproval(
            seq=state.seq,
            kind=event.kind,
            requested_by=event.operator,
            command=event.command,
            expires_at=event.expires_at,
        )
    )


@APPLY.on(ApprovalGranted, ApprovalDeclined, ApprovalExpired)
def _approval_ended(
    state: CaseState, event: ApprovalGranted | ApprovalDeclined | ApprovalExpired
) -> None:
    remaining = [p for p in state.approvals if p.seq != event.request]
    if len(remaining) == len(state.approvals):
        raise EvolveError(f"{event.type} for request {event.request}, which is not pending")
    state.approvals = remaining


# --- entries in the case file -------------------------------------------------------------


@APPLY.on(TimelineEvent)
def _entry(state: CaseState, event: TimelineEvent) -> None:
    _count(state, event.type)


# --- closing ------------------------------------------------------------------------------------


@APPLY.on(CaseClosed)
def _closed(state: CaseState, event: CaseClosed) -> None:
    state.closed_reason = event.reason
    state.closed_at = event.at


T = TypeVar("T")


def _need(value: T | None, event: Event) -> T:
    if value is None:
        raise EvolveError(f"{event.type} without the state it refers to")
    return value


APPLY.check_complete()
