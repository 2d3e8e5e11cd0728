"""Domain events: the only way a case changes, and the rows of its audit log.

A case's state is the fold of its events with `workflows.evolve.evolve`; the
workflow and the auditor fold the same events with the same function.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from schemas.case import CaseInput
from schemas.channels import Channel
from schemas.commands import CeaseChannel, DisputeOutcome, HardStopKind, Instalment, VisitOutcome
from schemas.policy import Policy
from schemas.strategy import Assignment

SYSTEM = "system"


class EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: AwareDatetime
    actor: str = Field(default=SYSTEM, description="system, operator:<id> or service:<name>")


class CaseOpened(EventBase):
    type: Literal["case_opened"] = "case_opened"
    case: CaseInput
    policy: Policy
    rules: int = Field(
        default=1,
        ge=1,
        description="version of the decision rules the case runs under, pinned at opening: "
        "1 = window only (cases opened before the compliance guard), 2 = compliance guard",
    )
    assignment: Assignment | None = Field(
        default=None,
        description="how the active strategy placed the case (segment, experiment, arm); "
        "None when the case named its own policy, and in cases opened before strategies",
    )


class StageEntered(EventBase):
    type: Literal["stage_entered"] = "stage_entered"
    stage: str
    stage_index: int
    days_past_due: int
    active_offset: timedelta = Field(
        description="collection time (excluding pauses) since opening at which the stage began; "
        "the stage's cadence counts from here"
    )
    skipped: tuple[str, ...] = ()


class ContactAttempted(EventBase):
    """An SMS or call handed to the provider (phone by index: no personal data here)."""

    type: Literal["contact_attempted"] = "contact_attempted"
    channel: Channel
    stage: str
    action_index: int
    occurrence: int
    phone_index: int = 0
    third_party: int | None = Field(
        default=None, description="third_party_sms: index of the emergency contact messaged"
    )
    template: str | None = None
    idempotency_key: str
    provider_ref: str
    outcome: str
    agreement_seq: int | None = Field(
        default=None, description="an agreement's confirmation: the agreement's seq"
    )
    document_sha256: str | None = Field(
        default=None,
        description="hex SHA-256 of the document the partner was handed (a letter's PDF)",
        # Left out when there is none: an event without a document keeps the exact
        # shape it had before the field (audit rows compared on a retried append,
        # workers of the previous release parsing it).
        exclude_if=lambda value: value is None,
    )


class ContactDeferred(EventBase):
    """A due contact waits for the next allowed opening (window, quiet day)."""

    type: Literal["contact_deferred"] = "contact_deferred"
    rule: str
    detail: str = ""
    until: AwareDatetime
    channel: Channel
    stage: str
    action_index: int
    occurrence: int
    agreement_seq: int | None = None


class ContactSkipped(EventBase):
    """A due contact the rules forbid (a cap, a hard stop, a cease): not sent; the cadence
    goes on with the next occurrence."""

    type: Literal["contact_skipped"] = "contact_skipped"
    rule: str
    detail: str = ""
    channel: Channel
    stage: str
    action_index: int
    occurrence: int
    agreement_seq: int | None = None


class AttemptOutcome(EventBase):
    """What became of an attempt that was not delivered (rules 3, the delivery seam)."""

    channel: Channel
    stage: str
    action_index: int
    occurrence: int
    idempotency_key: str
    agreement_seq: int | None = None


class ContactWithdrawn(AttemptOutcome):
    """The case no longer allowed the attempt while it was in flight (a pause, a stop, a
    payment, ...) and the provider had not accepted it: cancelled, not sent. `rule`
    names what withdrew it. The occurrence is decided again later."""

    type: Literal["contact_withdrawn"] = "contact_withdrawn"
    rule: str
    detail: str = ""


class ContactExpired(AttemptOutcome):
    """The attempt was still undelivered (the provider failing) when the borrower's
    contact window closed: it stopped there, and is decided again at the next opening."""

    type: Literal["contact_expired"] = "contact_expired"
    deadline: AwareDatetime
    retry_at: AwareDatetime = Field(description="decided again then: the next opening")


class ContactFailed(AttemptOutcome):
    """The provider refused the attempt for good (a 4xx, a template that does not render,
    a recipient refused): recorded with its reason; the case goes on under its policy."""

    type: Literal["contact_failed"] = "contact_failed"
    reason: str = Field(max_length=500, description="the provider's answer; no personal data")


class RulesUpgraded(EventBase):
    """The case moved to newer decision rules the first time a worker ran it live after
    the upgrade (see "Determinism" in docs/architecture.md)."""

    type: Literal["rules_upgraded"] = "rules_upgraded"
    previous: int
    rules: int


class FieldVisitScheduled(EventBase):
    type: Literal["field_visit_scheduled"] = "field_visit_scheduled"
    stage: str
    action_index: int
    occurrence: int
    idempotency_key: str
    provider_ref: str


class HandedToLegal(EventBase):
    type: Literal["handed_to_legal"] = "handed_to_legal"
    stage: str
    action_index: int
    idempotency_key: str
    provider_ref: str


class PaymentReceived(EventBase):
    type: Literal["payment_received"] = "payment_received"
    amount: Decimal
    reference: str
    applied_penalty: Decimal
    applied_fees: Decimal
    applied_interest: Decimal
    applied_principal: Decimal
    overpaid: Decimal
    balance_after: Decimal


class CollectionPaused(EventBase):
    type: Literal["collection_paused"] = "collection_paused"
    reason: str
    operator: str
    until: AwareDatetime | None = Field(default=None, description="resumes by itself then")


class CollectionResumed(EventBase):
    type: Literal["collection_resumed"] = "collection_resumed"
    reason: str
    operator: str
    paused_for: timedelta


class OperatorEvent(EventBase):
    """An event an operator caused: who, and why."""

    operator: str
    reason: str


class TimelineEvent(OperatorEvent):
    """An operator's entry in the case file that changes nothing else about the case.
    `evolve` and the timeline handle every subclass alike (workflows/dispatch.py), so
    a new kind of entry is its event class and nothing more."""

    type: str  # each kind narrows it to its Literal


class PromiseMade(OperatorEvent):
    type: Literal["promise_made"] = "promise_made"
    amount: Decimal
    pay_by: date
    hold_until: AwareDatetime = Field(
        description="end of the grace after pay_by, borrower's local midnight: contact is "
        "suppressed until then, and an unkept promise breaks then"
    )


class PromiseKept(EventBase):
    type: Literal["promise_kept"] = "promise_kept"
    paid: Decimal


class PromiseEnded(EventBase):
    """The promise's hold is over: kept (collection goes on if anything is owed) or broken."""

    type: Literal["promise_ended"] = "promise_ended"
    kept: bool
    paid: Decimal


class PlanAgreed(OperatorEvent):
    type: Literal["plan_agreed"] = "plan_agreed"
    instalments: tuple[Instalment, ...]
    deadlines: tuple[AwareDatetime, ...] = Field(
        description="per instalment: end of its grace, borrower's local midnight"
    )


class PlanBroken(EventBase):
    type: Literal["plan_broken"] = "plan_broken"
    missed_instalment: int = Field(description="1-based")
    required: Decimal
    paid: Decimal


class SettlementAgreed(OperatorEvent):
    type: Literal["settlement_agreed"] = "settlement_agreed"
    amount: Decimal
    pay_by: date
    deadline: AwareDatetime
    waiver: Decimal = Field(description="what is forgiven if the amount is paid in time")
    supervisor: str | None = None


class SettlementLapsed(EventBase):
    type: Literal["settlement_lapsed"] = "settlement_lapsed"
    paid: Decimal


class DisputeOpened(OperatorEvent):
    type: Literal["dispute_opened"] = "dispute_opened"


class DisputeResolved(OperatorEvent):
    type: Literal["dispute_resolved"] = "dispute_resolved"
    outcome: DisputeOutcome


class ContactCeased(OperatorEvent):
    """The borrower asked not to be contacted on a channel, or at all. Permanent."""

    type: Literal["contact_ceased"] = "contact_ceased"
    channel: CeaseChannel


class ThirdPartyOptedOut(OperatorEvent):
    """An emergency contact asked not to be contacted again. Permanent."""

    type: Literal["third_party_opted_out"] = "third_party_opted_out"
    contact: int


class PolicyMigrated(OperatorEvent):
    """An operator moved the case to another policy version; the whole policy is pinned
    here as at opening, so the audit log alone says which rules applied when."""

    type: Literal["policy_migrated"] = "policy_migrated"
    previous: str = Field(description="NAME@VERSION the case ran under until now")
    policy: Policy
    stage: str
    stage_index: int


class HardStopped(OperatorEvent):
    """No collection contact from now on; a resume does not lift it."""

    type: Literal["hard_stopped"] = "hard_stopped"
    kind: HardStopKind


class VisitBooked(OperatorEvent):
    type: Literal["visit_booked"] = "visit_booked"
    visit_at: AwareDatetime
    collectors: tuple[str, ...]


class VisitReported(OperatorEvent):
    type: Literal["visit_reported"] = "visit_reported"
    outcome: VisitOutcome


class StageChanged(OperatorEvent):
    """An operator moved the case a stage up or down; the escalation clock moves with it."""

    type: Literal["stage_changed"] = "stage_changed"
    stage: str
    stage_index: int
    active_offset: timedelta
    shift: timedelta = Field(description="added to the escalation clock")


class AgreementRecorded(EventBase):
    """The agreement document was rendered, sent to the borrower and stored with its hash."""

    type: Literal["agreement_recorded"] = "agreement_recorded"
    kind: Literal["promise", "plan", "settlement"]
    agreement_seq: int = Field(description="sequence number of the event that agreed it")
    document_id: str
    sha256: str
    provider_ref: str = Field(
        default="",
        description="rules 1-2: the confirmation SMS, sent with the document; since rules 3 "
        "the confirmation is a contact of its own, through the guard",
    )


class NoteRecorded(TimelineEvent):
    """An operator's note in the case file (a call's summary, a complaint)."""

    type: Literal["note_recorded"] = "note_recorded"
    topic: str


ApprovalKind = Literal["write_off", "settlement", "dispute_for_borrower"]


class ApprovalRequested(OperatorEvent):
    """Four eyes: an action that needs a second principal, held until approved, declined
    or expired. `command` is the action as requested (its JSON)."""

    type: Literal["approval_requested"] = "approval_requested"
    kind: ApprovalKind
    command: dict[str, Any]
    expires_at: AwareDatetime


class ApprovalGranted(OperatorEvent):
    type: Literal["approval_granted"] = "approval_granted"
    request: int = Field(description="seq of the approval_requested event")
    kind: ApprovalKind


class ApprovalDeclined(OperatorEvent):
    type: Literal["approval_declined"] = "approval_declined"
    request: int
    kind: ApprovalKind


class ApprovalExpired(EventBase):
    type: Literal["approval_expired"] = "approval_expired"
    request: int
    kind: ApprovalKind


CloseReason = Literal[
    "paid", "settled", "transferred_to_legal", "cancelled", "written_off", "closed"
]


class CaseClosed(EventBase):
    type: Literal["case_closed"] = "case_closed"
    reason: CloseReason
    waived: Decimal = Decimal(0)
    operator: str | None = None
    note: str | None = None


Event = Annotated[
    CaseOpened
    | StageEntered
    | ContactAttempted
    | ContactDeferred
    | ContactSkipped
    | ContactWithdrawn
    | ContactExpired
    | ContactFailed
    | RulesUpgraded
    | FieldVisitScheduled
    | HandedToLegal
    | PaymentReceived
    | CollectionPaused
    | CollectionResumed
    | PromiseMade
    | PromiseKept
    | PromiseEnded
    | PlanAgreed
    | PlanBroken
    | SettlementAgreed
    | SettlementLapsed
    | DisputeOpened
    | DisputeResolved
    | ContactCeased
    | ThirdPartyOptedOut
    | PolicyMigrated
    | HardStopped
    | VisitBooked
    | VisitReported
    | StageChanged
    | AgreementRecorded
    | ApprovalRequested
    | ApprovalGranted
    | ApprovalDeclined
    | ApprovalExpired
    | NoteRecorded
    | CaseClosed,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


class AuditRecord(BaseModel):
    """One event with its place in the case's sequence, as appended to the audit log."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    case_id: str
    seq: int = Field(ge=1)
    event: Event


def utc(moment: datetime) -> datetime:
    """Reject naive datetimes early: every time in the system is aware."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime")
    return moment
