"""How the report's numbers read, in the terminal, in CSV-free text and on the page."""

from __future__ import annotations

from decimal import Decimal

DASH = "-"


def percent(value: float | None, digits: int = 1) -> str:
    return DASH if value is None else f"{value * 100:.{digits}f}%"


def number(value: float | None, digits: int = 2) -> str:
    return DASH if value is None else f"{value:,.{digits}f}"


def amount(value: Decimal) -> str:
    return f"{value:,}"


def p_value(value: float | None) -> str:
    if value is None:
        return DASH
    return "<0.001" if value < 0.001 else f"{value:.3f}"


# Figures that are shares, shown as percentages; the others as numbers.
RATES = frozenset({"recovery_rate", "cure_rate", "promise_kept_rate", "right_party_contact_rate"})


def figure(metric: str, value: float | None) -> str:
    return percent(value) if metric in RATES else number(value)


def difference(metric: str, value: float | None) -> str:
    if value is None:
        return DASH
    if metric in RATES:
        return f"{value * 100:+.1f} pt"
    return f"{value:+,.2f}"


def interval(metric: str, low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return DASH
    return f"{difference(metric, low)} .. {difference(metric, high)}"
