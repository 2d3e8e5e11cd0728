"""Messages sent to a case: payments and operator actions.

Each action is split into what a caller sends (`…Terms`: the body of an HTTP request,
the options of a CLI command, the fields of a console form) and who acts (`Acting`:
the operator, taken from the caller's token or `--operator`). A command inherits both,
terms first and `Acting` last in its bases, so its JSON keeps the field order it was
recorded with (`operator`, `reason`, then the terms): recorded histories hold
commands as JSON, and `tests/test_wire.py` compares them with committed samples.

Every text field is bounded and refuses control characters and invisible-only text:
commands become events, events are kept forever, and the audit store refuses some
characters (PostgreSQL's jsonb refuses `\\u0000`).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.money import PositiveAmount
from schemas.policy import Policy
from schemas.text import HumanText

COMMAND = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

PrincipalId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@:-]+$")]
"""An operator, supervisor, collector or service: ids, never names (no personal data)."""
ReasonText = Annotated[HumanText, Field(min_length=1, max_length=500)]
Reference = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/-]+$")]
PolicyRef = Annotated[str, Field(max_length=80, pattern=r"^[a-z0-9][a-z0-9_-]*@[0-9]+$")]
MAX_INSTALMENTS = 36
MAX_COLLECTORS = 6
MAX_EMERGENCY_CONTACT = 4  # schemas.case: at most 5 emergency contacts

CeaseChannel = Literal["sms", "call", "email", "letter", "all"]
HardStopKind = Literal["bankruptcy", "deceased", "represented"]
DisputeOutcome = Literal["for_borrower", "for_lender"]
VisitOutcome = Literal["met", "not_home", "refused", "promise"]


# --- who acts, and why -----------------------------------------------------------------


class Acting(BaseModel):
    """Who acts: recorded with every event an action produces."""

    model_config = COMMAND

    operator: PrincipalId


class Reasoned(BaseModel):
    """Why: every operator action carries a reason, kept in the case file."""

    model_config = COMMAND

    reason: ReasonText = Field(description="why: kept in the case file with who acted")


class OperatorAction(Reasoned, Acting):
    """An action with nothing more than who and why."""


# --- payments --------------------------------------------------------------------------


class PaymentTerms(BaseModel):
    """A payment as a caller reports it; counted once per `reference`."""

    model_config = COMMAND

    amount: PositiveAmount = Field(description="in the loan's currency, e.g. 100.00")
    reference: Reference = Field(description="the payment's reference; one counts once")


class Payment(PaymentTerms):
    """A payment reported by a backend service (`source`: its name)."""

    source: PrincipalId = "backend"


# --- holds -----------------------------------------------------------------------------


class PauseTerms(Reasoned):
    until: AwareDatetime | None = Field(
        default=None, description="resume by itself at this instant; open-ended if omitted"
    )


class Pause(PauseTerms, OperatorAction):
    pass


class Resume(OperatorAction):
    pass


class CeaseTerms(Reasoned):
    """The borrower's request to stop contact on a channel, or on every channel."""

    channel: CeaseChannel = Field(default="all", description="the channel to stop, or all")


class CeaseContact(CeaseTerms, OperatorAction):
    pass


class HardStopTerms(Reasoned):
    """Bankruptcy, death or legal representation: no collection contact any more."""

    kind: HardStopKind = Field(description="what stops collection for good")


class HardStop(HardStopTerms, OperatorAction):
    pass


class ThirdPartyOptOutTerms(Reasoned):
    """An emergency contact asked never to be contacted again: permanent."""

    contact: int = Field(
        ge=0, le=MAX_EMERGENCY_CONTACT, description="index in the borrower's emergency_contacts"
    )


class ThirdPartyOptOut(ThirdPartyOptOutTerms, OperatorAction):
    pass


class MigrateTerms(Reasoned):
    """Which policy version to move the case to; the caller loads it by name."""

    to: PolicyRef = Field(description="NAME@VERSION, loaded from the policy folders")


class MigratePolicy(OperatorAction):
    """Move an open case to another policy version: explicit, audited, never silent.
    The client loads the policy (`MigrateTerms.to`); the case checks that it can apply."""

    policy: Policy


# --- agreements ------------------------------------------------------------------------


class PromiseTerms(Reasoned):
    amount: PositiveAmount = Field(description="in the loan's currency, e.g. 300.00")
    pay_by: date = Field(description="the borrower's local date by which they promise to pay")


class PromiseToPay(PromiseTerms, OperatorAction):
    pass


class Instalment(BaseModel):
    model_config = COMMAND

    amount: PositiveAmount
    due: date


class PlanTerms(Reasoned):
    instalments: tuple[Instalment, ...] = Field(min_length=1, max_length=MAX_INSTALMENTS)

    @model_validator(mode="after")
    def _increasing(self) -> PlanTerms:
        dues = [i.due for i in self.instalments]
        if dues != sorted(set(dues)):
            raise ValueError("instalments: due dates must be strictly increasing")
        return self

    @property
    def total(self) -> Decimal:
        return sum((i.amount for i in self.instalments), Decimal(0))


class RepaymentPlan(PlanTerms, OperatorAction):
    pass


class SettlementTerms(Reasoned):
    amount: PositiveAmount = Field(description="what the borrower pays instead of the balance")
    pay_by: date = Field(description="the borrower's local date, YYYY-MM-DD")


class Settlement(SettlementTerms, OperatorAction):
    supervisor: PrincipalId | None = Field(
        default=None,
        description="cases on decision rules 1-2 only: the supervisor who approved a waiver "
        "past the policy's share in one step. Since rules 3 a supervisor approves with an "
        "action of their own (four eyes); naming one is refused",
    )


# --- disputes, visits, stages, closing -----------------------------------------------


class DisputeOpen(OperatorAction):
    pass


class DisputeResolveTerms(Reasoned):
    outcome: DisputeOutcome = Field(description="for_borrower cancels the debt (four eyes)")


class DisputeResolve(DisputeResolveTerms, OperatorAction):
    pass


class VisitBookingTerms(Reasoned):
    at: AwareDatetime = Field(description="the appointment agreed with the borrower")
    collectors: tuple[PrincipalId, ...] = Field(min_length=2, max_length=MAX_COLLECTORS)

    @model_validator(mode="after")
    def _distinct(self) -> VisitBookingTerms:
        if len({c.strip().lower() for c in self.collectors}) != len(self.collectors):
            raise ValueError("collectors: at least two different collectors")
        return self


class VisitBooking(VisitBookingTerms, OperatorAction):
    pass


class VisitReportTerms(Reasoned):
    outcome: VisitOutcome = Field(description="how the visit went")


class VisitReport(VisitReportTerms, OperatorAction):
    pass


class Escalate(OperatorAction):
    """Move the case up to the next stage now."""


class Deescalate(OperatorAction):
    """Move the case back to the previous stage."""


class Close(OperatorAction):
    """Close the case without a write-off."""


class WriteOff(OperatorAction):
    supervisor: PrincipalId | None = Field(
        default=None,
        description="cases on decision rules 1-2 only: the approving supervisor, in one "
        "step. Since rules 3 a write-off is requested here and approved by another "
        "principal (`Approve`); naming one is refused",
    )


class NoteTerms(Reasoned):
    """An entry in the case file: what was said or seen (the note is the `reason`)."""

    topic: Literal["call", "visit", "complaint", "hardship", "other"] = Field(
        default="other", description="what the note is about"
    )


class Note(NoteTerms, OperatorAction):
    pass


# --- four eyes -------------------------------------------------------------------------


class ApprovalTerms(Reasoned):
    request: int = Field(ge=1, description="sequence number of the approval request")


class Approve(ApprovalTerms, OperatorAction):
    """A supervisor, not the requester, approves a pending request (four eyes)."""


class Decline(ApprovalTerms, OperatorAction):
    """A supervisor declines a pending request; nothing of it is applied."""


def at_or_none(value: datetime | None) -> str:
    return value.isoformat() if value else "-"
