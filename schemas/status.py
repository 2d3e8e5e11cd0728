"""What a case looks like from outside: the `status` query and `dunning status`.

No personal data: a status is shown in terminals and dashboards.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.commands import Instalment
from schemas.strategy import Assignment

CaseStateName = Literal["open", "paused", "closed"]


class BalanceView(BaseModel):
    model_config = ConfigDict(frozen=True)

    currency: str
    principal: Decimal
    interest: Decimal
    fees: Decimal
    penalty: Decimal
    total: Decimal
    paid: Decimal
    overpaid: Decimal


class PauseView(BaseModel):
    model_config = ConfigDict(frozen=True)

    since: datetime
    reason: str
    operator: str
    until: datetime | None = None


class PromiseView(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: Decimal
    pay_by: date
    hold_until: datetime
    paid: Decimal
    kept: bool


class PlanView(BaseModel):
    model_config = ConfigDict(frozen=True)

    instalments: list[Instalment]
    paid: Decimal
    next_due: date | None


class SettlementView(BaseModel):
    model_config = ConfigDict(frozen=True)

    amount: Decimal
    pay_by: date
    paid: Decimal
    waiver: Decimal
    supervisor: str | None


class DisputeView(BaseModel):
    model_config = ConfigDict(frozen=True)

    since: datetime
    operator: str
    reason: str


class VisitView(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    collectors: list[str]
    outcome: str | None


class NextAction(BaseModel):
    model_config = ConfigDict(frozen=True)

    what: str
    at: datetime | None


class EventLine(BaseModel):
    model_config = ConfigDict(frozen=True)

    seq: int
    type: str
    at: datetime
    actor: str
    summary: str


class CaseStatus(BaseModel):
    model_config = ConfigDict(frozen=True)

    case_id: str
    state: CaseStateName
    closed_reason: str | None
    stage: str | None
    days_past_due: int
    policy: str
    opened_at: datetime
    balance: BalanceView
    paused: PauseView | None
    promise: PromiseView | None = None
    plan: PlanView | None = None
    settlement: SettlementView | None = None
    dispute: DisputeView | None = None
    visit: VisitView | None = None
    paused_total: timedelta
    hard_stops: list[str] = []
    ceased: list[str] = []
    unreachable: bool = Field(
        default=False,
        description="3 consecutive calls without a conversation, or every number invalid",
    )
    third_party_opt_outs: list[int] = []
    rules: int = 1
    assignment: Assignment | None = Field(
        default=None, description="strategy, segment, experiment and arm the case opened under"
    )
    next_action: NextAction | None
    counters: dict[str, int]
    events: int
    last_events: list[EventLine]
