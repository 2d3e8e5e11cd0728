"""The borrower-response model: how borrowers answer contacts, as data.

A TOML or JSON file, validated like a policy: per segment (the strategy's segment of
the case), stage and channel, the probability that a contact reaches the borrower
(an SMS read, a call answered, a visit met) and, when it does, that they promise to
pay, pay everything, pay part, or dispute; the probability that a promise is kept;
and what each contact costs. Rules are tried in order; the first whose segment,
stage and channel match (`*` matches anything) applies; a contact no rule matches
goes unanswered.

Times are in policy days (hours are 1/24 of one): an accelerated policy, whose day
lasts seconds, sees its borrowers answer as fast in its own days.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from dunning.datafiles import describe, read_toml
from schemas.channels import Channel

SHIPPED = Path(__file__).parent
FROZEN = ConfigDict(extra="forbid", frozen=True)
Probability = Annotated[float, Field(ge=0, le=1)]
ANY = "*"
RESPONDING_CHANNELS: tuple[Channel, ...] = (
    "sms",
    "call",
    "agent_call",
    "third_party_sms",
    "field_visit",
)


class ResponseModelError(ValueError):
    """A response model that cannot be read or is invalid; names file and field."""


class Response(BaseModel):
    """How borrowers of a segment answer one kind of contact."""

    model_config = FROZEN

    segment: str = Field(default=ANY, pattern=r"^(\*|[a-z0-9][a-z0-9_-]{0,39})$")
    stage: str = Field(default=ANY, pattern=r"^(\*|[a-z][a-z0-9_]{0,39})$")
    channel: Literal["*", "sms", "call", "agent_call", "third_party_sms", "field_visit"] = "*"
    answer: Probability = Field(
        description="the contact reaches the borrower: an SMS read, a call answered (the "
        "dialer reports `answered`), a visit met, a third party's message passed on"
    )
    promise: Probability = Field(default=0, description="once reached: promises the balance")
    keep: Probability = Field(default=0, description="a promise is kept: paid by its date")
    pay_full: Probability = Field(default=0, description="once reached: pays the balance")
    pay_part: Probability = Field(default=0, description="once reached: pays `part_share`")
    part_share: float = Field(default=0.3, gt=0, lt=1, description="share a part payment pays")
    dispute: Probability = Field(default=0, description="once reached: disputes the debt")

    @model_validator(mode="after")
    def _one_response(self) -> Response:
        total = self.promise + self.pay_full + self.pay_part + self.dispute
        if total > 1 + 1e-9:
            raise ValueError(
                f"promise + pay_full + pay_part + dispute is {total:g}: a reached borrower "
                "gives at most one response, so they must add up to 1 or less"
            )
        return self

    def matches(self, segment: str, stage: str, channel: str) -> bool:
        return (
            self.segment in (ANY, segment)
            and self.stage in (ANY, stage)
            and self.channel in (ANY, channel)
        )


class Costs(BaseModel):
    """What one contact costs, in the portfolio's currency."""

    model_config = FROZEN

    sms: float = Field(default=0.05, ge=0)
    call: float = Field(default=0.5, ge=0)
    agent_call: float = Field(default=2.0, ge=0, description="a collector's call (a task)")
    third_party_sms: float = Field(default=0.05, ge=0)
    field_visit: float = Field(default=30.0, ge=0)
    legal_handoff: float = Field(default=200.0, ge=0)
    agreement: float = Field(default=0.05, ge=0, description="an agreement's confirmation SMS")

    def of(self, channel: str) -> float:
        value: float = getattr(self, channel)
        return value


SILENT = Response(answer=0)


class ResponseModel(BaseModel):
    """A named borrower-response model."""

    model_config = FROZEN

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=60)
    version: int = Field(default=1, ge=1)
    description: str = ""
    respond_after_hours: float = Field(
        default=2, gt=0, le=240, description="a reached borrower's response comes this late"
    )
    promise_days: int = Field(
        default=7,
        ge=0,
        le=365,
        description="a promise is for the borrower's date of the response plus this many "
        "days; a kept promise is paid this many days after the response",
    )
    dispute_days: int = Field(
        default=14, ge=1, le=365, description="a dispute is resolved this many days after"
    )
    dispute_for_borrower: Probability = Field(
        default=0.2, description="a dispute is resolved for the borrower (the debt cancelled)"
    )
    costs: Costs = Costs()
    responses: tuple[Response, ...] = Field(min_length=1)
    _found: dict[tuple[str, str, str], Response] = PrivateAttr(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def response(self, segment: str, stage: str, channel: str) -> Response:
        """The first rule for this segment, stage and channel; none: the borrower is silent."""
        key = (segment, stage, channel)
        found = self._found.get(key)
        if found is None:
            found = next((r for r in self.responses if r.matches(*key)), SILENT)
            self._found[key] = found
        return found


def load_file(path: Path) -> ResponseModel:
    """A model from a .toml or .json file; errors name the file, the field and the problem."""
    if path.suffix.lower() != ".json":
        return read_toml(path, ResponseModel, ResponseModelError)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ResponseModelError(f"{path}: {exc}") from exc
    try:
        return ResponseModel.model_validate(data)
    except ValidationError as exc:
        raise ResponseModelError(f"{path}: {describe(exc)}") from exc


def load(name_or_path: str) -> ResponseModel:
    """A shipped model by name (`baseline`) or a file."""
    path = Path(name_or_path)
    if path.suffix.lower() in (".toml", ".json") or path.exists():
        return load_file(path)
    shipped = SHIPPED / f"{name_or_path}.toml"
    if shipped.is_file():
        return load_file(shipped)
    raise ResponseModelError(f"no response model named {name_or_path!r} and no such file")
