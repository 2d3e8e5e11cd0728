"""Custom search attributes: how `dunning cases` lists cases. Never personal data."""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

from schemas.status import CaseStateName
from workflows.state import CaseState

STAGE = SearchAttributeKey.for_keyword("DunningStage")
CASE_STATE = SearchAttributeKey.for_keyword("DunningCaseState")
POLICY = SearchAttributeKey.for_keyword("DunningPolicy")
DAYS_PAST_DUE = SearchAttributeKey.for_int("DunningDaysPastDue")
# The strategy's placement (schemas.strategy.Assignment): set once by the starter when
# the case opens, never upserted by the workflow.
SEGMENT = SearchAttributeKey.for_keyword("DunningSegment")
EXPERIMENT = SearchAttributeKey.for_keyword("DunningExperiment")
ARM = SearchAttributeKey.for_keyword("DunningArm")
# Every custom key: the local stack registers these when it starts Temporal.
ALL_KEYS: tuple[SearchAttributeKey[Any], ...] = (
    STAGE,
    CASE_STATE,
    POLICY,
    DAYS_PAST_DUE,
    SEGMENT,
    EXPERIMENT,
    ARM,
)


def case_state_name(state: CaseState, audit_blocked: bool = False) -> CaseStateName:
    if audit_blocked:
        return "audit_blocked"  # operators must see it first, whatever else holds
    if state.is_closed:
        return "closed"
    return "paused" if state.paused is not None else "open"


def attributes_for(
    state: CaseState, days_past_due: int, audit_blocked: bool = False
) -> dict[str, str | int]:
    stage = state.stage
    return {
        STAGE.name: stage.name if stage is not None else "opening",
        CASE_STATE.name: case_state_name(state, audit_blocked),
        POLICY.name: state.policy.ref,
        DAYS_PAST_DUE.name: days_past_due,
    }


def updates(values: dict[str, str | int]) -> list[SearchAttributeUpdate[Any]]:
    return [
        STAGE.value_set(str(values[STAGE.name])),
        CASE_STATE.value_set(str(values[CASE_STATE.name])),
        POLICY.value_set(str(values[POLICY.name])),
        DAYS_PAST_DUE.value_set(int(values[DAYS_PAST_DUE.name])),
    ]
