"""`dunning report --csv`: every figure on a row of its own (long format), so one file
holds groups, stages, roll rates, curves and comparisons and a spreadsheet pivots it.

Columns: section (group, stage, roll, curve, comparison), the group's strategy,
experiment, segment, arm, policy and currency, stage, to_state (roll rates), day
(curves), metric, value, detail (a comparison's test and champion)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from decimal import Decimal
from typing import TextIO

from dunning.report.model import GroupFigures, Report

COLUMNS = (
    "section", "strategy", "experiment", "segment", "arm", "policy", "currency",
    "stage", "to_state", "day", "metric", "value", "detail",
)  # fmt: skip
Value = int | float | Decimal | None

GROUP_FIGURES = (
    "cases_opened", "cases_open", "amount_at_opening", "amount_recovered", "recovery_rate",
    "cured", "cure_rate", "promises_made", "promises_kept", "promises_broken",
    "promise_kept_rate", "calls", "right_party_contacts", "right_party_contact_rate",
    "contacts", "contacts_per_1000_recovered", "days_to_cure_mean", "days_to_cure_median",
)  # fmt: skip
STAGE_FIGURES = (
    "reached", "entered", "contacts", "calls", "right_party_contacts",
    "right_party_contact_rate", "recovered", "cured", "promises_made", "promises_kept",
    "promises_broken", "promise_kept_rate",
)  # fmt: skip


def _cell(value: Value) -> str:
    return "" if value is None else str(value)


def rows(report: Report) -> Iterator[list[str]]:
    for g in report.groups:
        yield from _group_rows(g)
    for c in report.comparisons:
        key = [c.strategy or "", c.experiment or "", c.segment, c.challenger_arm,
               c.challenger_policy, c.currency]  # fmt: skip
        for m in c.metrics:
            detail = f"{m.test}; against {c.champion_arm} ({c.champion_policy}); "
            detail += f"n = {m.n_champion}, {m.n_challenger}; confidence {c.confidence}"
            for part in ("champion", "challenger", "difference", "ci_low", "ci_high", "p_value"):
                value: Value = getattr(m, part)
                yield ["comparison", *key, "", "", "", f"{m.metric}.{part}", _cell(value), detail]


def _group_rows(g: GroupFigures) -> Iterator[list[str]]:
    key = [g.strategy or "", g.experiment or "", g.segment, g.arm, g.policy, g.currency]
    for name in GROUP_FIGURES:
        yield ["group", *key, "", "", "", name, _cell(getattr(g, name)), ""]
    for reason, n in g.cases_closed.items():
        yield ["group", *key, "", "", "", f"cases_closed.{reason}", str(n), ""]
    for channel, n in g.contacts_by_channel.items():
        yield ["group", *key, "", "", "", f"contacts.{channel}", str(n), ""]
    for s in g.stages:
        for name in STAGE_FIGURES:
            yield ["stage", *key, s.stage, "", "", name, _cell(getattr(s, name)), ""]
    roll = g.roll_rates
    for stage, counts, rates in zip(roll.from_stages, roll.counts, roll.rates, strict=True):
        for state, n, rate in zip(roll.to_states, counts, rates, strict=True):
            if n:
                yield ["roll", *key, stage, state, "", "count", str(n), ""]
                yield ["roll", *key, stage, state, "", "rate", _cell(rate), ""]
    for p in g.recovery_curve:
        for name, value in (("cases", p.cases), ("owed", p.owed), ("recovered", p.recovered),
                            ("recovery_rate", p.recovery_rate)):  # fmt: skip
            yield ["curve", *key, "", "", str(p.day), name, _cell(value), ""]


def write_csv(report: Report, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows(report))
