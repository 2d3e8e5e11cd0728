"""The case status as operators see it, derived from the state. Pure; no personal data."""

from __future__ import annotations

from datetime import datetime

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
from schemas.status import BalanceView, CaseStatus, EventLine, NextAction, PauseView
from workflows.decide import decide
from workflows.search import case_state_name
from workflows.state import CaseState


def case_status(state: CaseState, now: datetime) -> CaseStatus:
    balance = state.balance
    stage = state.stage
    return CaseStatus(
        case_id=state.case_id,
        state=case_state_name(state),
        closed_reason=state.closed_reason,
        stage=stage.name if stage is not None else None,
        days_past_due=state.days_past_due(state.closed_at or now),
        policy=state.policy.ref,
        opened_at=state.opened_at,
        balance=BalanceView(
            currency=state.case.loan.currency,
            principal=balance.principal,
            interest=balance.interest,
            fees=balance.fees,
            penalty=balance.penalty,
            total=balance.total,
            paid=state.paid,
            overpaid=state.overpaid,
        ),
        paused=(
            PauseView(
                since=state.paused.since, reason=state.paused.reason, operator=state.paused.operator
            )
            if state.paused is not None
            else None
        ),
        paused_total=state.paused_total,
        next_action=_next_action(state, now),
        counters=dict(state.counters),
        events=state.seq,
        last_events=[
            EventLine(seq=seq, type=e.type, at=e.at, actor=e.actor, summary=describe(e))
            for seq, e in state.recent
        ],
    )


def _next_action(state: CaseState, now: datetime) -> NextAction | None:
    if state.is_closed:
        return None
    decision = decide(state, now)
    if decision.events:
        return NextAction(what=", ".join(describe(e) for e in decision.events), at=now)
    if decision.effect is not None:
        return NextAction(what=decision.next_what or decision.effect.channel, at=now)
    if decision.next_what is None:
        return None
    return NextAction(what=decision.next_what, at=decision.wake_at)


def describe(event: Event) -> str:
    """A one-line, personal-data-free summary of an event for timelines."""
    if isinstance(event, CaseOpened):
        loan = event.case.loan
        return f"opened at {loan.days_past_due} dpd, {loan.outstanding} {loan.currency}"
    if isinstance(event, StageEntered):
        skipped = f" (skipped {', '.join(event.skipped)})" if event.skipped else ""
        return f"entered {event.stage} at {event.days_past_due} dpd{skipped}"
    if isinstance(event, ContactAttempted):
        return f"{event.channel} #{event.occurrence + 1} in {event.stage}: {event.outcome}"
    if isinstance(event, FieldVisitScheduled):
        return f"field visit requested in {event.stage}"
    if isinstance(event, HandedToLegal):
        return "handed to legal partner"
    if isinstance(event, PaymentReceived):
        return f"payment {event.amount} ref {event.reference}; balance {event.balance_after}"
    if isinstance(event, CollectionPaused):
        return f"paused by {event.operator}: {event.reason}"
    if isinstance(event, CollectionResumed):
        return f"resumed by {event.operator}: {event.reason}"
    if isinstance(event, CaseClosed):
        return f"closed: {event.reason}"
    return event.type
