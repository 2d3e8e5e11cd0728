"""The effectiveness report as data: what `dunning report --json` prints and
`GET /reports/effectiveness` answers. Each figure is defined in docs/reports.md.

Amounts are decimal strings in JSON (as everywhere in Dunning); rates, days and test
statistics are numbers, null where the figure has no denominator.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

CHAMPION = "champion"  # the arm of cases opened without a strategy, and of a strategy's champion
ALL_SEGMENTS = "all"  # the segment of cases opened without a strategy

FROZEN = ConfigDict(frozen=True)


class GroupKey(BaseModel):
    """Who a group's cases are: the strategy's assignment recorded at opening, the
    pinned policy, and the currency (amounts are never added across currencies)."""

    model_config = FROZEN

    strategy: str | None = Field(description="null: cases opened without a strategy")
    experiment: str | None
    segment: str
    arm: str
    policy: str = Field(description="NAME@VERSION pinned at opening")
    currency: str

    @property
    def unit(self) -> tuple[str | None, str | None, str, str]:
        """The arms compared with each other share this."""
        return (self.strategy, self.experiment, self.segment, self.currency)

    def label(self) -> str:
        parts = [p for p in (self.strategy, self.experiment) if p]
        parts += [self.segment, self.arm, self.policy, self.currency]
        return " / ".join(parts)


class StageFigures(BaseModel):
    model_config = FROZEN

    stage: str
    stage_index: int
    reached: int = Field(description="cases that were in this stage or a later one")
    entered: int = Field(description="cases that were in this stage (not skipped past it)")
    contacts: int
    calls: int
    right_party_contacts: int
    right_party_contact_rate: float | None
    recovered: Decimal = Field(description="paid while the case was in this stage")
    cured: int = Field(description="cases paid in full while in this stage")
    promises_made: int
    promises_kept: int
    promises_broken: int
    promise_kept_rate: float | None


class RollRates(BaseModel):
    """Counts of case-weeks from a stage (rows) to a stage or a closing reason (columns);
    rates are each count over its row's total."""

    model_config = FROZEN

    from_stages: list[str]
    to_states: list[str] = Field(description="stages, then closing reasons")
    closed_states: list[str] = Field(description="which of to_states are closing reasons")
    counts: list[list[int]]
    rates: list[list[float | None]]


class CurvePoint(BaseModel):
    model_config = FROZEN

    day: int = Field(description="policy days since opening")
    cases: int = Field(description="cases observed at least this many days")
    owed: Decimal = Field(description="what those cases owed at opening")
    recovered: Decimal = Field(description="what they paid within `day` days")
    recovery_rate: float | None


class GroupFigures(GroupKey):
    cases_opened: int
    cases_closed: dict[str, int] = Field(description="by closing reason")
    cases_open: int
    amount_at_opening: Decimal
    amount_recovered: Decimal
    recovery_rate: float | None
    cured: int
    cure_rate: float | None
    promises_made: int
    promises_kept: int
    promises_broken: int
    promise_kept_rate: float | None
    calls: int
    right_party_contacts: int
    right_party_contact_rate: float | None
    contacts: int
    contacts_by_channel: dict[str, int]
    contacts_per_1000_recovered: float | None
    days_to_cure_mean: float | None
    days_to_cure_median: float | None
    stages: list[StageFigures]
    roll_rates: RollRates
    recovery_curve: list[CurvePoint]

    @property
    def key(self) -> GroupKey:
        return GroupKey.model_validate(self.model_dump(include=set(GroupKey.model_fields)))


class MetricComparison(BaseModel):
    model_config = FROZEN

    metric: str
    champion: float | None
    challenger: float | None
    difference: float | None = Field(description="challenger minus champion")
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    test: str
    n_champion: int = Field(description="what the test counts: cases, calls or promises")
    n_challenger: int


class Comparison(BaseModel):
    model_config = FROZEN

    strategy: str | None
    experiment: str | None
    segment: str
    currency: str
    champion_arm: str
    champion_policy: str
    challenger_arm: str
    challenger_policy: str
    confidence: float
    metrics: list[MetricComparison]


class Report(BaseModel):
    model_config = FROZEN

    period_from: datetime = Field(description="cases opened at or after this instant")
    period_to: datetime = Field(description="... and before this one; events before it count")
    generated_at: datetime
    horizon_days: int = Field(description="recovery curves and roll rates look this far")
    week_days: int = Field(description="policy days in a roll-rate week")
    definitions: str = "docs/reports.md"
    groups: list[GroupFigures]
    comparisons: list[Comparison]
