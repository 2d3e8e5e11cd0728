"""Inputs and results of activities: what crosses from the workflow to the outside world."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from schemas.case import Language
from schemas.channels import Channel
from schemas.events import AuditRecord

IO = ConfigDict(extra="forbid", frozen=True)


class CallTaskFacts(BaseModel):
    """What a call task of the collectors' queue carries besides the case: its team and
    the facts it is ordered by (schemas.call_tasks.PRIORITY). No personal data."""

    model_config = IO

    team: str
    stage_rank: int = Field(description="the stage's position in the policy, 0 first")
    balance: Decimal = Field(description="outstanding, in the loan's currency")
    currency: str
    promise_due: date | None = Field(
        default=None, description="the pay-by date of the case's last broken promise"
    )
    phone_index: int = Field(
        default=0, ge=0, description="which of the borrower's phones (never the number)"
    )
    expires_at: AwareDatetime = Field(
        description="the attempt's deadline: the end of the borrower's contact window"
    )


# The audit append activity's name: the workflow schedules it, the worker registers it,
# `dunning audit verify` finds its results in the history.
APPEND_AUDIT = "append_audit"
# The failures of an append the store refuses for good (non-retryable): raised by
# `append_audit` and by an outbound activity whose carried events are refused, and told
# apart by the workflow, which shows the case as blocked and sends nothing.
AUDIT_CONFLICT = "AuditConflict"
AUDIT_REFUSED = "AuditRefused"
AUDIT_FAILURES = frozenset({AUDIT_CONFLICT, AUDIT_REFUSED})


class AuditBatch(BaseModel):
    model_config = IO

    workflow_id: str
    run_id: str
    records: list[AuditRecord]


class AuditHead(BaseModel):
    """The last row of a case's log after an append: kept in the workflow's Temporal
    history as the activity's result, so `dunning audit verify` can tell rows removed
    from the end of the log, or a rewritten tail, from the log itself."""

    model_config = IO

    case_id: str
    seq: int
    hash: str


class AuditAppended(BaseModel):
    """What `append_audit` did: how many rows were new, and the head of each case."""

    model_config = IO

    new: int
    heads: list[AuditHead]


class OutboundRequest(BaseModel):
    """One provider call. `idempotency_key` is stable across retries of the activity."""

    model_config = IO

    case_id: str
    idempotency_key: str
    channel: Channel
    stage: str
    recipient: str = Field(
        description="the channel's address (schemas/channels.py): an E.164 phone for "
        "sms/call, the borrower id for the field agency and the legal partner"
    )
    language: Language
    template: str | None = None
    variables: dict[str, str] = Field(default_factory=dict)
    task: CallTaskFacts | None = Field(
        default=None,
        description="a channel a person performs (schemas/channels.py `person`)",
        exclude_if=lambda value: value is None,  # every other request: as before
    )
    audit: AuditBatch | None = Field(
        default=None,
        description="the events the case recorded since its last append: the activity "
        "writes them to the audit log before it asks the provider, so nothing is sent "
        'that the log does not hold (docs/architecture.md, "The delivery seam")',
        exclude_if=lambda value: value is None,  # attempts before the carried append
    )


class ProviderReceipt(BaseModel):
    model_config = IO

    provider_ref: str
    outcome: str
    duplicate: bool = Field(
        default=False, description="the provider had already seen this idempotency key"
    )
    document_sha256: str | None = Field(
        default=None,
        description="hex SHA-256 of the document handed to the partner (a letter's PDF)",
        exclude_if=lambda value: value is None,  # a receipt without one: as before
    )
    audit: AuditAppended | None = Field(
        default=None,
        description="what the append of the request's `audit` left: the case's head, "
        "an anchor of `dunning audit verify` like `append_audit`'s own result",
        exclude_if=lambda value: value is None,  # nothing carried
    )


class AgreementRequest(BaseModel):
    """Render, send and store an agreement (promise, plan or settlement) once."""

    model_config = IO

    case_id: str
    idempotency_key: str = Field(description="<case id>:agreement:<agreement_seq>")
    kind: Literal["promise", "plan", "settlement"]
    agreement_seq: int = Field(description="sequence number of the event that agreed it")
    recipient: str = Field(
        default="",
        description="rules 1-2: the E.164 phone the confirmation SMS goes to; since rules 3 "
        "the confirmation is a contact of its own and the store gets no phone",
    )
    language: Language
    variables: dict[str, str] = Field(
        default_factory=dict,
        description="name, loan_id, currency, amount, pay_by, balance, waiver, operator",
    )
    schedule: list[tuple[str, str]] = Field(
        default_factory=list, description="plan instalments as (due date, amount)"
    )


def agreement_reference(case_id: str, agreement_seq: int) -> str:
    """What the borrower quotes for an agreement: the loan id and the agreement's
    sequence number in the case (`L-1001-7`)."""
    return f"{case_id.removeprefix('case-')}-{agreement_seq}"


class AgreementReceipt(BaseModel):
    model_config = IO

    document_id: str
    sha256: str = Field(description="hex SHA-256 of the stored document body (UTF-8)")
    provider_ref: str = Field(default="", description="the confirmation SMS (rules 1-2)")
