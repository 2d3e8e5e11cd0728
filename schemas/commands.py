"""Messages sent to a case: payments and operator actions.

Every operator action names the operator and the reason; the workflow's update
validators check them against the case (a rejected action leaves no trace), these
models check their shape.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from schemas.money import PositiveAmount
from schemas.policy import Policy
from schemas.text import HumanText

COMMAND = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

Reason = Field(min_length=1, max_length=500)
OperatorId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@:-]+$")
MAX_INSTALMENTS = 36


class Payment(BaseModel):
    """A payment reported by a backend service; idempotent by `reference`."""

    model_config = COMMAND

    amount: PositiveAmount
    reference: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/-]+$")
    source: str = Field(default="backend", min_length=1, max_length=64)


class OperatorAction(BaseModel):
    """Who acts and why: recorded with every event an action produces."""

    model_config = COMMAND

    operator: str = OperatorId
    reason: HumanText = Reason


class Pause(OperatorAction):
    until: AwareDatetime | None = Field(
        default=None, description="resume by itself at this instant; open-ended if omitted"
    )


class Resume(OperatorAction):
    pass


CeaseChannel = Literal["sms", "call", "all"]
HardStopKind = Literal["bankruptcy", "deceased", "represented"]


class CeaseContact(OperatorAction):
    """The borrower's request to stop contact on a channel, or on every channel."""

    channel: CeaseChannel = "all"


class HardStop(OperatorAction):
    """Bankruptcy, death or legal representation: no collection contact any more."""

    kind: HardStopKind


class ThirdPartyOptOut(OperatorAction):
    """An emergency contact asked never to be contacted again: permanent."""

    contact: int = Field(ge=0, le=4, description="index in the borrower's emergency_contacts")


class MigratePolicy(OperatorAction):
    """Move an open case to another policy version: explicit, audited, never silent.
    The client loads the policy (`NAME@VERSION`); the case checks that it can apply."""

    policy: Policy


class PromiseToPay(OperatorAction):
    amount: PositiveAmount
    pay_by: date = Field(description="the borrower's local date by which they promise to pay")


class Instalment(BaseModel):
    model_config = COMMAND

    amount: PositiveAmount
    due: date


class RepaymentPlan(OperatorAction):
    instalments: tuple[Instalment, ...] = Field(min_length=1, max_length=MAX_INSTALMENTS)

    @model_validator(mode="after")
    def _increasing(self) -> RepaymentPlan:
        dues = [i.due for i in self.instalments]
        if dues != sorted(set(dues)):
            raise ValueError("instalments: due dates must be strictly increasing")
        return self

    @property
    def total(self) -> Decimal:
        return sum((i.amount for i in self.instalments), Decimal(0))


class Settlement(OperatorAction):
    amount: PositiveAmount = Field(description="what the borrower pays instead of the balance")
    pay_by: date
    supervisor: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@:-]+$"
    )


class DisputeOpen(OperatorAction):
    pass


class DisputeResolve(OperatorAction):
    outcome: Literal["for_borrower", "for_lender"]


class VisitBooking(OperatorAction):
    at: AwareDatetime = Field(description="the appointment agreed with the borrower")
    collectors: tuple[str, ...] = Field(min_length=2, max_length=6)

    @model_validator(mode="after")
    def _distinct(self) -> VisitBooking:
        if len({c.strip().lower() for c in self.collectors}) != len(self.collectors):
            raise ValueError("collectors: at least two different collectors")
        return self


class VisitReport(OperatorAction):
    outcome: Literal["met", "not_home", "refused", "promise"]


class WriteOff(OperatorAction):
    supervisor: str = OperatorId


def at_or_none(value: datetime | None) -> str:
    return value.isoformat() if value else "-"
