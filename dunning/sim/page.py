"""`dunning simulate --html FILE`: the simulation as one self-contained page
(dunning.charts, as the report's): the recovery curve of every policy or arm, how
cases closed, contacts per case by channel, and the tables the terminal prints."""

from __future__ import annotations

from typing import Any

from dunning.charts import svg
from dunning.charts.page import Chart, Section, html_page
from dunning.sim import tables
from dunning.sim.results import CHANNELS, CLOSINGS
from dunning.sim.runner import Simulation


def simulation_page(
    result: Simulation,
    mode: str,
    strategy: str | None,
    currency: str,
    compared: dict[str, Any] | None = None,
) -> str:
    groups = list(result.groups.values())
    by = tables.grouped_by(mode)
    subtitle = [
        f"model {result.model}, seed {result.seed}, {result.days} policy days from "
        f"{result.start.isoformat(timespec='minutes')}",
        "simulated on the production decider (decide/evolve and the compliance guard)",
    ]
    if strategy:
        subtitle.append(f"cases placed by strategy {strategy}")
    recovery = Chart(
        svg.line_chart(
            {g.group: list(enumerate(g.curve)) for g in groups},
            title="recovery curve",
            x_label="days since opening",
            y_label="share of the amount at opening recovered",
            percent=True,
        )
    )
    reasons = [r for r in (*CLOSINGS, "open") if any(g.closed.get(r) for g in groups)]
    closures = Chart(
        svg.bar_chart(
            [r.replace("_", " ") for r in reasons],
            {g.group: [g.closed.get(r, 0) / max(g.cases, 1) for r in reasons] for g in groups},
            title=f"how cases ended after {result.days} days",
            value_label="share of cases",
            percent=True,
        )
    )
    used = [c for c in CHANNELS if any(g.contacts_per_case.get(c) for g in groups)]
    contacts = Chart(
        svg.bar_chart(
            [c.replace("_", " ") for c in used],
            {g.group: [g.contacts_per_case.get(c, 0.0) for c in used] for g in groups},
            title="contacts per case, by channel",
            value_label="contacts per case",
        )
    )
    figures = [
        tables.summary(result, mode, strategy, currency),
        tables.curve(groups, mode, result.days),
        tables.contacts(groups, mode),
    ]
    sections = [
        Section(f"by {by}", charts=[recovery, closures, contacts], tables=figures),
    ]
    by_rule = tables.rules(groups)
    if by_rule is not None:
        sections.append(Section("the guard", tables=[by_rule]))
    if compared is not None:
        sections.append(Section("comparison", tables=[tables.comparison(compared)]))
    return html_page("Dunning simulation", sections, subtitle=subtitle)
