"""The case status as operators see it, derived from the state. Pure; no personal data."""

from __future__ import annotations

from datetime import datetime

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
from schemas.status import (
    BalanceView,
    CaseStatus,
    DisputeView,
    EventLine,
    NextAction,
    PauseView,
    PlanView,
    PromiseView,
    SettlementView,
    VisitView,
)
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
                since=state.paused.since,
                reason=state.paused.reason,
                operator=state.paused.operator,
                until=state.paused.until,
            )
            if state.paused is not None
            else None
        ),
        promise=_promise(state),
        plan=_plan(state),
        settlement=_settlement(state),
        dispute=(DisputeView(**state.dispute.model_dump()) if state.dispute is not None else None),
        visit=(
            VisitView(
                at=state.visit.at,
                collectors=list(state.visit.collectors),
                outcome=state.visit.outcome,
            )
            if state.visit is not None
            else None
        ),
        paused_total=state.paused_total,
        hard_stops=list(state.hard_stops),
        ceased=list(state.ceased),
        unreachable=state.unreachable,
        third_party_opt_outs=list(state.third_party_opt_outs),
        rules=state.rules,
        assignment=state.assignment,
        next_action=_next_action(state, now),
        counters=dict(state.counters),
        events=state.seq,
        last_events=[
            EventLine(seq=seq, type=e.type, at=e.at, actor=e.actor, summary=describe(e))
            for seq, e in state.recent
        ],
    )


def _promise(state: CaseState) -> PromiseView | None:
    p = state.promise
    if p is None:
        return None
    return PromiseView(
        amount=p.amount, pay_by=p.pay_by, hold_until=p.hold_until, paid=p.paid, kept=p.kept
    )


def _plan(state: CaseState) -> PlanView | None:
    p = state.plan
    if p is None:
        return None
    pending = p.next_deadline()
    return PlanView(
        instalments=list(p.instalments),
        paid=p.paid,
        next_due=p.instalments[pending[0]].due if pending is not None else None,
    )


def _settlement(state: CaseState) -> SettlementView | None:
    s = state.settlement
    if s is None:
        return None
    return SettlementView(
        amount=s.amount, pay_by=s.pay_by, paid=s.paid, waiver=s.waiver, supervisor=s.supervisor
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
        who = f" to contact {event.third_party}" if event.third_party is not None else ""
        return f"{event.channel} #{event.occurrence + 1}{who} in {event.stage}: {event.outcome}"
    if isinstance(event, ContactDeferred):
        detail = f" ({event.detail})" if event.detail else ""
        return (
            f"{event.channel} #{event.occurrence + 1} in {event.stage} deferred by "
            f"{event.rule}{detail} until {event.until:%Y-%m-%d %H:%M} UTC"
        )
    if isinstance(event, ContactSkipped):
        detail = f" ({event.detail})" if event.detail else ""
        what = f"{event.channel} #{event.occurrence + 1} in {event.stage}"
        return f"{what} skipped: {event.rule}{detail}"
    if isinstance(event, ContactCeased):
        return f"contact ceased ({event.channel}) by {event.operator}: {event.reason}"
    if isinstance(event, PolicyMigrated):
        return f"policy {event.previous} -> {event.policy.ref} by {event.operator}: {event.reason}"
    if isinstance(event, ThirdPartyOptedOut):
        return f"emergency contact {event.contact} opted out ({event.operator}): {event.reason}"
    if isinstance(event, HardStopped):
        return f"hard stop ({event.kind}) by {event.operator}: {event.reason}"
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
        waived = f", waived {event.waived}" if event.waived else ""
        by = f" by {event.operator}" if event.operator else ""
        return f"closed: {event.reason}{by}{waived}"
    if isinstance(event, PromiseMade):
        return f"promise of {event.amount} by {event.pay_by} ({event.operator})"
    if isinstance(event, PromiseKept):
        return f"promise kept: {event.paid} paid"
    if isinstance(event, PromiseEnded):
        return "promise ended: " + ("kept" if event.kept else f"broken, {event.paid} paid")
    if isinstance(event, PlanAgreed):
        return f"plan of {len(event.instalments)} instalments ({event.operator})"
    if isinstance(event, PlanBroken):
        return f"plan broken: instalment {event.missed_instalment} missed"
    if isinstance(event, SettlementAgreed):
        return f"settlement {event.amount} by {event.pay_by}, waiver {event.waiver}"
    if isinstance(event, SettlementLapsed):
        return "settlement lapsed"
    if isinstance(event, DisputeOpened):
        return f"dispute opened by {event.operator}: {event.reason}"
    if isinstance(event, DisputeResolved):
        return f"dispute resolved {event.outcome.replace('_', ' ')} by {event.operator}"
    if isinstance(event, VisitBooked):
        when = f"{event.visit_at:%Y-%m-%d %H:%M} UTC"
        return f"visit booked for {when}, {len(event.collectors)} collectors"
    if isinstance(event, VisitReported):
        return f"visit report: {event.outcome.replace('_', ' ')}"
    if isinstance(event, StageChanged):
        return f"moved to {event.stage} by {event.operator}: {event.reason}"
    if isinstance(event, AgreementRecorded):
        return f"{event.kind} agreement stored ({event.sha256[:12]}...)"
    return event.type
