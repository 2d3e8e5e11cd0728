"""Talking to cases from outside: status, listing, operator actions and signals.

Shared by the CLI, the demo and tests, so every caller gets the same checks: an
unknown or closed case is a clear error, never a silent no-op.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from schemas.case import case_id_for
from schemas.commands import Pause, Payment, Resume
from schemas.status import CaseStatus
from schemas.strategy import SLUG_PATTERN
from workflows.loan_collection import LoanCollection
from workflows.search import ARM, CASE_STATE, DAYS_PAST_DUE, EXPERIMENT, POLICY, SEGMENT, STAGE


class CaseError(LookupError):
    pass


class CaseNotFound(CaseError):
    def __init__(self, case_id: str) -> None:
        super().__init__(f"no case {case_id!r}")


class CaseClosed(CaseError):
    def __init__(self, case_id: str) -> None:
        super().__init__(f"case {case_id!r} is closed")


class ActionRejected(CaseError):
    """The case's update validator (or handler) refused the action; nothing was recorded."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def normalise_case_id(value: str) -> str:
    """Accept `case-L1` or the bare loan id `L1`."""
    return value if value.startswith("case-") else case_id_for(value)


async def _handle(client: Client, case_id: str, *, must_be_open: bool) -> WorkflowHandle:  # type: ignore[type-arg]
    handle = client.get_workflow_handle(case_id)
    try:
        described = await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CaseNotFound(case_id) from exc
        raise
    if must_be_open and described.status != WorkflowExecutionStatus.RUNNING:
        raise CaseClosed(case_id)
    return handle


async def status(client: Client, case_id: str) -> CaseStatus:
    handle = await _handle(client, case_id, must_be_open=False)
    return await handle.query(LoanCollection.status)


async def act(client: Client, case_id: str, update: str, command: BaseModel) -> CaseStatus:
    """Run one of the case's operator updates (`promise_to_pay`, `record_payment`, ...)
    and return the status it answers with.

    Raises CaseNotFound / CaseClosed before sending anything, and ActionRejected with
    the workflow's reason when the update is refused.
    """
    handle = await _handle(client, case_id, must_be_open=True)
    try:
        result: CaseStatus = await handle.execute_update(update, command, result_type=CaseStatus)
    except WorkflowUpdateFailedError as exc:
        raise ActionRejected(_rejection(exc)) from exc
    except RPCError as exc:
        # The case closed between the check above and the update.
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CaseClosed(case_id) from exc
        raise
    return result


def _rejection(exc: WorkflowUpdateFailedError) -> str:
    cause = exc.cause
    return cause.message if isinstance(cause, ApplicationError) else str(cause)


async def pay(client: Client, case_id: str, payment: Payment) -> None:
    handle = await _handle(client, case_id, must_be_open=True)
    await handle.signal(LoanCollection.payment, payment)


async def pause(client: Client, case_id: str, command: Pause) -> None:
    handle = await _handle(client, case_id, must_be_open=True)
    await handle.signal(LoanCollection.pause, command)


async def resume(client: Client, case_id: str, command: Resume) -> None:
    handle = await _handle(client, case_id, must_be_open=True)
    await handle.signal(LoanCollection.resume, command)


@dataclass(frozen=True)
class CaseListing:
    case_id: str
    stage: str
    state: str
    policy: str
    days_past_due: int | None
    segment: str | None = None
    experiment: str | None = None
    arm: str | None = None


_FILTERS = {"stage": STAGE, "segment": SEGMENT, "arm": ARM}


async def list_cases(
    client: Client,
    stage: str | None = None,
    limit: int = 1000,
    *,
    segment: str | None = None,
    arm: str | None = None,
) -> list[CaseListing]:
    """Cases by their search attributes (no personal data there), newest first; filtered
    by stage, by the strategy's segment and by arm (`champion` or a challenger's name)."""
    query = 'WorkflowType = "LoanCollection"'
    for name, value in (("stage", stage), ("segment", segment), ("arm", arm)):
        if value is None:
            continue
        if not re.fullmatch(SLUG_PATTERN, value):
            raise ValueError(f"{name}: lower-case letters, digits, _ and - only (40 at most)")
        query += f' AND {_FILTERS[name].name} = "{value}"'
    listings: dict[str, CaseListing] = {}
    async for execution in client.list_workflows(query, limit=limit):
        if execution.id in listings:
            continue  # an older run of a continued-as-new case
        attrs = execution.typed_search_attributes
        listings[execution.id] = CaseListing(
            case_id=execution.id,
            stage=attrs.get(STAGE) or "-",
            state=attrs.get(CASE_STATE) or "-",
            policy=attrs.get(POLICY) or "-",
            days_past_due=attrs.get(DAYS_PAST_DUE),
            segment=attrs.get(SEGMENT),
            experiment=attrs.get(EXPERIMENT),
            arm=attrs.get(ARM),
        )
    return list(listings.values())


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | float | str) else None
