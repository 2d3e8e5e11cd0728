"""The workflow's input, including what continue-as-new carries over."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from schemas.case import CaseInput
from schemas.policy import Policy
from schemas.strategy import Assignment
from workflows.state import CaseState


class LoanCollectionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    case: CaseInput
    policy: Policy
    assignment: Assignment | None = Field(
        default=None, description="how the active strategy chose `policy`; None if the case did"
    )
    carried: CaseState | None = Field(
        default=None, description="state carried over by continue-as-new; None on the first run"
    )
    max_events_per_run: int | None = Field(
        default=None,
        ge=10,
        description="continue-as-new after this many events in one run, on top of the SDK's "
        "suggestion; for tests and for capping history size",
    )
