"""Portfolios to simulate: a case file as `dunning open` reads it, or a generated one.

Generated portfolios are synthetic consumer loans, reproducible from their seed: the
same `generate(n, seed)` gives the same cases on every machine. Names and phone
numbers are made up (numbers in ranges that validate but are never dialled).
"""

from __future__ import annotations

import hashlib
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pydantic import ValidationError

from dunning.case_files import describe_errors, read_rows
from schemas.case import CaseInput

PRODUCTS = (("consumer-instalment", 0.7), ("cash-loan", 0.3))
ZONES = (("Asia/Shanghai", 0.85), ("Asia/Urumqi", 0.15))
DUE_REFERENCE = date(2027, 3, 1)  # generated loans fell due this many days past due before


class PortfolioError(ValueError):
    """A portfolio that cannot be read or has invalid rows (each named with its field)."""


def _pick(rng: random.Random, choices: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def generate(count: int, seed: int, start: date = DUE_REFERENCE) -> list[CaseInput]:
    """`count` synthetic cases: balances around 3,000 CNY (log-normal), mostly opened
    at 1 day past due, risk scores 0..1000 with a backend segment from them (`a` below
    300, `b` below 650, `c` above)."""
    rng = random.Random(seed)
    cases = []
    for i in range(count):
        principal = Decimal(str(round(min(max(rng.lognormvariate(7.9, 0.6), 300), 50_000), 2)))
        dpd = 1 if rng.random() < 0.6 else rng.randint(2, 20)
        risk = rng.randint(0, 1000)
        contacts = (
            [{"name": f"Contact {i}", "phone": f"+86 137 {i // 10000 % 10000:04d} {i % 10000:04d}"}]
            if rng.random() < 0.5
            else []
        )
        cases.append(
            CaseInput.model_validate(
                {
                    "borrower": {
                        "id": f"SB-{seed}-{i:06d}",
                        "name": f"Borrower {i}",
                        "phones": [f"+86 138 {i // 10000 % 10000:04d} {i % 10000:04d}"],
                        "timezone": _pick(rng, ZONES),
                        "language": "en" if rng.random() < 0.1 else "zh-CN",
                        "emergency_contacts": contacts,
                    },
                    "loan": {
                        "id": f"SIM-{seed}-{i:06d}",
                        "currency": "CNY",
                        "principal": str(principal),
                        "interest": str((principal * Decimal("0.05")).quantize(Decimal("0.01"))),
                        "fees": "20.00",
                        "due_date": (start - timedelta(days=dpd)).isoformat(),
                        "days_past_due": dpd,
                        "product": _pick(rng, PRODUCTS),
                    },
                    "risk_score": risk,
                    "segment": "a" if risk < 300 else "b" if risk < 650 else "c",
                }
            )
        )
    return cases


def read(path: Path) -> list[CaseInput]:
    """Every case of a .json or .csv file, or PortfolioError naming each invalid row."""
    try:
        rows = read_rows(path)
    except (OSError, ValueError) as exc:
        raise PortfolioError(f"{path}: {exc}") from exc
    cases: list[CaseInput] = []
    problems: list[str] = []
    for number, raw in enumerate(rows, start=1):
        try:
            cases.append(CaseInput.model_validate(raw))
        except ValidationError as exc:
            problems.append(f"row {number}: {describe_errors(exc)}")
    if problems:
        raise PortfolioError(f"{path}: " + "; ".join(problems[:20]))
    ids = [case.loan.id for case in cases]
    if len(set(ids)) != len(ids):
        raise PortfolioError(f"{path}: the same loan id appears twice")
    return cases


def opening(start: datetime, loan_id: str, spread: timedelta) -> datetime:
    """When a case opens on the simulated clock: `start` plus a fixed share of `spread`
    from the SHA-256 of its loan id (backends report cases through the day), whole
    seconds, the same under every policy and seed."""
    if spread <= timedelta(0):
        return start
    digest = hashlib.sha256(f"opening:{loan_id}".encode()).digest()
    seconds = int.from_bytes(digest[:8], "big") % int(spread.total_seconds())
    return start + timedelta(seconds=seconds)
