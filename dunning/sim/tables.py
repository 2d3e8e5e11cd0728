"""The figures of a simulation as tables: one definition for the terminal (rich) and
the page (`dunning simulate --html`)."""

from __future__ import annotations

from typing import Any

from dunning.charts.page import TableData
from dunning.sim.results import CHANNELS, Summary
from dunning.sim.runner import Simulation

CURVE_DAYS = (7, 14, 30, 60, 90, 120, 180, 365)
NAMED_CLOSINGS = ("paid", "settled", "transferred_to_legal", "open")


def grouped_by(mode: str) -> str:
    return "policy" if mode == "policies" else "segment/arm"


def pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def summary(result: Simulation, mode: str, strategy: str | None, currency: str) -> TableData:
    groups = list(result.groups.values())
    title = (
        f"{sum(g.cases for g in groups)} case runs, {result.days} days, model "
        f"{result.model}, seed {result.seed}" + (f", segments by {strategy}" if strategy else "")
    )
    columns = [
        grouped_by(mode), "cases", f"at open ({currency})", "recovered", "recovery", "paid",
        "settled", "to legal", "other", "open", "promises kept", "cost", "cost / recovered",
    ]  # fmt: skip
    rows = []
    for g in groups:
        other = sum(v for k, v in g.closed.items() if k not in NAMED_CLOSINGS)
        rows.append(
            [
                g.group,
                str(g.cases),
                f"{g.at_open:,.2f}",
                f"{g.recovered:,.2f}",
                pct(g.recovery_rate),
                str(g.closed.get("paid", 0)),
                str(g.closed.get("settled", 0)),
                str(g.closed.get("transferred_to_legal", 0)),
                str(other),
                str(g.closed.get("open", 0)),
                pct(g.promise_kept_rate),
                f"{g.cost:,.2f}",
                "-" if g.cost_per_recovered is None else f"{g.cost_per_recovered:.4f}",
            ]
        )
    return TableData(title, columns, rows, [False] + [True] * (len(columns) - 1))


def contacts(groups: list[Summary], mode: str) -> TableData:
    return TableData(
        "contacts per case, by channel",
        [grouped_by(mode), *CHANNELS],
        [[g.group, *(f"{g.contacts_per_case.get(c, 0):.2f}" for c in CHANNELS)] for g in groups],
        [False] + [True] * len(CHANNELS),
    )


def curve_marks(days: int) -> list[int]:
    return [d for d in CURVE_DAYS if d < days] + [days]


def curve(groups: list[Summary], mode: str, days: int) -> TableData:
    marks = curve_marks(days)
    return TableData(
        "recovery curve: share of the amount at opening recovered by day",
        [grouped_by(mode), *(f"day {day}" for day in marks)],
        [[g.group, *(pct(g.curve[day]) for day in marks)] for g in groups],
        [False] + [True] * len(marks),
    )


def rules(groups: list[Summary]) -> TableData | None:
    keys = sorted(
        {("deferred", r) for g in groups for r in g.deferrals}
        | {("skipped", r) for g in groups for r in g.skips}
        | {("refused", r) for g in groups for r in g.refused}
    )
    if not keys:
        return None
    sources = {"deferred": "deferrals", "skipped": "skips", "refused": "refused"}
    return TableData(
        "deferrals and skips by rule; borrower responses the case refused",
        ["", "rule", *(g.group for g in groups)],
        [
            [kind, rule, *(str(getattr(g, sources[kind]).get(rule, 0)) for g in groups)]
            for kind, rule in keys
        ],
        [False, False] + [True] * len(groups),
    )


def comparison(compared: dict[str, Any]) -> TableData:
    def fmt(metric: str, value: float | None, points: bool = False) -> str:
        if value is None:
            return "-"
        if metric.endswith("_rate"):
            return f"{value * 100:+.2f} pp" if points else f"{value:.2%}"
        return f"{value:+.4f}" if points else f"{value:.4f}"

    rows = []
    for m in compared["metrics"]:
        name = m["metric"]
        low, high = fmt(name, m["ci_low"], True), fmt(name, m["ci_high"], True)
        rows.append(
            [
                name.replace("_", " "),
                fmt(name, m["a"]),
                fmt(name, m["b"]),
                fmt(name, m["difference"], True),
                "-" if m["ci_low"] is None else f"[{low}, {high}]",
            ]
        )
    return TableData(
        f"{compared['b']} - {compared['a']} (95% interval: {compared['method']})",
        ["metric", compared["a"], compared["b"], "difference", "95% interval"],
        rows,
        [False, True, True, True, True],
    )
