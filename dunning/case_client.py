"""Talking to cases from outside: status, listing, operator actions and signals.

Shared by the CLI, the demo and tests, so every caller gets the same checks: an
unknown or closed case is a clear error, never a silent no-op.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, get_args

from pydantic import BaseModel
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from schemas.call_tasks import ClaimAnswer, ClaimCheck
from schemas.case import case_id_for
from schemas.commands import Pause, Payment, Resume
from schemas.refusals import Refusal
from schemas.status import ActionResult, CaseStateName, CaseStatus
from schemas.strategy import SLUG_PATTERN
from workflows.loan_collection import LoanCollection
from workflows.search import ARM, CASE_STATE, DAYS_PAST_DUE, EXPERIMENT, POLICY, SEGMENT, STAGE

Update = UpdateMethodMultiParam[[LoanCollection, Any], ActionResult]


class CaseError(LookupError):
    pass


class CaseNotFound(CaseError):
    def __init__(self, case_id: str) -> None:
        super().__init__(f"no case {case_id!r}")


class CaseClosed(CaseError):
    def __init__(self, case_id: str) -> None:
        super().__init__(f"case {case_id!r} is closed")


class ActionRejected(CaseError):
    """The case's update validator (or handler) refused the action; nothing was recorded.
    `code` says which rule refused (None only for a failure that is not a refusal)."""

    def __init__(self, reason: str, code: Refusal | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code


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


async def attempt_check(
    client: Client, workflow_id: str, idempotency_key: str, at: datetime
) -> ClaimAnswer:
    """Whether the case still allows the attempt in flight under `idempotency_key` at
    `at` (a collector's claim of its call task); an unknown case refuses."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        answer: ClaimAnswer = await handle.query(
            LoanCollection.attempt_check, ClaimCheck(idempotency_key=idempotency_key, at=at)
        )
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return ClaimAnswer(allowed=False, rule="case_not_found", detail="no such case")
        raise
    return answer


async def act(client: Client, case_id: str, update: Update, command: BaseModel) -> ActionResult:
    """Run one of the case's operator updates — the method itself, e.g.
    `LoanCollection.offer_settlement` — and return what it recorded and the new status.

    Raises CaseNotFound / CaseClosed (nothing was sent to a case), and ActionRejected
    with the workflow's code and reason when the update is refused. The update goes
    straight to the case (one round trip); only when Temporal does not find a running
    case does a describe tell an unknown case from a closed one.
    """
    handle = client.get_workflow_handle(case_id)
    try:
        result: ActionResult = await handle.execute_update(update, command)
    except WorkflowUpdateFailedError as exc:
        raise _rejection(exc) from exc
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            await _handle(client, case_id, must_be_open=True)  # raises the right one
            raise CaseClosed(case_id) from exc
        raise
    return result


def _rejection(exc: WorkflowUpdateFailedError) -> ActionRejected:
    cause = exc.cause
    if not isinstance(cause, ApplicationError):
        return ActionRejected(str(cause))
    code = cause.details[0] if cause.type == "Rejected" and cause.details else None
    try:
        return ActionRejected(cause.message, Refusal(code) if code is not None else None)  # type: ignore[call-arg]
    except ValueError:  # a code this client does not know (a newer worker)
        return ActionRejected(cause.message)


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


_FILTERS = {
    "stage": STAGE,
    "segment": SEGMENT,
    "arm": ARM,
    "state": CASE_STATE,
    "policy": POLICY,
}
# What a filter's value may be (it goes into a list query, so nothing else gets in).
_POLICY_REF = r"^[a-z0-9][a-z0-9_-]{0,39}@[0-9]{1,9}$"
_PATTERNS = {"policy": (_POLICY_REF, "NAME@VERSION, e.g. default@1")}
CASE_STATES: tuple[str, ...] = get_args(CaseStateName)


# The days-past-due filters' bounds (`dpd_from`, `dpd_to`): a whole number of days.
MAX_DAYS_PAST_DUE = 36_500


def days_filter(name: str, value: str | int | None) -> int | None:
    """A days-past-due filter's value (from a query string or a number), or None when
    blank; a ValueError naming `name` when it is not a whole number of days in range."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    problem = f"{name}: a whole number of days from 0 to {MAX_DAYS_PAST_DUE}"
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise ValueError(problem)
        value = int(value.strip())
    if not 0 <= value <= MAX_DAYS_PAST_DUE:
        raise ValueError(problem)
    return value


async def list_cases(
    client: Client,
    stage: str | None = None,
    limit: int = 1000,
    *,
    segment: str | None = None,
    arm: str | None = None,
    state: str | None = None,
    policy: str | None = None,
    dpd_from: int | None = None,
    dpd_to: int | None = None,
) -> list[CaseListing]:
    """Cases by their search attributes (no personal data there), newest first; filtered
    by stage, by the strategy's segment, by arm (`champion` or a challenger's name), by
    state (open, paused, closed, audit_blocked), by policy (`NAME@VERSION`) and by days
    past due (`dpd_from` to `dpd_to`, both included; as the case last published them)."""
    query = 'WorkflowType = "LoanCollection"'
    low, high = days_filter("dpd_from", dpd_from), days_filter("dpd_to", dpd_to)
    if low is not None and high is not None and high < low:
        raise ValueError(f"dpd_to: {high} is below dpd_from ({low})")
    if low is not None:
        query += f" AND {DAYS_PAST_DUE.name} >= {low}"
    if high is not None:
        query += f" AND {DAYS_PAST_DUE.name} <= {high}"
    filters = (
        ("stage", stage),
        ("segment", segment),
        ("arm", arm),
        ("state", state),
        ("policy", policy),
    )
    for name, value in filters:
        if value is None:
            continue
        if name == "state":
            if value not in CASE_STATES:
                raise ValueError(f"state: one of {', '.join(CASE_STATES)}")
        else:
            pattern, shape = _PATTERNS.get(
                name, (SLUG_PATTERN, "lower-case letters, digits, _ and - only (40 at most)")
            )
            if not re.fullmatch(pattern, value):
                raise ValueError(f"{name}: {shape}")
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
