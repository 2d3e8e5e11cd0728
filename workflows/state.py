"""The case's state: the fold of its events. Carried across continue-as-new."""

from __future__ import annotations

import copy
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from schemas.case import CaseInput
from schemas.commands import Instalment
from schemas.compliance import UNREACHABLE_AFTER_FAILED_CALLS
from schemas.events import ApprovalKind, Event
from schemas.policy import Policy, Stage
from schemas.strategy import Assignment

RECENT_EVENTS = 10
# The decision rules new cases open on (CaseOpened.rules); see "Determinism" in
# docs/architecture.md. Older cases move to them, recorded, when they run live.
CURRENT_RULES = 3


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
    until: datetime | None = None


class PromiseInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seq: int
    amount: Decimal
    pay_by: date
    hold_until: datetime
    paid: Decimal = Decimal(0)
    kept: bool = False


class PlanInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seq: int
    instalments: tuple[Instalment, ...]
    deadlines: tuple[datetime, ...]
    paid: Decimal = Decimal(0)

    def next_deadline(self) -> tuple[int, Decimal, datetime] | None:
        """(index, cumulative amount due by then, deadline) of the first instalment not yet
        covered by what was paid into the plan; None when everything is covered."""
        required = Decimal(0)
        for index, (instalment, deadline) in enumerate(
            zip(self.instalments, self.deadlines, strict=True)
        ):
            required += instalment.amount
            if self.paid < required:
                return index, required, deadline
        return None


class SettlementInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seq: int
    amount: Decimal
    pay_by: date
    deadline: datetime
    waiver: Decimal
    supervisor: str | None
    paid: Decimal = Decimal(0)


class DisputeInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    since: datetime
    operator: str
    reason: str


class VisitInfo(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: datetime
    collectors: tuple[str, ...]
    outcome: str | None = None


class AgreementRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str
    agreement_seq: int
    document_id: str
    sha256: str


class PendingApproval(BaseModel):
    """An action waiting for a second principal (four eyes)."""

    model_config = ConfigDict(extra="forbid")

    seq: int
    kind: ApprovalKind
    requested_by: str
    command: dict[str, Any]
    expires_at: datetime


class FailureRecord(BaseModel):
    """A contact a provider refused for good, kept for the status (the last few)."""

    model_config = ConfigDict(extra="forbid")

    at: datetime
    channel: str
    stage: str
    reason: str


class CallRecord(BaseModel):
    """A call handed to the dialer, kept a few days for the compliance caps."""

    model_config = ConfigDict(extra="forbid")

    at: datetime
    phone_index: int
    connected: bool


class CaseState(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case_id: str
    case: CaseInput
    policy: Policy
    opened_at: datetime
    seq: int = 0
    rules: int = Field(default=1, description="decision rules pinned at opening (CaseOpened.rules)")
    assignment: Assignment | None = Field(
        default=None, description="the strategy's placement at opening (CaseOpened.assignment)"
    )

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
    paused_total: timedelta = Field(
        default=timedelta(0),
        description="time the escalation clock stood still: pauses, disputes, agreements",
    )
    frozen_since: datetime | None = None
    clock_shift: timedelta = Field(
        default=timedelta(0), description="operator escalations and de-escalations"
    )
    promise: PromiseInfo | None = None
    plan: PlanInfo | None = None
    settlement: SettlementInfo | None = None
    dispute: DisputeInfo | None = None
    visit: VisitInfo | None = None
    agreements: list[AgreementRef] = Field(default_factory=list)

    handed_to_legal: bool = False
    calls: list[CallRecord] = Field(
        default_factory=list, description="recent calls (about 9 days), for the caps"
    )
    deferred: dict[int, datetime] = Field(
        default_factory=dict,
        description="per action of the current stage: until when its due occurrence is deferred",
    )
    ceased: list[str] = Field(default_factory=list, description="channels ceased, or 'all'")
    failed_calls: int = Field(
        default=0, description="consecutive calls without a conversation, since the last one"
    )
    invalid_phones: list[int] = Field(
        default_factory=list, description="borrower phones a provider reported invalid"
    )
    third_party_opt_outs: list[int] = Field(
        default_factory=list, description="emergency contacts who asked not to be contacted"
    )
    hard_stops: list[str] = Field(default_factory=list)
    approvals: list[PendingApproval] = Field(
        default_factory=list, description="four eyes: requests waiting for approval"
    )
    failures: list[FailureRecord] = Field(
        default_factory=list, description="the last contacts a provider refused for good"
    )
    confirmations: list[int] = Field(
        default_factory=list,
        description="rules 3: agreements (by seq) whose confirmation SMS is still due",
    )
    confirmation_deferred: dict[int, datetime] = Field(
        default_factory=dict, description="per agreement seq: its confirmation waits until"
    )
    cadence_seq: int = Field(
        default=0,
        description="seq of the event that last (re)started the stage's cadence: with the "
        "action and occurrence it names an attempt across retries and expiries (rules 3)",
    )
    counters: dict[str, int] = Field(default_factory=dict)
    recent: list[tuple[int, Event]] = Field(default_factory=list)

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> CaseState:
        """`evolve` copies the state before every event. Frozen values (the policy, the
        case input, events, datetimes, decimals) cannot change, so the copy shares them
        and copies only what is mutable; a plain deep copy of the pinned policy and the
        recent events was most of the simulator's time (docs/benchmarks.md)."""
        copied: CaseState = _copy_model(self, {} if memo is None else memo)
        return copied

    @model_validator(mode="after")
    def _carried_pause(self) -> CaseState:
        # A state carried over by an older version knew pauses only.
        if self.clock_frozen and self.frozen_since is None:
            self.frozen_since = self.paused.since if self.paused is not None else None
        return self

    @property
    def is_closed(self) -> bool:
        return self.closed_reason is not None

    @property
    def agreement(self) -> PromiseInfo | PlanInfo | SettlementInfo | None:
        """The one agreement in force, if any: a promise, a plan or a settlement offer."""
        return self.promise or self.plan or self.settlement

    @property
    def is_frozen(self) -> bool:
        """Collection stands still: no contact (and no escalation, see `clock_frozen`)."""
        return self.paused is not None or self.dispute is not None or self.agreement is not None

    @property
    def clock_frozen(self) -> bool:
        """The escalation clock stands still: a dispute, an agreement, or a pause when
        the policy excludes paused days (the default)."""
        paused = self.paused is not None and self.policy.aging.exclude_paused_days
        return paused or self.dispute is not None or self.agreement is not None

    @property
    def unreachable(self) -> bool:
        """The borrower cannot be reached: 3 consecutive calls without a conversation, or
        every number reported invalid (docs/domain.md rule 3)."""
        if self.failed_calls >= UNREACHABLE_AFTER_FAILED_CALLS:
            return True
        return len(set(self.invalid_phones)) >= len(self.case.borrower.phones)

    def phone(self) -> int | None:
        """The borrower's number to use: the first not reported invalid."""
        for index in range(len(self.case.borrower.phones)):
            if index not in self.invalid_phones:
                return index
        return None

    def third_party(self) -> int | None:
        """The emergency contact to message next: the first who has not opted out."""
        for index in range(len(self.case.borrower.emergency_contacts)):
            if index not in self.third_party_opt_outs:
                return index
        return None

    @property
    def stage(self) -> Stage | None:
        return self.policy.stages[self.stage_index] if self.stage_index >= 0 else None

    @property
    def dpd_at_open(self) -> int:
        return self.case.loan.days_past_due

    def active_elapsed(self, now: datetime) -> timedelta:
        """Collection time since opening, less the time collection stood still (pauses,
        disputes, agreements), plus operator escalations: the clock escalation runs on."""
        elapsed = now - self.opened_at - self.paused_total + self.clock_shift
        if self.frozen_since is not None:
            elapsed -= now - self.frozen_since
        return max(elapsed, timedelta(0))

    def days_past_due(self, now: datetime) -> int:
        return self.dpd_at_open + self.active_elapsed(now) // self.policy.day_length

    def stage_start_offset(self, index: int) -> timedelta:
        """Active time after opening at which stage `index` starts (0 if already reached)."""
        days = self.policy.stages[index].from_dpd - self.dpd_at_open
        return max(days, 0) * self.policy.day_length


_ATOMS = (str, int, float, bool, Decimal, datetime, date, timedelta, type(None))
_IMMUTABLE_TYPES: dict[type, bool] = {}


def _immutable_type(kind: type) -> bool:
    """Atoms and frozen models never change: a copy may share them (cached per type)."""
    known = _IMMUTABLE_TYPES.get(kind)
    if known is None:
        frozen = issubclass(kind, BaseModel) and bool(kind.model_config.get("frozen"))
        known = _IMMUTABLE_TYPES[kind] = issubclass(kind, _ATOMS) or frozen
    return known


def _immutable(value: Any) -> bool:
    if _immutable_type(type(value)):
        return True
    if type(value) is tuple:
        return all(_immutable(item) for item in value)
    return False


def _copy_value(value: Any, memo: dict[int, Any]) -> Any:
    if _immutable(value):
        return value
    if isinstance(value, list):
        return [_copy_value(item, memo) for item in value]
    if isinstance(value, dict):
        return {key: _copy_value(item, memo) for key, item in value.items()}
    if isinstance(value, BaseModel):
        return _copy_model(value, memo)
    return copy.deepcopy(value, memo)


def _copy_model(model: Any, memo: dict[int, Any]) -> Any:
    """A deep copy of a mutable model that shares its immutable parts."""
    copied = model.__copy__()
    fields = copied.__dict__
    for key, value in fields.items():
        if not _immutable(value):
            fields[key] = _copy_value(value, memo)
    return copied
