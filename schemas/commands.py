"""Messages sent to a case: payments and operator actions."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.money import PositiveAmount

COMMAND = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

Reason = Field(min_length=1, max_length=500)
OperatorId = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")


class Payment(BaseModel):
    """A payment reported by a backend service; idempotent by `reference`."""

    model_config = COMMAND

    amount: PositiveAmount
    reference: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:/-]+$")
    source: str = Field(default="backend", min_length=1, max_length=64)


class Pause(BaseModel):
    model_config = COMMAND

    reason: str = Reason
    operator: str = OperatorId


class Resume(BaseModel):
    model_config = COMMAND

    reason: str = Reason
    operator: str = OperatorId
