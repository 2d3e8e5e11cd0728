"""`dunning simulate`: a portfolio through policies or a strategy, on the real decider."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from dunning.charts.page import TableData
from dunning.cli.common import console, fail, settings
from dunning.policies import PolicyError
from dunning.sim import tables
from dunning.sim.page import simulation_page
from dunning.sim.portfolio import PortfolioError, generate, read
from dunning.sim.responses import ResponseModelError
from dunning.sim.responses import load as load_model
from dunning.sim.results import compare
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
    html: Path | None = typer.Option(
        None, "--html", dir_okay=False, help="also write a page of plots and tables here"
    ),
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
    currency = currencies[0] if currencies else ""
    if html is not None:
        page = simulation_page(result, mode, strategy_ref, currency, comparison)
        try:
            html.write_text(page, encoding="utf-8")
        except OSError as exc:
            fail(f"--html: cannot write {html}: {exc.strerror}", code=2)
    if as_json:
        document = as_document(result, mode, strategy_ref, currencies, comparison)
        print(json.dumps(document, indent=2))
        return
    _print(result, mode, strategy_ref, currency, comparison)


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


def _rich(data: TableData) -> Table:
    table = Table(title=data.title)
    for column, numeric in zip(data.columns, data.aligned().numeric, strict=True):
        table.add_column(column, justify="right" if numeric else "left")
    for row in data.rows:
        table.add_row(*row)
    return table


def _print(
    result: Simulation,
    mode: str,
    strategy: str | None,
    currency: str,
    comparison: dict[str, Any] | None,
) -> None:
    groups = list(result.groups.values())
    console.print(_rich(tables.summary(result, mode, strategy, currency)))
    console.print(_rich(tables.contacts(groups, mode)))
    console.print(_rich(tables.curve(groups, mode, result.days)))
    rules = tables.rules(groups)
    if rules is not None:
        console.print(_rich(rules))
    if comparison is not None:
        console.print(_rich(tables.comparison(comparison)))
