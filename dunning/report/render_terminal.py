"""`dunning report` in the terminal: rich tables, one per kind of figure."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from dunning.report import formats
from dunning.report.labels import Language, text
from dunning.report.model import Report

KNOWN_REASONS = ("paid", "settled", "transferred_to_legal", "written_off", "cancelled", "closed")


def print_report(report: Report, console: Console, language: Language = "en") -> None:
    def t(key: str, **values: object) -> str:
        return text(key, language, **values)

    console.print(f"[bold]{t('title')}[/]", highlight=False)
    console.print(
        t(
            "period",
            start=report.period_from.isoformat(timespec="minutes"),
            end=report.period_to.isoformat(timespec="minutes"),
        ),
        highlight=False,
    )
    if not report.groups:
        console.print(t("no_cases"))
        return
    reasons = [r for r in KNOWN_REASONS if any(r in g.cases_closed for g in report.groups)]
    reasons += sorted({r for g in report.groups for r in g.cases_closed} - set(reasons))

    cases = Table(title=t("cases"))
    for column in (t("group"), t("opened"), *(t(r) for r in reasons), t("open")):
        cases.add_column(column, justify="left" if column == t("group") else "right")
    for g in report.groups:
        cases.add_row(
            g.key.label(),
            str(g.cases_opened),
            *(str(g.cases_closed.get(r, 0)) for r in reasons),
            str(g.cases_open),
        )
    console.print(cases)

    figures = Table(title=t("effectiveness"))
    columns = (
        "group",
        "amount_at_opening",
        "amount_recovered",
        "recovery_rate",
        "cure_rate",
        "promise_kept_rate",
        "right_party_contact_rate",
        "contacts_per_1000_recovered",
        "days_to_cure_mean",
        "days_to_cure_median",
    )
    for column in columns:
        figures.add_column(t(column), justify="left" if column == "group" else "right")
    for g in report.groups:
        figures.add_row(
            g.key.label(),
            formats.amount(g.amount_at_opening),
            formats.amount(g.amount_recovered),
            formats.percent(g.recovery_rate),
            formats.percent(g.cure_rate),
            formats.percent(g.promise_kept_rate),
            formats.percent(g.right_party_contact_rate),
            formats.number(g.contacts_per_1000_recovered),
            formats.number(g.days_to_cure_mean, 1),
            formats.number(g.days_to_cure_median, 1),
        )
    console.print(figures)

    stages = Table(title=t("stages"))
    for column in (
        "group",
        "stage",
        "reached",
        "entered",
        "contacts",
        "right_party_contact_rate",
        "amount_recovered",
        "cured",
        "promises",
    ):
        stages.add_column(t(column), justify="left" if column in ("group", "stage") else "right")
    for g in report.groups:
        for s in g.stages:
            stages.add_row(
                g.key.label(),
                s.stage,
                str(s.reached),
                str(s.entered),
                str(s.contacts),
                formats.percent(s.right_party_contact_rate),
                formats.amount(s.recovered),
                str(s.cured),
                f"{s.promises_kept} / {s.promises_kept + s.promises_broken}",
            )
    console.print(stages)

    for g in report.groups:
        roll = g.roll_rates
        if not any(any(line) for line in roll.counts):
            continue
        matrix = Table(title=f"{t('roll_rates')}: {g.key.label()}")
        matrix.add_column(t("roll_from"))
        for state in roll.to_states:
            matrix.add_column(t(state) if state in roll.closed_states else state, justify="right")
        matrix.add_column("n", justify="right")
        for stage, counts, rates in zip(roll.from_stages, roll.counts, roll.rates, strict=True):
            if sum(counts):
                matrix.add_row(stage, *(formats.percent(r) for r in rates), str(sum(counts)))
        console.print(matrix)

    for c in report.comparisons:
        unit = " / ".join(str(p) for p in (c.strategy, c.experiment, c.segment, c.currency))
        arms = (
            f"{c.challenger_arm} ({c.challenger_policy}) - {c.champion_arm} ({c.champion_policy})"
        )
        table = Table(title=f"{t('comparisons')}: {unit}: {arms}")
        for column in ("metric", "champion", "challenger", "difference"):
            table.add_column(t(column), justify="left" if column == "metric" else "right")
        table.add_column(t("interval", level=c.confidence), justify="right")
        table.add_column(t("p_value"), justify="right")
        table.add_column(t("test"))
        for m in c.metrics:
            interval = formats.interval(m.metric, m.ci_low, m.ci_high)
            table.add_row(
                t(m.metric),
                formats.figure(m.metric, m.champion),
                formats.figure(m.metric, m.challenger),
                formats.difference(m.metric, m.difference),
                interval,
                formats.p_value(m.p_value),
                f"{m.test} (n = {m.n_champion}, {m.n_challenger})",
            )
        console.print(table)
