"""What a case looks like from outside: the `status` query and `dunning status`.

No personal data: a status is shown in terminals and dashboards.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.commands import Instalment
from schemas.strategy import Assignment

CaseStateName = Literal["open", "paused", "closed", "audit_blocked"]


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


class ApprovalView(BaseModel):
    """A four-eyes request waiting for a second principal."""

    model_config = ConfigDict(frozen=True)

    request: int = Field(description="its sequence number: what `approve` names")
    kind: str
    requested_by: str
    expires_at: datetime
    command: dict[str, Any] = Field(description="the action as requested")


class InFlightView(BaseModel):
    """An attempt handed to a provider and not answered yet (in flight or in retry)."""

    model_config = ConfigDict(frozen=True)

    channel: str
    stage: str
    since: datetime
    deadline: datetime | None = Field(description="it stops there: the window's close")
    withdrawing: str | None = Field(
        default=None, description="the rule that withdrew it, while the provider answers"
    )
    carried: int = Field(
        default=0,
        ge=0,
        description="events it carries to the audit log that no receipt has confirmed "
        "yet: its activity appends them before the provider is asked, so while it waits "
        "for its turn the log is behind the case by at most this many",
    )


class FailureView(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    channel: str
    stage: str
    reason: str


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
    approvals: list[ApprovalView] = []
    in_flight: InFlightView | None = None
    failures: list[FailureView] = Field(
        default=[], description="the last contacts a provider refused for good"
    )
    audit_blocked: str | None = Field(
        default=None,
        description="the audit store refuses this case's events (the reason, no personal "
        "data): contact stops until it accepts them again",
    )
    assignment: Assignment | None = Field(
        default=None, description="strategy, segment, experiment and arm the case opened under"
    )
    next_action: NextAction | None
    counters: dict[str, int]
    events: int
    last_events: list[EventLine]


class ActionResult(BaseModel):
    """What an operator action recorded, exactly, and the case's status after it."""

    model_config = ConfigDict(frozen=True)

    recorded: list[EventLine] = Field(description="the events this action recorded, in order")
    status: CaseStatus

    @property
    def pending_approval(self) -> ApprovalView | None:
        """The approval request this action made, if it made one."""
        made = {line.seq for line in self.recorded if line.type == "approval_requested"}
        return next((a for a in self.status.approvals if a.request in made), None)
