"""A sample case and accelerated policies: for benchmarks, demos of the API and tests.

One definition of "a typical overdue consumer loan" (a borrower in Shanghai, 1,070 CNY
outstanding, one day past due unless told otherwise), varied by keyword, with its due
date derived from its days past due so that it agrees with today when it opens.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from dunning.policies import load
from schemas.case import CaseInput
from schemas.policy import Policy

SAMPLE_TOTAL = Decimal("1070.00")  # principal 1000.00 + interest 50.00 + fees 20.00


def due_date_for(days_past_due: int, timezone: str = "Asia/Shanghai") -> str:
    """The due date a loan `days_past_due` days overdue today (borrower-local) has."""
    try:
        today = datetime.now(ZoneInfo(timezone)).date()
    except (ValueError, KeyError):  # a malformed time zone: any date will do
        today = datetime.now(UTC).date()
    return (today - timedelta(days=days_past_due)).isoformat()


def sample_payload(loan_id: str = "L-1001", **overrides: Any) -> dict[str, Any]:
    """A case as a backend sends it (JSON-ready); `borrower=` and `loan=` update those
    parts, other keywords the case itself."""
    borrower = {
        "id": f"B-{loan_id}",
        "name": "Wang Xiaoming",
        "phones": ["+86 138 0013 8000", "+86 139 1234 5678"],
        "timezone": "Asia/Shanghai",
        "language": "zh-CN",
        "address": "No. 1 Century Avenue, Pudong, Shanghai",
    }
    loan = {
        "id": loan_id,
        "currency": "CNY",
        "principal": "1000.00",
        "interest": "50.00",
        "fees": "20.00",
        "due_date": "",  # derived from days_past_due below, unless given
        "days_past_due": 1,
        "product": "consumer-instalment",
    }
    borrower.update(overrides.pop("borrower", {}))
    loan_overrides = overrides.pop("loan", {})
    loan.update(loan_overrides)
    if "due_date" not in loan_overrides and isinstance(loan["days_past_due"], int):
        # Opening checks that the two agree with today (in the borrower's time zone).
        loan["due_date"] = due_date_for(loan["days_past_due"], str(borrower["timezone"]))
    return {"borrower": borrower, "loan": loan, **overrides}


def sample_case(loan_id: str = "L-1001", **overrides: Any) -> CaseInput:
    return CaseInput.model_validate(sample_payload(loan_id, **overrides))


def accelerated(day: timedelta = timedelta(seconds=1)) -> Policy:
    """The demo policy's shape with a day of `day` (at most an hour: see day_length)."""
    return load("demo").model_copy(update={"day_length": day})


def daily_sms(days: int) -> Policy:
    """A reminder stage with an SMS every day for `days` days, then a legal handoff that
    closes the case: a long life with nothing from outside (bench/long_life.py, its test)."""
    return Policy.model_validate(
        {
            "name": "daily",
            "version": 1,
            "compliance": "cn",
            "stages": [
                {
                    "name": "reminder",
                    "from_dpd": 1,
                    "actions": [{"channel": "sms", "template": "reminder", "every_days": 1}],
                },
                {"name": "legal", "from_dpd": days + 1, "actions": [{"channel": "legal_handoff"}]},
            ],
        }
    )
