"""The auditors' page of a case, `/ui/cases/{case}/audit`: what `dunning audit verify`
reports (the hash chain, the fold, the anchors and signed checkpoints, the live
comparison, each problem named), a reveal of the masked fields with a reason, and the
case's export (`dunning audit export`'s folder, as a zip) to download.

Nothing is re-implemented: `dunning.audit.verify.verify_case`, `dunning.audit.history`
(masking, `case_timeline`'s recorded reveal) and `dunning.audit.export`, through the
HTTP API's `dunning.api.routes_audit` (the same verify and download). Who may is the
API's `auth.AUDIT`. A reveal and an export are POSTs with the session's CSRF token and
a reason (`schemas.reveals.RevealTerms`), recorded in `audit_reveals` before anything
is shown or sent; the clear fields are on that one answer only (`no-store`, never in a
URL, never logged). See docs/console.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from dunning.api import auth
from dunning.api.cases import case_id_from_path
from dunning.api.problems import Problem
from dunning.api.routes_audit import export_download, unknown, verified
from dunning.api.services import services
from dunning.audit.history import case_timeline
from dunning.console.forms import field_errors, form_field
from dunning.console.messages import text
from dunning.console.routes import (
    SECURITY_HEADERS,
    Visitor,
    csrf_refused,
    posted_form,
    render,
    see,
    templates,
    visitor_of,
)
from dunning.console.sessions import PATH, csrf_ok
from schemas.reveals import RevealTerms

router = APIRouter(prefix=PATH, include_in_schema=False)
REASON = form_field("reason", RevealTerms.model_fields["reason"])


def may_audit(visitor: Visitor) -> bool:
    return visitor.principal is not None and visitor.principal.role in auth.AUDIT


templates.globals["may_audit"] = may_audit  # the case page links here for auditors


def _message(request: Request, visitor: Visitor, key: str, code: int) -> HTMLResponse:
    message = text(visitor.language, key)
    return render(request, visitor, "message.html.j2", code, message=message)


def _auditor(request: Request, visitor: Visitor, case: str) -> str | HTMLResponse:
    """The case id, if the visitor is an auditor and the id is one; else the page
    refusing them."""
    if not may_audit(visitor):
        return _message(request, visitor, "audit_only", 403)
    try:
        return case_id_from_path(case)
    except Problem:
        return _message(request, visitor, "not_found", 404)


def _page(
    request: Request, visitor: Visitor, case_id: str, code: int = 200, **values: Any
) -> HTMLResponse:
    return render(
        request, visitor, "audit.html.j2", code, case_id=case_id, reason_field=REASON, **values
    )


@router.get("/cases/{case}/audit")
async def audit_page(request: Request, case: str) -> Response:
    visitor = await visitor_of(request)
    case_id = _auditor(request, visitor, case)
    if isinstance(case_id, Response):
        return case_id
    report, unreadable = await verified(services(request), case_id)
    if unknown(report):
        return _message(request, visitor, "not_found", 404)
    return _page(request, visitor, case_id, report=report, unreadable=unreadable)


def _reason(posted: dict[str, str]) -> RevealTerms | dict[str, str]:
    try:
        return RevealTerms.model_validate({"reason": posted.get("reason", "")})
    except ValidationError as exc:
        return field_errors(exc)


async def _reasoned(
    request: Request, case: str, failed: str
) -> Response | tuple[Visitor, str, str, RevealTerms]:
    """What a reveal and an export both check first: the form's CSRF token, the
    auditor's right to the case, the reason. Either the refusal to answer with, or who
    asks, for which case, and why."""
    visitor = await visitor_of(request)
    posted = await posted_form(request)
    if not csrf_ok(visitor.session, posted.get("csrf")):
        return csrf_refused(request, visitor)
    case_id = _auditor(request, visitor, case)
    if isinstance(case_id, Response):
        return case_id
    assert visitor.principal is not None
    terms = _reason(posted)
    if not isinstance(terms, RevealTerms):
        return _page(request, visitor, case_id, 422, errors=terms, failed=failed)
    return visitor, case_id, visitor.principal.name, terms


@router.post("/cases/{case}/audit/reveal")
async def reveal(request: Request, case: str) -> Response:
    asked = await _reasoned(request, case, "reveal")
    if isinstance(asked, Response):
        return asked
    visitor, case_id, auditor, terms = asked
    # Recorded (same transaction as the read) before anything is shown.
    rows = await case_timeline(services(request).pool, case_id, auditor, terms.reason)
    if not rows:
        return _message(request, visitor, "not_found", 404)
    borrower = rows[0].payload.get("case", {}).get("borrower") or {}
    return _page(request, visitor, case_id, revealed=rows, borrower=borrower)


@router.post("/cases/{case}/audit/export")
async def export(request: Request, case: str) -> Response:
    asked = await _reasoned(request, case, "export")
    if isinstance(asked, Response):
        return asked
    visitor, case_id, auditor, terms = asked
    download = await export_download(services(request), case_id, auditor, terms.reason)
    if download is None:
        return _message(request, visitor, "not_found", 404)
    download.headers.update(SECURITY_HEADERS)
    return download


@router.get("/cases/{case}/audit/reveal")
@router.get("/cases/{case}/audit/export")
async def back_to_audit(request: Request, case: str) -> Response:
    """A reload or a history step to a POST's address: the audit page (nothing revealed)."""
    visitor = await visitor_of(request)
    try:
        case_id = case_id_from_path(case)
    except Problem:
        return _message(request, visitor, "not_found", 404)
    return see(f"{PATH}/cases/{case_id}/audit", request, visitor.session)
