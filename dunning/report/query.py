"""Runs `effectiveness.sql` and turns its one row of JSON into a `Report`.

Every aggregate comes from PostgreSQL; Python only divides where a figure is a ratio
of two of them, lays the roll-rate counts out as a matrix, and runs the champion /
challenger tests on the per-arm sums (`dunning.report.stats`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any

import asyncpg

from dunning.report import stats
from dunning.report.model import (
    CHAMPION,
    Comparison,
    CurvePoint,
    GroupFigures,
    GroupKey,
    MetricComparison,
    Report,
    RollRates,
    StageFigures,
)
from dunning.report.period import Period
from schemas.channels import CHANNELS
from schemas.compliance import CONNECTED_OUTCOMES

SQL = resources.files("dunning.report").joinpath("effectiveness.sql").read_text(encoding="utf-8")

# Channels whose outcome says whether the borrower was reached: the calls, a dialer's
# or a collector's (those the profile's call caps count).
VOICE_CHANNELS = tuple(sorted(c for c, spec in CHANNELS.items() if spec.capped))
HORIZON_DAYS = 364  # recovery curves and roll rates follow a case's first 52 weeks
WEEK_DAYS = 7
DEFAULT_CONFIDENCE = 0.95
# Set for the report's own transaction only. Its sorts, hashes and CTEs stay in
# memory up to WORK_MEM each (the server default, 4 MB, spills 100,000 cases to disk).
# Its scan of the log hands every row it keeps on to the rest of the statement; at the
# default cost of passing a row from a parallel worker (0.1) the planner never gives
# that scan to workers, though reading and unpacking the rows is the costly part.
WORK_MEM = "256MB"
PARALLEL_TUPLE_COST = "0.01"


@dataclass(frozen=True)
class Options:
    confidence: float = DEFAULT_CONFIDENCE
    horizon_days: int = HORIZON_DAYS
    week_days: int = WEEK_DAYS


def _rate(numerator: Any, denominator: Any) -> float | None:
    return float(Decimal(numerator) / Decimal(denominator)) if denominator else None


def _amount(value: Any) -> Decimal:
    """An exact sum from PostgreSQL (numeric keeps the currency's scale)."""
    return Decimal(value) if value is not None else Decimal(0)


async def effectiveness(
    db: asyncpg.Pool | asyncpg.Connection, period: Period, options: Options | None = None
) -> Report:
    """The report for the cases opened in `period`, as of its end."""
    chosen = options or Options()
    if isinstance(db, asyncpg.Pool):
        async with db.acquire() as conn:
            row = await _fetch(conn, period, chosen)
    else:
        row = await _fetch(db, period, chosen)

    def parsed(column: str) -> list[dict[str, Any]]:
        value: list[dict[str, Any]] = json.loads(row[column], parse_float=Decimal)
        return value

    raw_groups = parsed("groups")
    stages = _by_group(parsed("stages"))
    roll = _by_group(parsed("roll"))
    curve = _by_group(parsed("curve"))
    groups = [
        _group(g, stages.get(g["g"], []), roll.get(g["g"], []), curve.get(g["g"], []))
        for g in raw_groups
    ]
    sums = {group.key: g for group, g in zip(groups, raw_groups, strict=True)}
    return Report(
        period_from=period.start,
        period_to=period.end,
        generated_at=datetime.now(UTC),
        horizon_days=chosen.horizon_days,
        week_days=chosen.week_days,
        groups=groups,
        comparisons=_comparisons(groups, sums, chosen.confidence),
    )


async def _fetch(conn: asyncpg.Connection, period: Period, chosen: Options) -> Any:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        await conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        await conn.execute(f"SET LOCAL parallel_tuple_cost = {PARALLEL_TUPLE_COST}")
        row = await conn.fetchrow(
            SQL,
            period.start,
            period.end,
            list(VOICE_CHANNELS),
            sorted(CONNECTED_OUTCOMES),
            chosen.horizon_days,
            chosen.week_days,
        )
    assert row is not None  # the statement always answers one row
    return row


def _by_group(rows: list[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    found: dict[int, list[dict[str, Any]]] = {}
    for row in rows:
        found.setdefault(row["g"], []).append(row)
    return found


def _group(
    g: dict[str, Any],
    stage_rows: list[dict[str, Any]],
    roll_rows: list[dict[str, Any]],
    curve_rows: list[dict[str, Any]],
) -> GroupFigures:
    closed = {reason: int(n) for reason, n in sorted(g["closed"].items())}
    kept, broken = g["promises_kept"], g["promises_broken"]
    recovered = Decimal(g["recovered"])
    return GroupFigures(
        strategy=g["strategy"],
        experiment=g["experiment"],
        segment=g["segment"],
        arm=g["arm"],
        policy=g["policy"],
        currency=g["currency"],
        cases_opened=g["opened"],
        cases_closed=closed,
        cases_open=g["opened"] - sum(closed.values()),
        amount_at_opening=_amount(g["amount_at_opening"]),
        amount_recovered=_amount(recovered),
        recovery_rate=_rate(recovered, g["amount_at_opening"]),
        cured=g["cured"],
        cure_rate=_rate(g["cured"], g["opened"]),
        promises_made=g["promises_made"],
        promises_kept=kept,
        promises_broken=broken,
        promise_kept_rate=_rate(kept, kept + broken),
        calls=g["calls"],
        right_party_contacts=g["right_party_contacts"],
        right_party_contact_rate=_rate(g["right_party_contacts"], g["calls"]),
        contacts=g["contacts"],
        contacts_by_channel={k: int(v) for k, v in sorted(g["contacts_by_channel"].items())},
        contacts_per_1000_recovered=_rate(g["contacts"] * 1000, recovered),
        days_to_cure_mean=_float(g["days_to_cure_mean"]),
        days_to_cure_median=_float(g["days_to_cure_median"]),
        stages=[_stage(s) for s in stage_rows],
        roll_rates=_roll(stage_rows, roll_rows),
        recovery_curve=[
            CurvePoint(
                day=c["day"],
                cases=c["cases"],
                owed=_amount(c["owed"]),
                recovered=_amount(c["recovered"]),
                recovery_rate=_rate(c["recovered"], c["owed"]),
            )
            for c in curve_rows
        ],
    )


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _stage(s: dict[str, Any]) -> StageFigures:
    kept, broken = s["promises_kept"], s["promises_broken"]
    return StageFigures(
        stage=s["stage"],
        stage_index=s["stage_index"],
        reached=s["reached"],
        entered=s["entered"],
        contacts=s["contacts"],
        calls=s["calls"],
        right_party_contacts=s["right_party_contacts"],
        right_party_contact_rate=_rate(s["right_party_contacts"], s["calls"]),
        recovered=_amount(s["recovered"]),
        cured=s["cured"],
        promises_made=s["promises_made"],
        promises_kept=kept,
        promises_broken=broken,
        promise_kept_rate=_rate(kept, kept + broken),
    )


def _roll(stage_rows: list[dict[str, Any]], roll_rows: list[dict[str, Any]]) -> RollRates:
    """Rows: the policy's stages in order (then any other stage a case was moved to);
    columns: the same stages, then the closing reasons seen."""
    stages = [s["stage"] for s in stage_rows]
    for r in roll_rows:
        for name, closed in ((r["from_stage"], False), (r["to_state"], r["to_closed"])):
            if not closed and name not in stages:
                stages.append(name)
    reasons = sorted({r["to_state"] for r in roll_rows if r["to_closed"]})
    columns = stages + reasons
    counts = [[0] * len(columns) for _ in stages]
    for r in roll_rows:
        counts[stages.index(r["from_stage"])][columns.index(r["to_state"])] += int(r["n"])
    rates = [[_rate(n, sum(line)) for n in line] for line in counts]
    return RollRates(
        from_stages=stages, to_states=columns, closed_states=reasons, counts=counts, rates=rates
    )


def _comparisons(
    groups: list[GroupFigures], sums: dict[GroupKey, dict[str, Any]], confidence: float
) -> list[Comparison]:
    """Each challenger arm against each champion arm of the same experiment, segment
    and currency."""
    found = []
    for champion in groups:
        if champion.experiment is None or champion.arm != CHAMPION:
            continue
        for challenger in groups:
            if challenger.arm == CHAMPION or challenger.key.unit != champion.key.unit:
                continue
            found.append(
                Comparison(
                    strategy=champion.strategy,
                    experiment=champion.experiment,
                    segment=champion.segment,
                    currency=champion.currency,
                    champion_arm=champion.arm,
                    champion_policy=champion.policy,
                    challenger_arm=challenger.arm,
                    challenger_policy=challenger.policy,
                    confidence=confidence,
                    metrics=_metrics(sums[champion.key], sums[challenger.key], confidence),
                )
            )
    return found


def _f(value: Any) -> float:
    return float(value or 0)


def _metrics(a: dict[str, Any], b: dict[str, Any], confidence: float) -> list[MetricComparison]:
    def recovery(g: dict[str, Any]) -> stats.RatioSums:
        return stats.RatioSums(
            n=g["opened"],
            y=_f(g["recovered"]),
            x=_f(g["amount_at_opening"]),
            yy=_f(g["recovered_sq"]),
            xx=_f(g["amount_sq"]),
            xy=_f(g["recovered_x_amount"]),
        )

    def contacts(g: dict[str, Any]) -> stats.RatioSums:
        return stats.RatioSums(
            n=g["opened"],
            y=_f(g["contacts"]),
            x=_f(g["recovered"]),
            yy=_f(g["contacts_sq"]),
            xx=_f(g["recovered_sq"]),
            xy=_f(g["contacts_x_recovered"]),
        )

    def per_case(g: dict[str, Any]) -> stats.Moments:
        return stats.Moments(g["opened"], _f(g["recovered"]), _f(g["recovered_sq"]))

    def cure_days(g: dict[str, Any]) -> stats.Moments:
        return stats.Moments(g["cured"], _f(g["days_to_cure_sum"]), _f(g["days_to_cure_sq"]))

    def resolved(g: dict[str, Any]) -> int:
        return int(g["promises_kept"] + g["promises_broken"])

    estimates = {
        "recovery_rate": stats.ratios(recovery(a), recovery(b), confidence),
        "cure_rate": stats.two_proportions(
            a["cured"], a["opened"], b["cured"], b["opened"], confidence
        ),
        "amount_recovered_per_case": stats.welch(per_case(a), per_case(b), confidence),
        "promise_kept_rate": stats.two_proportions(
            a["promises_kept"], resolved(a), b["promises_kept"], resolved(b), confidence
        ),
        "right_party_contact_rate": stats.two_proportions(
            a["right_party_contacts"], a["calls"], b["right_party_contacts"], b["calls"], confidence
        ),
        "contacts_per_1000_recovered": stats.ratios(
            contacts(a), contacts(b), confidence, scale=1000.0
        ),
        "days_to_cure": stats.welch(cure_days(a), cure_days(b), confidence),
    }
    return [MetricComparison(metric=name, **vars(e)) for name, e in estimates.items()]
