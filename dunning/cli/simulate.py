"""`dunning simulate`: a portfolio through policies or a strategy, on the real decider."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from dunning.cli.common import console, fail, settings
from dunning.policies import PolicyError
from dunning.sim.portfolio import PortfolioError, generate, read
from dunning.sim.responses import ResponseModelError
from dunning.sim.responses import load as load_model
from dunning.sim.results import CHANNELS, Summary, compare
from dunning.sim.runner import (
    Clock,
    Placement,
    Simulation,
    as_document,
    by_policies,
    by_strategy,
    simulate,
)
from dunning.strategies import StrategyError, cached_policies
from dunning.strategies import load as load_strategy
from schemas.case import CaseInput

DEFAULT_START = "2027-03-01T09:00:00+08:00"  # a Monday morning in Shanghai, no holiday
CURVE_DAYS = (7, 14, 30, 60, 90, 120, 180, 365)


def simulate_command(
    portfolio: Path | None = typer.Argument(
        None, exists=True, dir_okay=False, help="cases as .json or .csv, as `dunning open` reads"
    ),
    generate_count: int | None = typer.Option(
        None, "--generate", min=1, max=1_000_000, help="simulate N generated cases instead"
    ),
    seed: int = typer.Option(1, help="seeds the generated portfolio, the borrowers, the bootstrap"),
    policy: list[str] = typer.Option(
        [], "--policy", help="run every case under this policy (repeat to compare several)"
    ),
    strategy: str | None = typer.Option(
        None, help="place cases by this strategy (default: the active one, DUNNING_STRATEGY)"
    ),
    model: str = typer.Option("baseline", help="borrower-response model: a name or a .toml/.json"),
    days: int = typer.Option(120, min=1, max=3650, help="policy days to follow each case"),
    start: str = typer.Option(DEFAULT_START, help="when the first case opens (ISO 8601, aware)"),
    spread_hours: float = typer.Option(
        10, min=0, max=24 * 30, help="cases open over this many hours from --start"
    ),
    compare_groups: tuple[str, str] | None = typer.Option(
        None, "--compare", help="A B: print B - A with a bootstrap confidence interval"
    ),
    resamples: int = typer.Option(1000, "--bootstrap", min=100, max=100_000),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Run a portfolio through one or more policies, or a strategy, on a simulated clock
    with the production decider and a borrower-response model; print the figures per
    policy or arm. Reproducible: the same inputs and seed give the same output."""
    current = settings()
    if (portfolio is None) == (generate_count is None):
        fail("give a portfolio file or --generate N (not both)", code=2)
    try:
        opened = datetime.fromisoformat(start)
    except ValueError:
        fail("--start: not an ISO 8601 date and time", code=2)
    if opened.tzinfo is None:
        fail("--start: give a time zone offset, e.g. 2027-03-01T09:00:00+08:00", code=2)
    try:
        cases = read(portfolio) if portfolio is not None else generate(generate_count or 0, seed)
        borrowers = load_model(model)
        placements, mode, strategy_ref = _place(cases, policy, strategy or current.strategy)
    except (PortfolioError, ResponseModelError, PolicyError, StrategyError) as exc:
        fail(str(exc), code=2)
    currencies = sorted({case.loan.currency for case in cases})
    if len(currencies) > 1:
        fail(
            f"the portfolio mixes currencies ({', '.join(currencies)}): simulate one at a time",
            code=2,
        )
    clock = Clock(opened, days, timedelta(hours=spread_hours))
    with Progress(
        TextColumn("simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        disable=as_json,
        transient=True,
    ) as progress:
        task = progress.add_task("simulate", total=len(placements))
        result = simulate(
            placements, borrowers, seed, clock, on_case=lambda: progress.advance(task)
        )
    comparison = None
    if compare_groups is not None:
        for label in compare_groups:
            if label not in result.groups:
                known = ", ".join(result.groups)
                fail(f"--compare: no group {label!r} (the groups are {known})", code=2)
        a, b = compare_groups
        method, diffs = compare(
            result.results[a], result.results[b], seed=seed, resamples=resamples
        )
        comparison = {"a": a, "b": b, "method": method, "metrics": [d.as_json() for d in diffs]}
    if as_json:
        document = as_document(result, mode, strategy_ref, currencies, comparison)
        print(json.dumps(document, indent=2))
        return
    _print(result, mode, strategy_ref, currencies[0] if currencies else "", comparison)


def _place(
    cases: list[CaseInput], policies: list[str], strategy_ref: str | None
) -> tuple[list[Placement], str, str | None]:
    load_policy = cached_policies()
    if strategy_ref is None and not policies:
        raise StrategyError("no strategy is configured: give --strategy NAME or --policy NAME")
    strategy = load_strategy(strategy_ref or "default")
    if policies:
        return (
            by_policies(cases, [load_policy(p) for p in policies], strategy),
            "policies",
            (strategy.ref),
        )
    return by_strategy(cases, strategy, load_policy), "strategy", strategy.ref


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _print(
    result: Simulation,
    mode: str,
    strategy: str | None,
    currency: str,
    comparison: dict[str, Any] | None,
) -> None:
    groups = list(result.groups.values())
    by = "policy" if mode == "policies" else "segment/arm"
    head = Table(
        title=f"{sum(g.cases for g in groups)} case runs, {result.days} days, model "
        f"{result.model}, seed {result.seed}" + (f", segments by {strategy}" if strategy else "")
    )
    head.add_column(by)
    for column in (
        "cases",
        f"at open ({currency})",
        "recovered",
        "recovery",
        "paid",
        "settled",
        "to legal",
        "other",
        "open",
        "promises kept",
        "cost",
        "cost / recovered",
    ):
        head.add_column(column, justify="right")
    for g in groups:
        other = sum(
            v
            for k, v in g.closed.items()
            if k not in ("paid", "settled", "transferred_to_legal", "open")
        )
        head.add_row(
            g.group,
            str(g.cases),
            f"{g.at_open:,.2f}",
            f"{g.recovered:,.2f}",
            _pct(g.recovery_rate),
            str(g.closed.get("paid", 0)),
            str(g.closed.get("settled", 0)),
            str(g.closed.get("transferred_to_legal", 0)),
            str(other),
            str(g.closed.get("open", 0)),
            _pct(g.promise_kept_rate),
            f"{g.cost:,.2f}",
            "-" if g.cost_per_recovered is None else f"{g.cost_per_recovered:.4f}",
        )
    console.print(head)
    console.print(_contacts(groups, by))
    console.print(_curve(groups, by, result.days))
    rules = _rules(groups, by)
    if rules is not None:
        console.print(rules)
    if comparison is not None:
        console.print(_comparison(comparison))


def _contacts(groups: list[Summary], by: str) -> Table:
    table = Table(title="contacts per case, by channel")
    table.add_column(by)
    for channel in CHANNELS:
        table.add_column(channel, justify="right")
    for g in groups:
        table.add_row(g.group, *(f"{g.contacts_per_case.get(c, 0):.2f}" for c in CHANNELS))
    return table


def _curve(groups: list[Summary], by: str, days: int) -> Table:
    marks = [d for d in CURVE_DAYS if d < days] + [days]
    table = Table(title="recovery curve: share of the amount at opening recovered by day")
    table.add_column(by)
    for day in marks:
        table.add_column(f"day {day}", justify="right")
    for g in groups:
        table.add_row(g.group, *(_pct(g.curve[day]) for day in marks))
    return table


def _rules(groups: list[Summary], by: str) -> Table | None:
    keys = sorted(
        {("deferred", r) for g in groups for r in g.deferrals}
        | {("skipped", r) for g in groups for r in g.skips}
        | {("refused", r) for g in groups for r in g.refused}
    )
    if not keys:
        return None
    table = Table(title="deferrals and skips by rule; borrower responses the case refused")
    table.add_column("")
    table.add_column("rule")
    for g in groups:
        table.add_column(g.group, justify="right")
    for kind, rule in keys:
        source = {"deferred": "deferrals", "skipped": "skips", "refused": "refused"}[kind]
        table.add_row(kind, rule, *(str(getattr(g, source).get(rule, 0)) for g in groups))
    return table


def _comparison(comparison: dict[str, Any]) -> Table:
    table = Table(
        title=f"{comparison['b']} - {comparison['a']}",
        caption=f"95% interval: {comparison['method']}",
    )
    for column in ("metric", comparison["a"], comparison["b"], "difference", "95% interval"):
        table.add_column(column, justify="right")

    def fmt(metric: str, value: float | None, points: bool = False) -> str:
        if value is None:
            return "-"
        if metric.endswith("_rate"):
            return f"{value * 100:+.2f} pp" if points else f"{value:.2%}"
        return f"{value:+.4f}" if points else f"{value:.4f}"

    for m in comparison["metrics"]:
        name = m["metric"]
        low, high = fmt(name, m["ci_low"], True), fmt(name, m["ci_high"], True)
        interval = "-" if m["ci_low"] is None else f"[{low}, {high}]"
        table.add_row(
            name.replace("_", " "),
            fmt(name, m["a"]),
            fmt(name, m["b"]),
            fmt(name, m["difference"], True),
            interval,
        )
    return table
