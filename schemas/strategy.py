"""Strategy: which policy a case gets. Ordered segment rules over the case input, each
with a champion policy and optional challengers that take a share of the segment.

A strategy is data (a TOML file), like a policy, and is consulted once, when a case
opens; the case then pins the policy it got, so a new strategy version never moves an
open case. Assignment to an arm is deterministic: `bucket(experiment, loan_id)` maps
the SHA-256 of `"<experiment>:<loan id>"` to [0, 1), and the challengers take their
shares of that interval in order, the champion the rest. The same loan in the same
experiment always lands in the same arm, on every machine and in the simulator.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Annotated

import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from schemas.case import CaseInput, CountryCode, Language

FROZEN = ConfigDict(extra="forbid", frozen=True)
CHAMPION = "champion"

# Segment, experiment and arm names are search attribute values and CLI filters:
# short lower-case slugs, never personal data.
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}$"
Slug = Annotated[str, Field(pattern=SLUG_PATTERN)]
PolicyRef = Annotated[
    str, Field(min_length=1, max_length=80, pattern=r"^[a-z0-9][a-z0-9_-]*(@[0-9]+)?$")
]


def _not_champion(name: str) -> str:
    if name == CHAMPION:
        raise ValueError(f"{CHAMPION!r} is the name of the champion arm")
    return name


def bucket(experiment: str, loan_id: str) -> float:
    """Where a loan falls in an experiment: the first 8 bytes of the SHA-256 of
    `"<experiment>:<loan id>"` (UTF-8), big-endian, over 2**64. Uniform on [0, 1);
    neither name can contain `:`, so different pairs never hash the same text."""
    digest = hashlib.sha256(f"{experiment}:{loan_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class AmountBand(BaseModel):
    """[min, max) of the outstanding balance at opening, in the loan's currency."""

    model_config = FROZEN

    min: Decimal | None = Field(default=None, ge=0)
    max: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> AmountBand:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError("min must be below max")
        return self

    def contains(self, value: Decimal) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value < self.max)


class IntBand(BaseModel):
    """[min, max) of a whole number: days past due at opening, or a risk score."""

    model_config = FROZEN

    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> IntBand:
        if self.min is None and self.max is None:
            raise ValueError("give min, max or both")
        if self.min is not None and self.max is not None and self.min >= self.max:
            raise ValueError("min must be below max")
        return self

    def contains(self, value: int) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value < self.max)


class Conditions(BaseModel):
    """What a case must be for a rule to apply; every condition given must hold. A
    condition on a field the case does not carry (no `risk_score`, no `segment`) fails."""

    model_config = FROZEN

    product: tuple[str, ...] | None = Field(default=None, min_length=1)
    currency: tuple[str, ...] | None = Field(default=None, min_length=1)
    amount: AmountBand | None = Field(
        default=None, description="outstanding balance at opening, [min, max)"
    )
    days_past_due: IntBand | None = Field(default=None, description="at opening, [min, max)")
    country: tuple[CountryCode, ...] | None = Field(
        default=None,
        min_length=1,
        description="the borrower's country, or else the country of their first phone number",
    )
    language: tuple[Language, ...] | None = Field(default=None, min_length=1)
    risk_score: IntBand | None = Field(default=None, description="[min, max) of 0..1000")
    segment: tuple[Slug, ...] | None = Field(
        default=None, min_length=1, description="the segment the backend sent with the case"
    )

    @property
    def empty(self) -> bool:
        return all(value is None for value in self.__dict__.values())

    def matches(self, case: CaseInput) -> bool:
        loan, borrower = case.loan, case.borrower
        if self.product is not None and loan.product not in self.product:
            return False
        if self.currency is not None and loan.currency not in self.currency:
            return False
        if self.amount is not None and not self.amount.contains(loan.outstanding):
            return False
        if self.days_past_due is not None and not self.days_past_due.contains(loan.days_past_due):
            return False
        if self.country is not None and borrower_country(case) not in self.country:
            return False
        if self.language is not None and borrower.language not in self.language:
            return False
        if self.risk_score is not None and (
            case.risk_score is None or not self.risk_score.contains(case.risk_score)
        ):
            return False
        return self.segment is None or case.segment in self.segment


def borrower_country(case: CaseInput) -> str | None:
    """The borrower's country as sent, or else the region of their first phone number
    (phones are stored in E.164, so it is always known)."""
    if case.borrower.country is not None:
        return case.borrower.country
    region: str | None = phonenumbers.region_code_for_number(
        phonenumbers.parse(case.borrower.phones[0])
    )
    return region


class Challenger(BaseModel):
    """A policy tried on a share of a segment against the champion."""

    model_config = FROZEN

    name: Annotated[Slug, AfterValidator(_not_champion)] | None = Field(
        default=None, description="the arm's name; default: the policy with '@' as '-'"
    )
    policy: PolicyRef
    share: float = Field(gt=0, lt=1, description="share of the segment's cases, 0..1")

    @property
    def arm(self) -> str:
        return self.name if self.name is not None else self.policy.replace("@", "-")


class SegmentRule(BaseModel):
    """One segment: the cases it takes, its champion policy and its challengers."""

    model_config = FROZEN

    segment: Slug = Field(description="the segment's name, recorded on every case it takes")
    when: Conditions = Field(
        default_factory=Conditions, description="no conditions: the catch-all, last"
    )
    policy: PolicyRef = Field(description="the champion: NAME (current version) or NAME@VERSION")
    experiment: Slug | None = Field(
        default=None, description="the experiment's name: what the arm assignment hashes"
    )
    challengers: tuple[Challenger, ...] = ()

    @model_validator(mode="after")
    def _arms(self) -> SegmentRule:
        if self.challengers and self.experiment is None:
            raise ValueError("experiment: a rule with challengers must name its experiment")
        arms = [c.arm for c in self.challengers]
        if len(set(arms)) != len(arms):
            raise ValueError("challengers: arm names must be unique (give each a name)")
        total = sum(c.share for c in self.challengers)
        if total >= 1:
            raise ValueError(
                f"challengers: shares add up to {total:g}; they must leave the champion a share"
            )
        return self

    def arm_for(self, loan_id: str) -> tuple[str, str]:
        """(arm, policy ref as written) for a loan: challengers take their shares of the
        bucket in order, the champion the rest."""
        if self.experiment is None or not self.challengers:
            return CHAMPION, self.policy
        point = bucket(self.experiment, loan_id)
        edge = 0.0
        for challenger in self.challengers:
            edge += challenger.share
            if point < edge:
                return challenger.arm, challenger.policy
        return CHAMPION, self.policy


class Strategy(BaseModel):
    """A named, versioned strategy: ordered segment rules, the last a catch-all."""

    model_config = FROZEN

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=60)
    version: int = Field(ge=1)
    description: str = ""
    rules: tuple[SegmentRule, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _rules(self) -> Strategy:
        names = [rule.segment for rule in self.rules]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise ValueError(f"rules.{index}.segment: {name!r} is already a segment")
        for index, rule in enumerate(self.rules[:-1]):
            if rule.when.empty:
                raise ValueError(
                    f"rules.{index}.when: only the last rule may be the catch-all "
                    "(the rules after it could never apply)"
                )
        if not self.rules[-1].when.empty:
            last = len(self.rules) - 1
            raise ValueError(
                f"rules.{last}.when: the last rule must be a catch-all (no conditions), "
                "so that every case gets a policy"
            )
        return self

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def rule_for(self, case: CaseInput) -> SegmentRule:
        """The first rule whose conditions the case meets (the catch-all at worst)."""
        for rule in self.rules:
            if rule.when.matches(case):
                return rule
        raise AssertionError("a strategy always ends with a catch-all")  # pragma: no cover


class Assignment(BaseModel):
    """How a strategy placed a case, recorded in `CaseOpened` and as search attributes."""

    model_config = FROZEN

    strategy: str = Field(description="NAME@VERSION of the strategy")
    segment: Slug
    experiment: Slug | None = None
    arm: Slug = Field(description=f"{CHAMPION!r} or the challenger's name")
    policy: str = Field(description="NAME@VERSION of the policy the case got")
