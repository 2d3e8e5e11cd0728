"""Cases: open (one or a batch), status, listing, history."""

from __future__ import annotations

import asyncio
import json
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, ValidationError
from temporalio.service import RPCError, RPCStatusCode

from dunning import case_client, opening
from dunning.api import auth
from dunning.api.cases import case_id_from_path, case_problem
from dunning.api.problems import Problem, ProblemDetails, field_problems, invalid
from dunning.api.services import services
from dunning.api.tokens import Principal
from dunning.audit.history import TimelineRow, case_timeline
from dunning.datafiles import read_once
from dunning.policies import PolicyError
from dunning.problem_types import PROBLEM_JSON
from dunning.settings import Settings
from dunning.strategies import StrategyError, choose
from schemas.case import CaseInput
from schemas.status import CaseStatus
from schemas.strategy import SLUG_PATTERN

MAX_BATCH = 1000

router = APIRouter(tags=["cases"])


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error responses."""
    return {
        code: {"model": ProblemDetails, "content": {PROBLEM_JSON: {}}, "description": "problem"}
        for code in codes
    }


class OpenedCase(BaseModel):
    case_id: str
    loan_id: str
    outcome: Literal["opened"] = "opened"


class CaseBatch(BaseModel):
    """Several cases in one request; each is opened (or refused) on its own."""

    cases: list[CaseInput] = Field(min_length=1, max_length=MAX_BATCH)


class FieldError(BaseModel):
    field: str
    problem: str


class RowResult(BaseModel):
    row: int = Field(description="1-based position in `cases`")
    loan_id: str | None
    case_id: str | None
    outcome: Literal["opened", "already_open", "already_closed", "invalid"]
    detail: str = ""
    errors: list[FieldError] | None = None


class BatchResult(BaseModel):
    results: list[RowResult]
    counts: dict[str, int]


class CaseListing(BaseModel):
    case_id: str
    stage: str
    state: str
    policy: str
    days_past_due: int | None
    segment: str | None = Field(default=None, description="the strategy's segment")
    experiment: str | None = None
    arm: str | None = Field(default=None, description="champion, or the challenger's name")


class CaseList(BaseModel):
    cases: list[CaseListing]


class History(BaseModel):
    case_id: str
    events: list[TimelineRow]


OPEN_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "oneOf": [
                        {"$ref": "#/components/schemas/CaseInput"},
                        {"$ref": "#/components/schemas/CaseBatch"},
                    ]
                }
            }
        },
    }
}


def _validate(raw: Any, settings: Settings) -> tuple[CaseInput | None, list[dict[str, str]]]:
    """The case, or the field problems (its policy, or the active strategy's, must load;
    the dates agree today)."""
    if not isinstance(raw, dict):
        return None, [{"field": "(case)", "problem": "must be an object"}]
    try:
        case = CaseInput.model_validate(raw)
        choose(case, settings)
    except ValidationError as exc:
        return None, field_problems(exc.errors(include_input=False, include_url=False))
    except PolicyError as exc:
        return None, [{"field": "policy", "problem": str(exc)}]
    except StrategyError as exc:
        return None, [{"field": "policy", "problem": f"the active strategy: {exc}"}]
    problems = opening.opening_problems(case)
    if problems:
        return None, [{"field": field, "problem": problem} for field, problem in problems]
    return case, []


@router.post(
    "/cases",
    summary="Open a case, or a batch of cases",
    description="One case object opens one case: 201, or a problem (409 already open, "
    '422 invalid with the fields named). `{"cases": [...]}` opens each case on its '
    "own and answers 200 with one result per row.",
    response_model=None,
    status_code=201,
    responses={
        201: {"model": OpenedCase, "description": "the case was opened"},
        200: {"model": BatchResult, "description": "a batch: one result per row"},
        **problems(401, 403, 409, 422),
    },
    openapi_extra=OPEN_BODY,
)
async def open_cases(
    request: Request, principal: Principal = Depends(auth.allow(auth.OPEN_CASES))
) -> JSONResponse:
    try:
        payload = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise invalid([{"field": "body", "problem": "not valid JSON"}]) from None
    if isinstance(payload, dict) and "cases" in payload and "loan" not in payload:
        return await _open_batch(request, payload)
    current = services(request)
    case, errors = _validate(payload, current.settings)
    if case is None:
        raise invalid(errors)
    result = await opening.open_case(current.client, current.settings, 1, case, pool=current.pool)
    if result.outcome == "opened":
        return JSONResponse(
            OpenedCase(case_id=case.case_id, loan_id=case.loan.id).model_dump(),
            status_code=201,
            headers={"Location": f"/cases/{case.case_id}"},
        )
    slug = "already-open" if result.outcome == "already_open" else "already-closed"
    raise Problem(409, slug, f"{result.detail}: {case.case_id}")


async def _open_batch(request: Request, payload: dict[str, Any]) -> JSONResponse:
    rows = payload["cases"]
    extra = sorted(set(payload) - {"cases"})
    if extra:
        raise invalid([{"field": name, "problem": "unknown field"} for name in extra])
    if not isinstance(rows, list) or not 1 <= len(rows) <= MAX_BATCH:
        raise invalid([{"field": "cases", "problem": f"a list of 1 to {MAX_BATCH} cases"}])
    current = services(request)
    gate = asyncio.Semaphore(opening.MAX_CONCURRENT_STARTS)
    logged = await opening.logged_cases(current.pool, rows)

    async def one(index: int, raw: Any) -> RowResult:
        case, errors = _validate(raw, current.settings)
        if case is None:
            return RowResult(
                row=index,
                loan_id=opening.loan_id_of(raw),
                case_id=None,
                outcome="invalid",
                detail="; ".join(f"{e['field']}: {e['problem']}" for e in errors),
                errors=[FieldError(**e) for e in errors],
            )
        async with gate:
            done = await opening.open_case(
                current.client, current.settings, index, case, pool=current.pool, logged=logged
            )
        return RowResult(
            row=index,
            loan_id=done.loan_id,
            case_id=case.case_id,
            outcome=done.outcome,
            detail="" if done.outcome == "opened" else done.detail,
        )

    with read_once():
        results = await opening.per_loan_in_row_order(rows, one)
    counts = {
        outcome: sum(1 for r in results if r.outcome == outcome)
        for outcome in ("opened", "already_open", "already_closed", "invalid")
    }
    return JSONResponse(
        BatchResult(results=results, counts=counts).model_dump(mode="json"), status_code=200
    )


@router.get(
    "/cases/{case_id}",
    summary="A case's status",
    description="Stage, balance, holds, next action and last events; no personal data. "
    "`case_id` is `case-<loan id>` or the loan id.",
    response_model=CaseStatus,
    responses=problems(401, 403, 404),
)
async def case_status(
    case_id: str, request: Request, _: Principal = Depends(auth.allow(auth.READ_STATUS))
) -> CaseStatus:
    case_id = case_id_from_path(case_id)
    try:
        return await case_client.status(services(request).client, case_id)
    except case_client.CaseError as exc:
        raise case_problem(exc, case_id) from None


@router.get(
    "/cases",
    summary="List cases",
    description="Newest first, from the cases' search attributes (no personal data).",
    response_model=CaseList,
    responses=problems(401, 403, 422),
)
async def list_cases(
    request: Request,
    stage: str | None = Query(
        None, pattern=r"^[a-z][a-z_]{0,39}$", description="only cases in this stage"
    ),
    segment: str | None = Query(
        None, pattern=SLUG_PATTERN, description="only cases the strategy put in this segment"
    ),
    arm: str | None = Query(
        None, pattern=SLUG_PATTERN, description="only cases in this arm (champion, a challenger)"
    ),
    state: str | None = Query(
        None, description="only cases in this state: open, paused, closed, audit_blocked"
    ),
    policy: str | None = Query(None, description="only cases on this policy (NAME@VERSION)"),
    dpd_from: int | None = Query(
        None,
        ge=0,
        le=case_client.MAX_DAYS_PAST_DUE,
        description="only cases this many days past due or more",
    ),
    dpd_to: int | None = Query(
        None,
        ge=0,
        le=case_client.MAX_DAYS_PAST_DUE,
        description="only cases this many days past due or fewer",
    ),
    limit: int = Query(100, ge=1, le=1000),
    _: Principal = Depends(auth.allow(auth.READ)),
) -> CaseList:
    try:
        found = await case_client.list_cases(
            services(request).client,
            stage,
            limit=limit,
            segment=segment,
            arm=arm,
            state=state,
            policy=policy,
            dpd_from=dpd_from,
            dpd_to=dpd_to,
        )
    except ValueError as exc:
        where, _sep, problem = str(exc).partition(": ")
        raise invalid([{"field": where, "problem": problem}]) from None
    return CaseList(cases=[CaseListing(**vars(item)) for item in found])


@router.get(
    "/cases/{case_id}/history",
    summary="A case's timeline from the audit log",
    description="Every recorded event in order; the borrower's name, phones and address "
    "are masked.",
    response_model=History,
    responses=problems(401, 403, 404),
)
async def case_history(
    case_id: str, request: Request, _: Principal = Depends(auth.allow(auth.READ))
) -> History:
    case_id = case_id_from_path(case_id)
    current = services(request)
    rows = await case_timeline(current.pool, case_id)
    if not rows:
        try:
            await current.client.get_workflow_handle(case_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                raise Problem(404, "case-not-found", f"no case {case_id}") from None
            raise
    return History(case_id=case_id, events=list(rows))
