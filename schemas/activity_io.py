"""Inputs and results of activities: what crosses from the workflow to the outside world."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.case import Language
from schemas.events import AuditRecord
from schemas.policy import Channel

IO = ConfigDict(extra="forbid", frozen=True)


class OutboundRequest(BaseModel):
    """One provider call. `idempotency_key` is stable across retries of the activity."""

    model_config = IO

    case_id: str
    idempotency_key: str
    channel: Channel
    stage: str
    recipient: str = Field(description="E.164 phone for sms/call; borrower id otherwise")
    language: Language
    template: str | None = None
    variables: dict[str, str] = Field(default_factory=dict)


class ProviderReceipt(BaseModel):
    model_config = IO

    provider_ref: str
    outcome: str
    duplicate: bool = Field(
        default=False, description="the provider had already seen this idempotency key"
    )


class AuditBatch(BaseModel):
    model_config = IO

    workflow_id: str
    run_id: str
    records: list[AuditRecord]
