"""Opening cases: one, or a batch from JSON or CSV (`starter.py`, `dunning open`,
`POST /cases`).

Each row is validated before anything is started: an invalid row starts nothing
and is reported with the field and the problem; a loan that already has a case
is reported as such and left alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo

import asyncpg
from pydantic import ValidationError
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities import audit_store
from dunning.case_files import describe_errors, read_rows
from dunning.datafiles import read_once
from dunning.policies import PolicyError
from dunning.settings import Settings, get_settings
from dunning.strategies import StrategyError, choose
from schemas.case import CaseInput, dates_problem
from workflows.inputs import LoanCollectionInput
from workflows.loan_collection import LoanCollection
from workflows.search import (
    ARM,
    CASE_STATE,
    DAYS_PAST_DUE,
    EXPERIMENT,
    POLICY,
    SEGMENT,
    STAGE,
)

T = TypeVar("T")

__all__ = ["describe_errors", "open_case", "open_cases", "read_rows", "workflow_input"]

Outcome = Literal["opened", "already_open", "already_closed", "invalid"]
MAX_CONCURRENT_STARTS = 32


@dataclass(frozen=True)
class RowResult:
    row: int
    loan_id: str | None
    outcome: Outcome
    detail: str = ""

    @property
    def case_id(self) -> str | None:
        return f"case-{self.loan_id}" if self.loan_id else None


# --- opening ---------------------------------------------------------------------------


def workflow_input(case: CaseInput, settings: Settings | None = None) -> LoanCollectionInput:
    """The case with the policy it opens with: its own, or the active strategy's choice."""
    chosen = choose(case, settings or get_settings())
    return LoanCollectionInput(case=case, policy=chosen.policy, assignment=chosen.assignment)


def search_attributes(params: LoanCollectionInput) -> TypedSearchAttributes:
    """What `dunning cases` lists a new case by; the strategy's placement is set here,
    once: the workflow never changes it."""
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(STAGE, "opening"),
        SearchAttributePair(CASE_STATE, "open"),
        SearchAttributePair(POLICY, params.policy.ref),
        SearchAttributePair(DAYS_PAST_DUE, params.case.loan.days_past_due),
    ]
    placed = params.assignment
    if placed is not None:
        pairs.append(SearchAttributePair(SEGMENT, placed.segment))
        pairs.append(SearchAttributePair(ARM, placed.arm))
        if placed.experiment is not None:
            pairs.append(SearchAttributePair(EXPERIMENT, placed.experiment))
    return TypedSearchAttributes(pairs)


def opening_problems(case: CaseInput, now: datetime | None = None) -> list[tuple[str, str]]:
    """(field, problem) pairs a valid case still fails when it opens `now`: checks
    against the clock, which belong to the opening and not to the model (events are
    parsed again on replay, years later). Today: the loan's due date and days past due
    must agree (`schemas.case.dates_problem`) on the borrower's local date."""
    moment = now or datetime.now(UTC)
    today = moment.astimezone(ZoneInfo(case.borrower.timezone)).date()
    found = dates_problem(case.loan, today)
    return [found] if found is not None else []


CLOSED_BEFORE = (
    "a case for this loan was opened before and its record is kept in the audit log "
    "(Temporal no longer holds it); open a new delinquency under a new loan id"
)


async def open_case(
    client: Client,
    settings: Settings,
    row: int,
    raw: Any,
    *,
    pool: asyncpg.Pool | None = None,
    logged: Collection[str] | None = None,
) -> RowResult:
    """Validate and open one case (a `CaseInput` is validated already). `pool` (the audit
    store) is used to refuse a loan whose earlier case is still in the audit log; without
    one, a connection is made. `logged`: the case ids of a batch that the audit log held
    when the batch began (`logged_cases`), so a row costs no lookup of its own."""
    loan_id: str | None
    if isinstance(raw, CaseInput):
        case, loan_id = raw, raw.loan.id
    elif not isinstance(raw, dict):
        return RowResult(row, None, "invalid", "(row): must be an object")
    else:
        loan_id = loan_id_of(raw)
        try:
            case = CaseInput.model_validate(raw)
        except ValidationError as exc:
            return RowResult(row, loan_id, "invalid", describe_errors(exc))
    try:
        params = workflow_input(case, settings)
    except ValidationError as exc:
        return RowResult(row, loan_id, "invalid", describe_errors(exc))
    except PolicyError as exc:
        return RowResult(row, loan_id, "invalid", f"policy: {exc}")
    except StrategyError as exc:
        return RowResult(row, loan_id, "invalid", f"strategy: {exc}")
    problems = opening_problems(case)
    if problems:
        detail = "; ".join(f"{field}: {problem}" for field, problem in problems)
        return RowResult(row, loan_id, "invalid", detail)
    if (
        case.case_id in logged
        if logged is not None
        else await _closed_before(settings, pool, case.case_id)
    ):
        # Temporal's retention removed the old case, so its workflow id is free again,
        # but its audit rows, outbox and agreement keys remain: a new case under the
        # same id would collide with them (it failed on its first audit append).
        try:
            await client.get_workflow_handle(case.case_id).describe()
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                raise
            return RowResult(row, case.loan.id, "already_closed", CLOSED_BEFORE)
    try:
        await client.start_workflow(
            LoanCollection.run,
            params,
            id=case.case_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=search_attributes(params),
            static_summary=f"loan {case.loan.id} ({params.policy.ref})",
        )
    except WorkflowAlreadyStartedError:
        described = await client.get_workflow_handle(case.case_id).describe()
        running = described.status == WorkflowExecutionStatus.RUNNING
        return RowResult(
            row,
            case.loan.id,
            "already_open" if running else "already_closed",
            "a case for this loan is already open"
            if running
            else "a case for this loan exists and is closed",
        )
    return RowResult(row, case.loan.id, "opened", case.case_id)


async def _closed_before(settings: Settings, pool: asyncpg.Pool | None, case_id: str) -> bool:
    if pool is not None:
        return await audit_store.has_rows(pool, case_id)
    conn = await asyncpg.connect(settings.database_url)
    try:
        return await audit_store.has_rows(conn, case_id)
    finally:
        await conn.close()


async def logged_cases(pool: asyncpg.Pool, rows: Iterable[Any]) -> frozenset[str]:
    """The case ids among `rows` (raw rows or `CaseInput`s) that the audit log holds:
    one query for a batch instead of one per row."""
    ids = {
        f"case-{loan_id}"
        for raw in rows
        if (loan_id := raw.loan.id if isinstance(raw, CaseInput) else loan_id_of(raw))
    }
    return await audit_store.logged_among(pool, sorted(ids)) if ids else frozenset()


def loan_id_of(raw: Any) -> str | None:
    if isinstance(raw, dict) and isinstance(raw.get("loan"), dict):
        value = raw["loan"].get("id")
        return value if isinstance(value, str) and len(value) <= 64 else None
    return None


async def open_cases(
    client: Client,
    settings: Settings,
    rows: Iterable[Any],
    on_result: Callable[[RowResult], None] | None = None,
) -> list[RowResult]:
    """Open every row, a bounded number at a time, on one view of the policy, strategy
    and template files (`read_once`); results in row order."""
    gate = asyncio.Semaphore(MAX_CONCURRENT_STARTS)
    rows = list(rows)

    async with asyncpg.create_pool(
        settings.database_url, min_size=1, max_size=MAX_CONCURRENT_STARTS
    ) as pool:
        logged = await logged_cases(pool, rows)

        async def one(index: int, raw: Any) -> RowResult:
            async with gate:
                result = await open_case(client, settings, index, raw, pool=pool, logged=logged)
            if on_result is not None:
                on_result(result)
            return result

        with read_once():
            return await per_loan_in_row_order(rows, one)


async def per_loan_in_row_order(
    rows: Sequence[Any], one: Callable[[int, Any], Awaitable[T]]
) -> list[T]:
    """`one(row number, row)` for every row: rows of different loans concurrently, rows
    naming the same loan id one after another in file order, so the first valid row opens
    the case and a repeat finds it open (never the other way round). Results in row
    order."""
    groups: dict[str | tuple[str, int], list[tuple[int, Any]]] = {}
    for index, raw in enumerate(rows, start=1):
        groups.setdefault(loan_id_of(raw) or ("row", index), []).append((index, raw))
    results: dict[int, T] = {}

    async def in_order(group: list[tuple[int, Any]]) -> None:
        for index, raw in group:
            results[index] = await one(index, raw)

    await asyncio.gather(*(in_order(group) for group in groups.values()))
    return [results[index] for index in sorted(results)]
