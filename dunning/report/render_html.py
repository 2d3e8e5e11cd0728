"""`dunning report --html FILE` and `GET /reports/effectiveness.html`: the report as
one self-contained page (dunning.charts): per experiment, the recovery curves of its
arms, the stage funnel, a roll-rate heat map per arm and the champion/challenger
table; the figures of every group in tables."""

from __future__ import annotations

from collections.abc import Sequence

from dunning.charts import svg
from dunning.charts.page import Chart, Section, TableData, html_page
from dunning.report import formats
from dunning.report.labels import Language, text
from dunning.report.model import CHAMPION, Comparison, GroupFigures, Report

Unit = tuple[str | None, str | None, str, str]


def report_page(report: Report, language: Language = "en") -> str:
    def t(key: str, **values: object) -> str:
        return text(key, language, **values)

    subtitle = [
        t(
            "period",
            start=report.period_from.isoformat(timespec="minutes"),
            end=report.period_to.isoformat(timespec="minutes"),
        ),
        t("generated", at=report.generated_at.isoformat(timespec="seconds")),
    ]
    if not report.groups:
        return html_page(t("title"), [Section(t("no_cases"))], lang=language, subtitle=subtitle)
    sections = [_summary(report, language)]
    units: dict[Unit, list[GroupFigures]] = {}
    for group in report.groups:
        units.setdefault(group.key.unit, []).append(group)
    # Experiments first; cases without a strategy after them.
    for unit, groups in sorted(units.items(), key=lambda item: item[0][0] is None):
        groups.sort(key=lambda g: (g.arm != CHAMPION, g.arm, g.policy))  # champion first
        comparisons = [c for c in report.comparisons if _unit_of(c) == unit]
        sections.append(_unit_section(unit, groups, comparisons, language))
    return html_page(t("title"), sections, lang=language, subtitle=subtitle)


def _unit_of(c: Comparison) -> Unit:
    return (c.strategy, c.experiment, c.segment, c.currency)


def _arm_name(g: GroupFigures) -> str:
    return f"{g.arm} ({g.policy})"


def _summary(report: Report, language: Language) -> Section:
    def t(key: str, **values: object) -> str:
        return text(key, language, **values)

    reasons = sorted({r for g in report.groups for r in g.cases_closed})
    cases = TableData(
        t("cases"),
        [t("group"), t("opened"), *(t(r) for r in reasons), t("open")],
        [
            [
                g.key.label(),
                str(g.cases_opened),
                *(str(g.cases_closed.get(r, 0)) for r in reasons),
                str(g.cases_open),
            ]
            for g in report.groups
        ],
        [False] + [True] * (len(reasons) + 2),
    )
    columns = (
        "amount_at_opening", "amount_recovered", "recovery_rate", "cure_rate",
        "promise_kept_rate", "right_party_contact_rate", "contacts_per_1000_recovered",
        "days_to_cure_mean", "days_to_cure_median",
    )  # fmt: skip
    figures = TableData(
        t("effectiveness"),
        [t("group"), *(t(c) for c in columns)],
        [
            [
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
            ]
            for g in report.groups
        ],
        [False] + [True] * len(columns),
    )
    return Section(t("figures_table"), tables=[cases, figures])


def _stage_order(groups: Sequence[GroupFigures]) -> list[str]:
    names: list[str] = []
    for g in groups:
        for s in g.stages:
            if s.stage not in names:
                names.append(s.stage)
    return names


def _unit_section(
    unit: Unit, groups: list[GroupFigures], comparisons: list[Comparison], language: Language
) -> Section:
    def t(key: str, **values: object) -> str:
        return text(key, language, **values)

    strategy, experiment, segment, currency = unit
    named = [strategy or t("no_strategy"), experiment, segment, currency]
    title = " / ".join(part for part in named if part is not None)
    charts = [
        Chart(
            svg.line_chart(
                {
                    _arm_name(g): [
                        (p.day, p.recovery_rate)
                        for p in g.recovery_curve
                        if p.recovery_rate is not None
                    ]
                    for g in groups
                },
                title=f"{t('recovery_curve')}: {title}",
                x_label=t("days_since_opening"),
                y_label=t("share_recovered"),
                percent=True,
            )
        )
    ]
    stages = _stage_order(groups)
    charts.append(
        Chart(
            svg.funnel(
                stages,
                {
                    _arm_name(g): [
                        next((s.reached for s in g.stages if s.stage == name), 0)
                        / max(g.cases_opened, 1)
                        for name in stages
                    ]
                    for g in groups
                },
                title=f"{t('funnel')}: {title}",
                value_label=t("share_of_cases"),
            )
        )
    )
    for g in groups:
        roll = g.roll_rates
        used = [i for i, line in enumerate(roll.counts) if sum(line)]
        if not used:
            continue
        charts.append(
            Chart(
                svg.heat_map(
                    [roll.from_stages[i] for i in used],
                    [t(s) if s in roll.closed_states else s for s in roll.to_states],
                    [roll.rates[i] for i in used],
                    title=f"{t('roll_rates')}: {_arm_name(g)}",
                    x_label=t("roll_to"),
                    y_label=t("roll_from"),
                ),
                caption=f"{t('case_weeks')}: {sum(sum(roll.counts[i]) for i in used)}",
            )
        )
    tables = [_comparison_table(c, language) for c in comparisons]
    tables.append(_stage_table(groups, language))
    return Section(title, charts=charts, tables=tables)


def _comparison_table(c: Comparison, language: Language) -> TableData:
    def t(key: str, **values: object) -> str:
        return text(key, language, **values)

    return TableData(
        f"{t('comparisons')}: {c.challenger_arm} ({c.challenger_policy}) - "
        f"{c.champion_arm} ({c.champion_policy})",
        [
            t("metric"),
            t("champion"),
            t("challenger"),
            t("difference"),
            t("interval", level=c.confidence),
            t("p_value"),
            t("test"),
        ],
        [
            [
                t(m.metric),
                formats.figure(m.metric, m.champion),
                formats.figure(m.metric, m.challenger),
                formats.difference(m.metric, m.difference),
                formats.interval(m.metric, m.ci_low, m.ci_high),
                formats.p_value(m.p_value),
                f"{m.test} (n = {m.n_champion}, {m.n_challenger})",
            ]
            for m in c.metrics
        ],
        [False, True, True, True, True, True, False],
    )


def _stage_table(groups: list[GroupFigures], language: Language) -> TableData:
    def t(key: str, **values: object) -> str:
        return text(key, language, **values)

    columns = (
        "arm", "stage", "reached", "entered", "contacts", "right_party_contact_rate",
        "amount_recovered", "cured", "promises",
    )  # fmt: skip
    return TableData(
        t("stages"),
        [t(c) for c in columns],
        [
            [
                _arm_name(g),
                s.stage,
                str(s.reached),
                str(s.entered),
                str(s.contacts),
                formats.percent(s.right_party_contact_rate),
                formats.amount(s.recovered),
                str(s.cured),
                f"{s.promises_kept} / {s.promises_kept + s.promises_broken}",
            ]
            for g in groups
            for s in g.stages
        ],
        [False, False, True, True, True, True, True, True, True],
    )
