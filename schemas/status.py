"""What a case looks like from outside: the `status` query and `dunning status`.

No personal data: a status is shown in terminals and dashboards.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict

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
    paused_total: timedelta
    next_action: NextAction | None
    counters: dict[str, int]
    events: int
    last_events: list[EventLine]
