"""What a simulation found: per case, then per policy or arm, and the difference
between two of them with a bootstrap confidence interval."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from operator import itemgetter
from typing import Any, get_args

from dunning.sim.borrower import BorrowerAction
from dunning.sim.responses import Costs
from schemas.channels import CHANNELS as CHANNEL_TABLE
from schemas.channels import Channel
from schemas.events import (
    AgreementRecorded,
    CaseClosed,
    CaseOpened,
    CloseReason,
    ContactAttempted,
    ContactDeferred,
    ContactSkipped,
    DisputeOpened,
    Event,
    FieldVisitScheduled,
    HandedToLegal,
    PaymentReceived,
    PromiseEnded,
    PromiseKept,
    PromiseMade,
)

CHANNELS: tuple[Channel, ...] = tuple(CHANNEL_TABLE)
CLOSINGS: tuple[CloseReason, ...] = get_args(CloseReason)


@dataclass
class CaseResult:
    """One case's simulated life, reduced to what the figures need."""

    case_id: str
    group: str
    segment: str
    policy: str
    at_open: Decimal
    recovered: Decimal = Decimal(0)
    payments: list[tuple[int, Decimal]] = field(default_factory=list)  # (day, applied)
    closed_reason: str | None = None
    closed_day: int | None = None
    contacts: Counter[str] = field(default_factory=Counter)
    deferrals: Counter[str] = field(default_factory=Counter)
    skips: Counter[str] = field(default_factory=Counter)
    agreements: int = 0
    promises: int = 0
    promises_kept: int = 0
    disputes: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    cost: float = 0.0
    folded: int = 0  # events in the case's log
    events: list[Event] | None = None
    actions: list[BorrowerAction] | None = None

    @property
    def contact_count(self) -> int:
        return sum(self.contacts.values())


def case_result(
    log: list[Event],
    *,
    group: str,
    segment: str,
    day_length: timedelta,
    costs: Costs,
    refused: Counter[str],
) -> CaseResult:
    opened = log[0]
    assert isinstance(opened, CaseOpened), "a case's log starts with case_opened"
    case, policy = opened.case, opened.policy
    result = CaseResult(
        case_id=case.case_id,
        group=group,
        segment=segment,
        policy=policy.ref,
        at_open=case.loan.outstanding,
        refused=refused,
        folded=len(log),
    )
    start: datetime = opened.at

    def day(at: datetime) -> int:
        return int((at - start) // day_length)

    promised = False  # a promise is in force
    for event in log[1:]:
        if isinstance(event, ContactAttempted):
            result.contacts[event.channel] += 1
        elif isinstance(event, FieldVisitScheduled):
            result.contacts["field_visit"] += 1
        elif isinstance(event, HandedToLegal):
            result.contacts["legal_handoff"] += 1
        elif isinstance(event, ContactDeferred):
            result.deferrals[event.rule] += 1
        elif isinstance(event, ContactSkipped):
            result.skips[event.rule] += 1
        elif isinstance(event, PaymentReceived):
            applied = event.amount - event.overpaid
            result.recovered += applied
            result.payments.append((day(event.at), applied))
        elif isinstance(event, PromiseMade):
            result.promises += 1
            promised = True
        elif isinstance(event, PromiseKept):
            result.promises_kept += 1
            promised = False
        elif isinstance(event, PromiseEnded):
            promised = False
        elif isinstance(event, DisputeOpened):
            result.disputes += 1
        elif isinstance(event, AgreementRecorded):
            result.agreements += 1
        elif isinstance(event, CaseClosed):
            # Paying a promise off closes the case before the promise is marked kept.
            result.promises_kept += int(promised and event.reason == "paid")
            result.closed_reason = event.reason
            result.closed_day = day(event.at)
    result.cost = sum(costs.of(channel) * n for channel, n in result.contacts.items())
    result.cost += costs.agreement * result.agreements
    return result


@dataclass(frozen=True)
class Summary:
    """The figures of one policy or arm."""

    group: str
    cases: int
    at_open: Decimal
    recovered: Decimal
    recovery_rate: float
    curve: list[float]  # recovered / at open, cumulative, by policy day 0..days
    closed: dict[str, int]  # reason -> cases; "open" for those still open at the horizon
    contacts_per_case: dict[str, float]
    deferrals: dict[str, int]
    skips: dict[str, int]
    cost: float
    cost_per_recovered: float | None
    promises: int
    promise_kept_rate: float | None
    disputes: int
    refused: dict[str, int]
    policies: dict[str, int]
    segments: dict[str, int]

    def as_json(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "cases": self.cases,
            "at_open": str(self.at_open),
            "recovered": str(self.recovered),
            "recovery_rate": self.recovery_rate,
            "curve": self.curve,
            "closed": self.closed,
            "contacts_per_case": self.contacts_per_case,
            "deferrals": self.deferrals,
            "skips": self.skips,
            "cost": round(self.cost, 2),
            "cost_per_recovered": self.cost_per_recovered,
            "promises": self.promises,
            "promise_kept_rate": self.promise_kept_rate,
            "disputes": self.disputes,
            "refused": self.refused,
            "policies": self.policies,
            "segments": self.segments,
        }


def summarise(group: str, results: Sequence[CaseResult], days: int) -> Summary:
    at_open = sum((r.at_open for r in results), Decimal(0))
    recovered = sum((r.recovered for r in results), Decimal(0))
    daily = [Decimal(0)] * (days + 1)
    for r in results:
        for day, amount in r.payments:
            daily[min(max(day, 0), days)] += amount
    curve, running = [], Decimal(0)
    for amount in daily:
        running += amount
        curve.append(round(float(running / at_open), 6) if at_open else 0.0)
    closed: Counter[str] = Counter(r.closed_reason or "open" for r in results)
    contacts: Counter[str] = Counter()
    deferrals: Counter[str] = Counter()
    skips: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for r in results:
        contacts.update(r.contacts)
        deferrals.update(r.deferrals)
        skips.update(r.skips)
        refused.update(r.refused)
    n = len(results)
    cost = sum(r.cost for r in results)
    promises = sum(r.promises for r in results)
    kept = sum(r.promises_kept for r in results)
    return Summary(
        group=group,
        cases=n,
        at_open=at_open,
        recovered=recovered,
        recovery_rate=float(recovered / at_open) if at_open else 0.0,
        curve=curve,
        closed={k: closed[k] for k in (*CLOSINGS, "open") if closed[k]},
        contacts_per_case={c: round(contacts[c] / n, 4) for c in CHANNELS if n},
        deferrals=dict(sorted(deferrals.items())),
        skips=dict(sorted(skips.items())),
        cost=cost,
        cost_per_recovered=cost / float(recovered) if recovered else None,
        promises=promises,
        promise_kept_rate=kept / promises if promises else None,
        disputes=sum(r.disputes for r in results),
        refused=dict(sorted(refused.items())),
        policies=dict(Counter(r.policy for r in results)),
        segments=dict(Counter(r.segment for r in results)),
    )


# --- comparing two groups --------------------------------------------------------------


@dataclass(frozen=True)
class Columns:
    """A group's per-case figures as floats, for resampling."""

    at_open: list[float]
    recovered: list[float]
    cured: list[float]  # closed paid or settled
    legal: list[float]
    contacts: list[float]
    cost: list[float]

    @classmethod
    def of(cls, results: Sequence[CaseResult]) -> Columns:
        return cls(
            at_open=[float(r.at_open) for r in results],
            recovered=[float(r.recovered) for r in results],
            cured=[float(r.closed_reason in ("paid", "settled")) for r in results],
            legal=[float(r.closed_reason == "transferred_to_legal") for r in results],
            contacts=[float(r.contact_count) for r in results],
            cost=[r.cost for r in results],
        )


Metric = tuple[str, Callable[[dict[str, float], int], float | None]]
METRICS: tuple[Metric, ...] = (
    ("recovery_rate", lambda s, n: s["recovered"] / s["at_open"] if s["at_open"] else None),
    ("cure_rate", lambda s, n: s["cured"] / n),
    ("legal_rate", lambda s, n: s["legal"] / n),
    ("contacts_per_case", lambda s, n: s["contacts"] / n),
    ("cost_per_recovered", lambda s, n: s["cost"] / s["recovered"] if s["recovered"] else None),
)


def _sums(
    columns: Columns, pick: Callable[[list[float]], Sequence[float]] | None
) -> dict[str, float]:
    names = ("at_open", "recovered", "cured", "legal", "contacts", "cost")
    if pick is None:
        return {name: sum(getattr(columns, name)) for name in names}
    return {name: sum(pick(getattr(columns, name))) for name in names}


def _metrics(
    columns: Columns, pick: Callable[[list[float]], Sequence[float]] | None
) -> dict[str, float | None]:
    sums = _sums(columns, pick)
    n = len(columns.at_open)
    return {name: fn(sums, n) for name, fn in METRICS}


@dataclass(frozen=True)
class Difference:
    metric: str
    a: float | None
    b: float | None
    diff: float | None  # b - a
    low: float | None
    high: float | None

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "a": self.a,
            "b": self.b,
            "difference": self.diff,
            "ci_low": self.low,
            "ci_high": self.high,
        }


def compare(
    a: Sequence[CaseResult],
    b: Sequence[CaseResult],
    *,
    seed: int,
    resamples: int = 1000,
    confidence: float = 0.95,
) -> tuple[str, list[Difference]]:
    """B - A for each metric, with a percentile bootstrap interval over cases.

    When both groups hold the same cases (one portfolio under two policies) the
    resampling is paired: the same draw of cases for both, so the interval measures
    the policies' difference, not the portfolio's noise. Otherwise the groups are
    resampled independently. Seeded: the same seed gives the same interval.
    """
    paired = [r.case_id for r in a] == [r.case_id for r in b]
    ca, cb = Columns.of(a), Columns.of(b)
    point_a, point_b = _metrics(ca, None), _metrics(cb, None)
    rng = random.Random(f"bootstrap:{seed}")
    draws: dict[str, list[float]] = {name: [] for name, _ in METRICS}
    for _ in range(resamples):
        picks_a = itemgetter(*rng.choices(range(len(a)), k=len(a)))
        picks_b = picks_a if paired else itemgetter(*rng.choices(range(len(b)), k=len(b)))
        ma = _metrics(ca, _picker(picks_a))
        mb = _metrics(cb, _picker(picks_b))
        for name, _ in METRICS:
            va, vb = ma[name], mb[name]
            if va is not None and vb is not None:
                draws[name].append(vb - va)
    tail = (1 - confidence) / 2
    out = []
    for name, _ in METRICS:
        va, vb = point_a[name], point_b[name]
        values = sorted(draws[name])
        low = high = None
        if values:
            low = values[int(tail * (len(values) - 1))]
            high = values[round((1 - tail) * (len(values) - 1))]
        diff = vb - va if va is not None and vb is not None else None
        out.append(Difference(name, va, vb, diff, low, high))
    method = "paired" if paired else "independent"
    return f"{method} percentile bootstrap over cases, {resamples} resamples", out


def _picker(pick: itemgetter[Any]) -> Callable[[list[float]], Sequence[float]]:
    """The resampled values of a column (itemgetter of one index gives a bare value)."""

    def picked(column: list[float]) -> Sequence[float]:
        values = pick(column)
        return values if isinstance(values, tuple) else (values,)

    return picked
