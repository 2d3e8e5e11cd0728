"""Commands keep their wire shape: recorded histories hold them as JSON.

`tests/wire/commands.json` was written by the commands as they were before they were
split into what a caller sends (`…Terms`) and who acts; every command built the same
way must serialise to the same bytes, and every sample must parse back to itself.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from schemas import commands as c
from tests.factories import fast_policy

SAMPLES: dict[str, str] = json.loads(
    (Path(__file__).parent / "wire" / "commands.json").read_text(encoding="utf-8")
)
OP: dict[str, Any] = {"operator": "op-7", "reason": "agreed on the phone"}
AT = datetime(2026, 11, 3, 10, 0, tzinfo=timezone(timedelta(hours=8)))


def _built() -> dict[str, BaseModel]:
    two = (
        c.Instalment(amount=Decimal("400.00"), due=date(2026, 12, 1)),
        c.Instalment(amount=Decimal("670.00"), due=date(2027, 1, 1)),
    )
    return {
        "Payment": c.Payment(amount=Decimal("250.00"), reference="PAY-77", source="core-banking"),
        "OperatorAction": c.OperatorAction(**OP),
        "Pause": c.Pause(until=AT, **OP),
        "Resume": c.Resume(**OP),
        "CeaseContact": c.CeaseContact(channel="sms", **OP),
        "HardStop": c.HardStop(kind="represented", **OP),
        "ThirdPartyOptOut": c.ThirdPartyOptOut(contact=1, **OP),
        "MigratePolicy": c.MigratePolicy(
            policy=fast_policy().model_copy(update={"version": 2}), **OP
        ),
        "PromiseToPay": c.PromiseToPay(amount=Decimal("300.00"), pay_by=date(2026, 11, 20), **OP),
        "RepaymentPlan": c.RepaymentPlan(instalments=two, **OP),
        "Settlement": c.Settlement(
            amount=Decimal("800.00"), pay_by=date(2026, 11, 30), supervisor="sup-2", **OP
        ),
        "SettlementWithinShare": c.Settlement(
            amount=Decimal("900.00"), pay_by=date(2026, 11, 30), **OP
        ),
        "DisputeOpen": c.DisputeOpen(**OP),
        "DisputeResolve": c.DisputeResolve(outcome="for_borrower", **OP),
        "VisitBooking": c.VisitBooking(at=AT, collectors=("c-1", "c-2"), **OP),
        "VisitReport": c.VisitReport(outcome="not_home", **OP),
        "WriteOff": c.WriteOff(supervisor="sup-2", **OP),
    }


BUILT = _built()


def test_every_sample_has_its_command() -> None:
    assert set(BUILT) == set(SAMPLES)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_command_serialises_to_its_recorded_bytes(name: str) -> None:
    assert BUILT[name].model_dump_json() == SAMPLES[name]


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_a_recorded_command_parses_back_to_the_same_bytes(name: str) -> None:
    model = type(BUILT[name])
    assert model.model_validate_json(SAMPLES[name]).model_dump_json() == SAMPLES[name]
