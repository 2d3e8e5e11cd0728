"""`evolve(state, event) -> state`: how each domain event changes a case. Pure."""

from __future__ import annotations

from decimal import Decimal

from schemas.events import (
    CaseClosed,
    CaseOpened,
    CollectionPaused,
    CollectionResumed,
    ContactAttempted,
    Event,
    FieldVisitScheduled,
    HandedToLegal,
    PaymentReceived,
    StageEntered,
)
from workflows.state import RECENT_EVENTS, Balance, CaseState, PauseInfo


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
    _apply(new, event)
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
    )
    state.recent = [(1, event)]
    return state


def _apply(state: CaseState, event: Event) -> None:
    if isinstance(event, StageEntered):
        state.stage_index = event.stage_index
        state.stage_offset = event.active_offset
        state.done = {}
    elif isinstance(event, ContactAttempted | FieldVisitScheduled):
        state.done[event.action_index] = event.occurrence + 1
        _count(state, event.channel if isinstance(event, ContactAttempted) else "field_visit")
    elif isinstance(event, HandedToLegal):
        state.done[event.action_index] = 1
        state.handed_to_legal = True
        _count(state, "legal_handoff")
    elif isinstance(event, PaymentReceived):
        _pay(state, event)
    elif isinstance(event, CollectionPaused):
        state.paused = PauseInfo(since=event.at, reason=event.reason, operator=event.operator)
    elif isinstance(event, CollectionResumed):
        if state.paused is None:
            raise EvolveError("collection_resumed while not paused")
        state.paused_total += event.at - state.paused.since
        state.paused = None
    elif isinstance(event, CaseClosed):
        state.closed_reason = event.reason
        state.closed_at = event.at


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
