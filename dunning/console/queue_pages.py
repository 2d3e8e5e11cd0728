"""The collectors' pages: `/ui/queue` (their team's queue: its depth, the oldest task's
wait, the tasks they hold, a Claim button) and `/ui/tasks/{id}` (a claimed task: the
case, its stage and balance, a button that shows the phone number, the outcome form).

The claim, the guard's check at claim time and the completion are `dunning.work_queue`;
the check asks the case (`case_client.attempt_check`); a promise is the table of
actions' `promise` row, sent to the case before the task completes (a refusal is shown
in the form and the task stays claimed). Every form is a POST with the session's CSRF
token. The phone number is shown to the collector holding the task only, on that one
answer (`no-store`), after the reveal is recorded in `audit_reveals` (the collector's
name, the task's number); it is never in a URL, a title or a log line. See
docs/console.md, "The collectors' queue".
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from dunning import case_client, work_queue
from dunning.action_table import ACTIONS
from dunning.api.cases import REFUSAL_STATUS
from dunning.api.services import services
from dunning.audit.history import case_timeline
from dunning.console.forms import field_errors
from dunning.console.messages import text
from dunning.console.routes import (
    Visitor,
    csrf_refused,
    posted_form,
    render,
    see,
    visitor_of,
)
from dunning.console.sessions import PATH, csrf_ok
from schemas.call_tasks import OUTCOMES, ClaimAnswer, Outcome
from schemas.commands import PromiseTerms
from schemas.roles import Role
from workflows.loan_collection import LoanCollection

router = APIRouter(prefix=PATH, include_in_schema=False)
QUEUE = f"{PATH}/queue"
PROMISE = next(action for action in ACTIONS if action.update is LoanCollection.promise_to_pay)


def _collector(request: Request, visitor: Visitor) -> HTMLResponse | None:
    """None if the visitor is a collector, else the page refusing them."""
    if visitor.principal is not None and visitor.principal.role is Role.collector:
        return None
    message = text(visitor.language, "queue_only")
    return render(request, visitor, "message.html.j2", 403, message=message)


async def _queue_page(
    request: Request, visitor: Visitor, code: int = 200, **values: Any
) -> HTMLResponse:
    assert visitor.principal is not None
    pool = services(request).pool
    team = visitor.principal.queue
    depth = await work_queue.depth(pool, team)
    held = await work_queue.claimed_by(pool, visitor.principal.name)
    waited = datetime.now(UTC) - depth.oldest if depth.oldest is not None else None
    return render(
        request,
        visitor,
        "queue.html.j2",
        code,
        team=team,
        depth=depth,
        waited_minutes=int(waited.total_seconds() // 60) if waited is not None else None,
        held=held,
        **values,
    )


@router.get("/queue")
async def queue_page(request: Request) -> Response:
    visitor = await visitor_of(request)
    refused = _collector(request, visitor)
    if refused is not None:
        return refused
    completed = request.query_params.get("completed", "")
    return await _queue_page(
        request, visitor, completed=int(completed) if completed.isdigit() else None
    )


@router.post("/queue/claim")
async def claim(request: Request) -> Response:
    visitor = await visitor_of(request)
    posted = await posted_form(request)
    if not csrf_ok(visitor.session, posted.get("csrf")):
        return csrf_refused(request, visitor)
    refused = _collector(request, visitor)
    if refused is not None:
        return refused
    assert visitor.principal is not None
    current = services(request)

    async def check(task: work_queue.Task) -> ClaimAnswer:
        return await case_client.attempt_check(
            current.client, task.workflow_id, task.idempotency_key, datetime.now(UTC)
        )

    got = await work_queue.claim(
        current.pool, visitor.principal.name, visitor.principal.queue, check
    )
    if got.task is None:
        return await _queue_page(request, visitor, empty=True, refused=got.refused)
    if got.refused:  # the collector sees why tasks were passed over, then their task
        return await _task_page(request, visitor, got.task, refused=got.refused)
    return see(f"{PATH}/tasks/{got.task.id}", request, visitor.session)


async def _held(request: Request, visitor: Visitor, task: str) -> work_queue.Task | HTMLResponse:
    refused = _collector(request, visitor)
    if refused is not None:
        return refused
    assert visitor.principal is not None
    try:
        return await work_queue.held(
            services(request).pool, int(task) if task.isdigit() else -1, visitor.principal.name
        )
    except work_queue.NotYours:
        message = text(visitor.language, "no_task")
        return render(request, visitor, "message.html.j2", 404, message=message)


async def _task_page(
    request: Request, visitor: Visitor, task: work_queue.Task, code: int = 200, **values: Any
) -> HTMLResponse:
    return render(request, visitor, "task.html.j2", code, task=task, outcomes=OUTCOMES, **values)


@router.get("/tasks/{task}")
async def task_page(request: Request, task: str) -> Response:
    visitor = await visitor_of(request)
    found = await _held(request, visitor, task)
    if isinstance(found, Response):
        return found
    return await _task_page(request, visitor, found)


@router.post("/tasks/{task}/phone")
async def phone(request: Request, task: str) -> Response:
    """The phone number of a claimed task, recorded first (`audit_reveals`)."""
    visitor = await visitor_of(request)
    posted = await posted_form(request)
    if not csrf_ok(visitor.session, posted.get("csrf")):
        return csrf_refused(request, visitor)
    found = await _held(request, visitor, task)
    if isinstance(found, Response):
        return found
    assert visitor.principal is not None
    if found.state != "claimed":
        return await _task_page(request, visitor, found, 409)
    rows = await case_timeline(
        services(request).pool,
        found.case_id,
        visitor.principal.name,
        f"call task {found.id}: the claiming collector's call",
    )
    borrower = (rows[0].payload.get("case") or {}).get("borrower") or {} if rows else {}
    phones = borrower.get("phones") or []
    number = phones[found.phone_index] if found.phone_index < len(phones) else None
    return await _task_page(request, visitor, found, phone=number)


@router.post("/tasks/{task}/complete")
async def complete(request: Request, task: str) -> Response:
    visitor = await visitor_of(request)
    posted = await posted_form(request)
    if not csrf_ok(visitor.session, posted.get("csrf")):
        return csrf_refused(request, visitor)
    found = await _held(request, visitor, task)
    if isinstance(found, Response):
        return found
    assert visitor.principal is not None
    who = visitor.principal.name
    outcome = next((known for known in OUTCOMES if known == posted.get("outcome")), None)
    if outcome is None:
        errors = {"outcome": f"one of {', '.join(OUTCOMES)}"}
        return await _task_page(request, visitor, found, 422, errors=errors, posted=posted)
    promise: tuple[Decimal, date] | None = None
    terms: PromiseTerms | None = None
    if outcome == "promise":
        try:
            terms = PromiseTerms.model_validate(
                {
                    "amount": posted.get("amount", "").strip(),
                    "pay_by": posted.get("pay_by", "").strip(),
                    "reason": f"promised on call task {found.id}",
                }
            )
        except ValidationError as exc:
            errors = field_errors(exc)
            return await _task_page(request, visitor, found, 422, errors=errors, posted=posted)
        promise = (terms.amount, terms.pay_by)
    client = services(request).client

    async def send_promise(claimed: work_queue.Task) -> None:
        assert terms is not None
        await case_client.act(client, claimed.case_id, PROMISE.update, PROMISE.build(terms, who))

    chosen: Outcome = outcome
    try:
        done = await work_queue.complete(
            services(request).pool, found.id, who, chosen, promise, send_promise
        )
    except work_queue.NotClaimed as exc:
        message = text(visitor.language, "task_ended", state=exc.state)
        return await _task_page(request, visitor, found, 409, ended=message)
    except (case_client.CaseNotFound, case_client.CaseClosed):
        refusal = {"reason": text(visitor.language, "closed_case"), "code": None}
        return await _task_page(request, visitor, found, 409, refusal=refusal, posted=posted)
    except case_client.ActionRejected as exc:
        code = exc.code
        status_code = REFUSAL_STATUS[code.kind] if code is not None else 409
        refusal = {"reason": exc.reason, "code": code.value if code else None}
        return await _task_page(
            request, visitor, found, status_code, refusal=refusal, posted=posted
        )
    if done.state != "completed":
        message = text(visitor.language, "task_ended", state=done.state)
        return await _task_page(request, visitor, done, 409, ended=message)
    return see(f"{QUEUE}?completed={done.id}", request, visitor.session)
