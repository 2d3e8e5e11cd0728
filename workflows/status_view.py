"""The case status as operators see it, derived from the state. Pure; no personal data."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
from schemas.status import (
    ApprovalView,
    BalanceView,
    CaseStatus,
    DisputeView,
    EventLine,
    FailureView,
    InFlightView,
    NextAction,
    PauseView,
    PlanView,
    PromiseView,
    SettlementView,
    VisitView,
)
from workflows.decide import decide
from workflows.dispatch import ByEvent
from workflows.search import case_state_name
from workflows.state import CaseState


def case_status(
    state: CaseState,
    now: datetime,
    *,
    in_flight: InFlightView | None = None,
    audit_blocked: str | None = None,
) -> CaseStatus:
    """The status of `state` at `now`; the workflow adds what only it knows: the attempt
    in flight and whether the audit store refuses the case's events."""
    balance = state.balance
    stage = state.stage
    return CaseStatus(
        case_id=state.case_id,
        state=case_state_name(state, audit_blocked is not None),
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
        approvals=[
            ApprovalView(
                request=p.seq,
                kind=p.kind,
                requested_by=p.requested_by,
                expires_at=p.expires_at,
                command=p.command,
            )
            for p in state.approvals
        ],
        in_flight=in_flight,
        failures=[FailureView(**f.model_dump()) for f in state.failures],
        audit_blocked=audit_blocked,
        assignment=state.assignment,
        next_action=_next_action(state, now),
        counters=dict(state.counters),
        events=state.seq,
        last_events=event_lines(state.recent),
    )


def event_lines(events: list[tuple[int, Event]]) -> list[EventLine]:
    return [
        EventLine(seq=seq, type=e.type, at=e.at, actor=e.actor, summary=describe(e))
        for seq, e in events
    ]


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


# --- one line per event: a personal-data-free summary for timelines --------------------

Describe = Any  # Callable[[<the event type>], str]; typed per function below
DESCRIBE: ByEvent[Describe] = ByEvent("describe")


def describe(event: Event) -> str:
    """A one-line, personal-data-free summary of an event for timelines."""
    text: str = DESCRIBE[type(event)](event)
    return text


def _utc(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _what(event: ContactDeferred | ContactSkipped | ContactWithdrawn | ContactExpired) -> str:
    if event.agreement_seq is not None:
        return f"confirmation of agreement #{event.agreement_seq}"
    return f"{event.channel} #{event.occurrence + 1} in {event.stage}"


@DESCRIBE.on(CaseOpened)
def _opened(event: CaseOpened) -> str:
    loan = event.case.loan
    return f"opened at {loan.days_past_due} dpd, {loan.outstanding} {loan.currency}"


@DESCRIBE.on(RulesUpgraded)
def _upgraded(event: RulesUpgraded) -> str:
    return f"decision rules {event.previous} -> {event.rules}"


@DESCRIBE.on(StageEntered)
def _entered(event: StageEntered) -> str:
    skipped = f" (skipped {', '.join(event.skipped)})" if event.skipped else ""
    return f"entered {event.stage} at {event.days_past_due} dpd{skipped}"


@DESCRIBE.on(ContactAttempted)
def _attempted(event: ContactAttempted) -> str:
    if event.agreement_seq is not None:
        return (
            f"confirmation of agreement #{event.agreement_seq} by {event.channel}: {event.outcome}"
        )
    who = f" to contact {event.third_party}" if event.third_party is not None else ""
    return f"{event.channel} #{event.occurrence + 1}{who} in {event.stage}: {event.outcome}"


@DESCRIBE.on(ContactDeferred)
def _deferred(event: ContactDeferred) -> str:
    detail = f" ({event.detail})" if event.detail else ""
    return f"{_what(event)} deferred by {event.rule}{detail} until {_utc(event.until)}"


@DESCRIBE.on(ContactSkipped)
def _skipped(event: ContactSkipped) -> str:
    detail = f" ({event.detail})" if event.detail else ""
    return f"{_what(event)} skipped: {event.rule}{detail}"


@DESCRIBE.on(ContactWithdrawn)
def _withdrawn(event: ContactWithdrawn) -> str:
    return f"{_what(event)} withdrawn before delivery: {event.rule}"


@DESCRIBE.on(ContactExpired)
def _expired(event: ContactExpired) -> str:
    return f"{_what(event)} expired undelivered at {_utc(event.deadline)}; decided again later"


@DESCRIBE.on(ContactFailed)
def _failed(event: ContactFailed) -> str:
    what = (
        f"confirmation of agreement #{event.agreement_seq}"
        if event.agreement_seq is not None
        else f"{event.channel} #{event.occurrence + 1} in {event.stage}"
    )
    return f"{what} failed: {event.reason}"


@DESCRIBE.on(ContactCeased)
def _ceased(event: ContactCeased) -> str:
    return f"contact ceased ({event.channel}) by {event.operator}: {event.reason}"


@DESCRIBE.on(PolicyMigrated)
def _migrated(event: PolicyMigrated) -> str:
    return f"policy {event.previous} -> {event.policy.ref} by {event.operator}: {event.reason}"


@DESCRIBE.on(ThirdPartyOptedOut)
def _opted_out(event: ThirdPartyOptedOut) -> str:
    return f"emergency contact {event.contact} opted out ({event.operator}): {event.reason}"


@DESCRIBE.on(HardStopped)
def _hard_stopped(event: HardStopped) -> str:
    return f"hard stop ({event.kind}) by {event.operator}: {event.reason}"


@DESCRIBE.on(FieldVisitScheduled)
def _visit_requested(event: FieldVisitScheduled) -> str:
    return f"field visit requested in {event.stage}"


@DESCRIBE.on(HandedToLegal)
def _handed(event: HandedToLegal) -> str:
    return "handed to legal partner"


@DESCRIBE.on(PaymentReceived)
def _payment(event: PaymentReceived) -> str:
    return f"payment {event.amount} ref {event.reference}; balance {event.balance_after}"


@DESCRIBE.on(CollectionPaused)
def _paused(event: CollectionPaused) -> str:
    return f"paused by {event.operator}: {event.reason}"


@DESCRIBE.on(CollectionResumed)
def _resumed(event: CollectionResumed) -> str:
    return f"resumed by {event.operator}: {event.reason}"


@DESCRIBE.on(CaseClosed)
def _closed(event: CaseClosed) -> str:
    waived = f", waived {event.waived}" if event.waived else ""
    by = f" by {event.operator}" if event.operator else ""
    return f"closed: {event.reason}{by}{waived}"


@DESCRIBE.on(PromiseMade)
def _promise_made(event: PromiseMade) -> str:
    return f"promise of {event.amount} by {event.pay_by} ({event.operator})"


@DESCRIBE.on(PromiseKept)
def _promise_kept(event: PromiseKept) -> str:
    return f"promise kept: {event.paid} paid"


@DESCRIBE.on(PromiseEnded)
def _promise_ended(event: PromiseEnded) -> str:
    return "promise ended: " + ("kept" if event.kept else f"broken, {event.paid} paid")


@DESCRIBE.on(PlanAgreed)
def _plan_agreed(event: PlanAgreed) -> str:
    return f"plan of {len(event.instalments)} instalments ({event.operator})"


@DESCRIBE.on(PlanBroken)
def _plan_broken(event: PlanBroken) -> str:
    return f"plan broken: instalment {event.missed_instalment} missed"


@DESCRIBE.on(SettlementAgreed)
def _settlement_agreed(event: SettlementAgreed) -> str:
    return f"settlement {event.amount} by {event.pay_by}, waiver {event.waiver}"


@DESCRIBE.on(SettlementLapsed)
def _settlement_lapsed(event: SettlementLapsed) -> str:
    return "settlement lapsed"


@DESCRIBE.on(DisputeOpened)
def _dispute_opened(event: DisputeOpened) -> str:
    return f"dispute opened by {event.operator}: {event.reason}"


@DESCRIBE.on(DisputeResolved)
def _dispute_resolved(event: DisputeResolved) -> str:
    return f"dispute resolved {event.outcome.replace('_', ' ')} by {event.operator}"


@DESCRIBE.on(VisitBooked)
def _visit_booked(event: VisitBooked) -> str:
    return f"visit booked for {_utc(event.visit_at)}, {len(event.collectors)} collectors"


@DESCRIBE.on(VisitReported)
def _visit_reported(event: VisitReported) -> str:
    return f"visit report: {event.outcome.replace('_', ' ')}"


@DESCRIBE.on(StageChanged)
def _stage_changed(event: StageChanged) -> str:
    return f"moved to {event.stage} by {event.operator}: {event.reason}"


@DESCRIBE.on(AgreementRecorded)
def _agreement_recorded(event: AgreementRecorded) -> str:
    return f"{event.kind} agreement stored ({event.sha256[:12]}...)"


@DESCRIBE.on(ApprovalRequested)
def _approval_requested(event: ApprovalRequested) -> str:
    return (
        f"{event.kind.replace('_', ' ')} requested by {event.operator}, waiting for approval "
        f"until {_utc(event.expires_at)}"
    )


@DESCRIBE.on(ApprovalGranted)
def _approval_granted(event: ApprovalGranted) -> str:
    return f"request #{event.request} ({event.kind.replace('_', ' ')}) approved by {event.operator}"


@DESCRIBE.on(ApprovalDeclined)
def _approval_declined(event: ApprovalDeclined) -> str:
    return f"request #{event.request} ({event.kind.replace('_', ' ')}) declined by {event.operator}"


@DESCRIBE.on(ApprovalExpired)
def _approval_expired(event: ApprovalExpired) -> str:
    return f"request #{event.request} ({event.kind.replace('_', ' ')}) expired unapproved"


@DESCRIBE.on(TimelineEvent)
def _entry(event: TimelineEvent) -> str:
    return f"{event.type.replace('_', ' ')} by {event.operator}: {event.reason}"


DESCRIBE.check_complete()
