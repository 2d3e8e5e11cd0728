"""Domain events: the only way a case changes, and the rows of its audit log.

A case's state is the fold of its events with `workflows.evolve.evolve`; the
workflow and the auditor fold the same events with the same function.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from schemas.case import CaseInput
from schemas.policy import Channel, Policy

SYSTEM = "system"


class EventBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: AwareDatetime
    actor: str = Field(default=SYSTEM, description="system, operator:<id> or service:<name>")


class CaseOpened(EventBase):
    type: Literal["case_opened"] = "case_opened"
    case: CaseInput
    policy: Policy


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
    template: str | None = None
    idempotency_key: str
    provider_ref: str
    outcome: str


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


class CollectionResumed(EventBase):
    type: Literal["collection_resumed"] = "collection_resumed"
    reason: str
    operator: str
    paused_for: timedelta


CloseReason = Literal["paid", "transferred_to_legal"]


class CaseClosed(EventBase):
    type: Literal["case_closed"] = "case_closed"
    reason: CloseReason


Event = Annotated[
    CaseOpened
    | StageEntered
    | ContactAttempted
    | FieldVisitScheduled
    | HandedToLegal
    | PaymentReceived
    | CollectionPaused
    | CollectionResumed
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
