"""The demo portfolio: ~20 synthetic cases on the accelerated policies, placed by the
demo strategy (small balances on `demo`; the rest split between `demo`, the champion,
and the `demo-calls` challenger), with a script of payments and pauses so every path
of the skeleton shows up in a minute or two.

The borrowers are made up; the phone numbers are in ranges that validate but are
never dialled (the sandbox provider only writes its outbox).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from temporalio.client import Client

from dunning import case_client
from schemas.case import CaseInput
from schemas.commands import Pause, Payment, Resume

NAMES = ["Li Wei", "Zhang Min", "Wang Fang", "Liu Yang", "Chen Jing", "Ann Lee", "Bo Chen"]
ZONES = ["Asia/Shanghai", "Asia/Urumqi", "America/New_York", "Europe/London"]


STRATEGY = "demo"  # the strategy the demo opens its portfolio under


def portfolio(tag: str, count: int = 20, policy: str | None = None) -> list[CaseInput]:
    """The demo cases; with no `policy` they name none, and the strategy chooses."""
    cases = []
    for i in range(count):
        principal = Decimal(800 + 150 * i)
        cases.append(
            CaseInput.model_validate(
                {
                    "borrower": {
                        "id": f"DB-{tag}-{i:02d}",
                        "name": NAMES[i % len(NAMES)],
                        "phones": [f"+86 138 00{i:02d} {1000 + i}"],
                        "timezone": ZONES[i % len(ZONES)],
                        "language": "zh-CN" if i % 3 else "en",
                        # Every other borrower named an emergency contact: messaged
                        # (without the debt) once the borrower proves unreachable.
                        "emergency_contacts": [
                            {
                                "name": NAMES[(i + 3) % len(NAMES)],
                                "phone": f"+86 137 00{i:02d} {2000 + i}",
                            }
                        ]
                        if i % 2 == 0
                        else [],
                    },
                    "loan": {
                        "id": f"DEMO-{tag}-{i:02d}",
                        "currency": "CNY",
                        "principal": str(principal),
                        "interest": "40.00",
                        "fees": "15.00",
                        "due_date": (date.today() - timedelta(days=1 + i % 9)).isoformat(),
                        "days_past_due": 1 + i % 9,
                        "product": "demo-instalment",
                    },
                    "policy": policy,
                    "risk_score": 200 + (i * 137) % 700,
                }
            )
        )
    return cases


Step = Callable[[Client, str, CaseInput], Awaitable[None]]


@dataclass(frozen=True)
class Scripted:
    case_index: int
    at_day: float
    step: Step
    label: str


def _pay(fraction: str, ref: str) -> Step:
    async def step(client: Client, case_id: str, case: CaseInput) -> None:
        amount = (case.loan.outstanding * Decimal(fraction)).quantize(Decimal("0.01"))
        await case_client.pay(client, case_id, Payment(amount=amount, reference=ref, source="demo"))

    return step


async def _pause(client: Client, case_id: str, case: CaseInput) -> None:
    await case_client.pause(client, case_id, Pause(reason="hardship review", operator="demo-op"))


async def _resume(client: Client, case_id: str, case: CaseInput) -> None:
    await case_client.resume(client, case_id, Resume(reason="review done", operator="demo-op"))


SCRIPT = [
    Scripted(0, 2, _pay("1", "demo-full-0"), "pays in full"),
    Scripted(1, 3, _pay("1", "demo-full-1"), "pays in full"),
    Scripted(2, 5, _pay("1", "demo-full-2"), "pays in full"),
    Scripted(3, 2, _pay("0.4", "demo-part-3a"), "pays 40%"),
    Scripted(3, 6, _pay("1", "demo-part-3b"), "pays the rest"),
    Scripted(4, 3, _pay("0.25", "demo-part-4"), "pays 25%"),
    Scripted(5, 1, _pause, "paused"),
    Scripted(5, 4, _resume, "resumed"),
    Scripted(6, 2, _pause, "paused"),
    Scripted(6, 3, _resume, "resumed"),
]


async def run_script(
    client: Client, cases: list[CaseInput], day: timedelta, on_step: Callable[[str], None]
) -> None:
    """Play the script against the portfolio; a step on a closed case is skipped."""
    steps = sorted((s for s in SCRIPT if s.case_index < len(cases)), key=lambda s: s.at_day)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for scripted in steps:
        delay = start + scripted.at_day * day.total_seconds() - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        case = cases[scripted.case_index]
        try:
            await scripted.step(client, case.case_id, case)
            on_step(f"{case.case_id} {scripted.label}")
        except case_client.CaseClosed:
            on_step(f"{case.case_id} closed before it {scripted.label}")
