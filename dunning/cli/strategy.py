"""`dunning strategy check FILE | show NAME`: strategies are data, checked before use."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from dunning.cli.common import console, fail, settings
from dunning.strategies import StrategyError, load, load_file
from schemas.strategy import CHAMPION, AmountBand, Conditions, IntBand, SegmentRule, Strategy

strategy_app = typer.Typer(
    help="Strategies: which policy a new case gets (segments, champion and challengers).",
    no_args_is_help=True,
)


@strategy_app.command()
def check(file: Path = typer.Argument(..., help="a strategy .toml file")) -> None:
    """Validate a strategy file and the policies it names; exit 1 naming the file, field
    and problem."""
    settings()
    try:
        strategy = load_file(file)
    except StrategyError as exc:
        fail(str(exc))
    segments = ", ".join(rule.segment for rule in strategy.rules)
    console.print(f"ok: {strategy.ref} ({segments})", highlight=False)


@strategy_app.command()
def show(
    name: str = typer.Argument(..., help="NAME or NAME@VERSION"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show a strategy: its segments in order, what each takes, and its arms."""
    settings()
    try:
        strategy = load(name)
    except StrategyError as exc:
        fail(str(exc))
    if as_json:
        print(strategy.model_dump_json(indent=2))
        return
    console.print(_table(strategy))


def _band(band: AmountBand | IntBand) -> str:
    if band.min is not None and band.max is not None:
        return f"{band.min}..<{band.max}"
    return f">= {band.min}" if band.min is not None else f"< {band.max}"


def conditions(when: Conditions) -> str:
    """A rule's conditions in one line; the catch-all says so."""
    parts = []
    for field in ("product", "currency", "country", "language", "segment"):
        values = getattr(when, field)
        if values is not None:
            parts.append(f"{field} in {', '.join(values)}")
    for field, label in (("amount", "balance"), ("days_past_due", "dpd"), ("risk_score", "risk")):
        band = getattr(when, field)
        if band is not None:
            parts.append(f"{label} {_band(band)}")
    return "; ".join(parts) or "every other case"


def arms(rule: SegmentRule) -> str:
    rest = 1 - sum(c.share for c in rule.challengers)
    lines = [f"{CHAMPION}: {rule.policy} ({rest:.0%})"]
    lines += [f"{c.arm}: {c.policy} ({c.share:.0%})" for c in rule.challengers]
    return "\n".join(lines)


def _table(strategy: Strategy) -> Table:
    table = Table(title=f"{strategy.ref}: {strategy.description}")
    for column in ("#", "segment", "when", "experiment", "arms"):
        table.add_column(column)
    for index, rule in enumerate(strategy.rules):
        table.add_row(
            str(index), rule.segment, conditions(rule.when), rule.experiment or "-", arms(rule)
        )
    table.caption = (
        "first matching rule wins; arms by SHA-256 of '<experiment>:<loan id>' in [0, 1)"
    )
    return table
