"""Test data: valid case inputs and policies, varied by keyword."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from temporalio.client import Client, WorkflowHandle

from dunning.policies import load
from dunning.settings import Settings
from schemas.case import CaseInput
from schemas.policy import ActionSpec, Policy, Stage
from schemas.status import CaseStatus
from workflows.loan_collection import LoanCollection


def case_payload(loan_id: str = "L-1001", **overrides: Any) -> dict[str, Any]:
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


def due_date_for(days_past_due: int, timezone: str = "Asia/Shanghai") -> str:
    """The due date a loan `days_past_due` days overdue today (borrower-local) has."""
    try:
        today = datetime.now(ZoneInfo(timezone)).date()
    except (ValueError, KeyError):  # a bad-input test's time zone: any date will do
        today = datetime.now(UTC).date()
    return (today - timedelta(days=days_past_due)).isoformat()


def case_input(loan_id: str = "L-1001", **overrides: Any) -> CaseInput:
    return CaseInput.model_validate(case_payload(loan_id, **overrides))


def policy(name: str = "default") -> Policy:
    return load(name)


def fast_policy(day: timedelta = timedelta(seconds=1)) -> Policy:
    """The demo policy's shape with a shorter day, for real-time tests."""
    return load("demo").model_copy(update={"day_length": day})


def fault_policy(day: timedelta, legal_day: int, sms_days: tuple[int, ...] = (0,)) -> Policy:
    """The demo policy cut down for the fault tests, which put 200 cases in flight:
    SMS reminders on `sms_days` of one stage (cases open at 1 day past due), then the
    legal handoff `legal_day` days in. Every workflow task and activity costs CPU on
    the worker and the dev server, so fewer steps per case is what lets 200 fit."""
    return Policy.model_validate(
        {
            **load("demo").model_dump(),
            "name": "fault",
            "day_length": day,
            "stages": (
                Stage(
                    name="reminder",
                    from_dpd=1,
                    actions=(ActionSpec(channel="sms", template="reminder", at_days=sms_days),),
                ),
                Stage(
                    name="legal",
                    from_dpd=1 + legal_day,
                    actions=(ActionSpec(channel="legal_handoff"),),
                ),
            ),
        }
    )


TOTAL = Decimal("1070.00")


async def open_with_starter(
    client: Client, settings: Settings, task_queue: str, case: CaseInput
) -> WorkflowHandle[LoanCollection, CaseStatus]:
    """Open `case` the way backends do (starter.open_case) on `task_queue`."""
    import starter

    result = await starter.open_case(
        client,
        settings.model_copy(update={"task_queue": task_queue}),
        1,
        case.model_dump(mode="json"),
    )
    assert result.outcome == "opened", result
    return client.get_workflow_handle_for(LoanCollection.run, case.case_id)
