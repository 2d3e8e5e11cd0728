"""Test data: valid case inputs and policies, varied by keyword."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import Client, WorkflowHandle

from dunning.policies import load
from dunning.samples import SAMPLE_TOTAL, accelerated, sample_case, sample_payload
from dunning.settings import Settings
from schemas.case import CaseInput
from schemas.policy import ActionSpec, Policy, Stage
from schemas.status import CaseStatus
from workflows.loan_collection import LoanCollection

# One definition of the sample case, shared with the benchmarks (dunning.samples).
case_payload = sample_payload
case_input = sample_case
TOTAL = SAMPLE_TOTAL


def policy(name: str = "default") -> Policy:
    return load(name)


fast_policy = accelerated


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
