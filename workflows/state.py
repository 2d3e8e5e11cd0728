"""The case's state: the fold of its events. Carried across continue-as-new."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from schemas.case import CaseInput
from schemas.events import Event
from schemas.policy import Policy, Stage

RECENT_EVENTS = 10


class Balance(BaseModel):
    """Outstanding amounts; payments settle penalty, then fees, then interest, then principal."""

    model_config = ConfigDict(extra="forbid")

    principal: Decimal
    interest: Decimal
    fees: Decimal
    penalty: Decimal

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fees + self.penalty


class PauseInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: datetime
    reason: str
    operator: str


class CaseState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: str
    case: CaseInput
    policy: Policy
    opened_at: datetime
    seq: int = 0

    closed_reason: str | None = None
    closed_at: datetime | None = None

    stage_index: int = -1
    stage_offset: timedelta = timedelta(0)
    done: dict[int, int] = Field(
        default_factory=dict, description="occurrences handled per action of the current stage"
    )

    balance: Balance
    paid: Decimal = Decimal(0)
    overpaid: Decimal = Decimal(0)
    payment_refs: list[str] = Field(default_factory=list)

    paused: PauseInfo | None = None
    paused_total: timedelta = timedelta(0)

    handed_to_legal: bool = False
    counters: dict[str, int] = Field(default_factory=dict)
    recent: list[tuple[int, Event]] = Field(default_factory=list)

    @property
    def is_closed(self) -> bool:
        return self.closed_reason is not None

    @property
    def stage(self) -> Stage | None:
        return self.policy.stages[self.stage_index] if self.stage_index >= 0 else None

    @property
    def dpd_at_open(self) -> int:
        return self.case.loan.days_past_due

    def active_elapsed(self, now: datetime) -> timedelta:
        """Collection time since opening, excluding pauses: the clock escalation runs on."""
        elapsed = now - self.opened_at - self.paused_total
        if self.paused is not None:
            elapsed -= now - self.paused.since
        return max(elapsed, timedelta(0))

    def days_past_due(self, now: datetime) -> int:
        return self.dpd_at_open + self.active_elapsed(now) // self.policy.day_length

    def stage_start_offset(self, index: int) -> timedelta:
        """Active time after opening at which stage `index` starts (0 if already reached)."""
        days = self.policy.stages[index].from_dpd - self.dpd_at_open
        return max(days, 0) * self.policy.day_length
