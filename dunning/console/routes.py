"""The console's pages under `/ui`, served by the API's app (`dunning api`, the demo).

Server-rendered (Jinja2); htmx (vendored, `static/htmx.min.js`) boosts links and forms
so a page changes without a full reload, and every page and form works without it.
Who may do what is the API's: the same tokens, roles and table of actions. See
docs/console.md.
"""

from __future__ import annotations

import inspect
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from temporalio.service import RPCError

from dunning import case_client
from dunning.action_table import ACTIONS, Action, InvalidTerms
from dunning.api import tokens
from dunning.api.cases import REFUSAL_STATUS, case_id_from_path
from dunning.api.problems import Problem
from dunning.api.services import services
from dunning.api.tokens import Principal
from dunning.audit.history import TimelineRow, case_timeline
from dunning.console import dashboard
from dunning.console.forms import ActionForm, action_form, field_errors, slug, terms_from_form
from dunning.console.messages import LANGUAGE_NAMES, text
from dunning.console.sessions import (
    COOKIE,
    LANGUAGES,
    PATH,
    Language,
    Session,
    Signer,
    csrf_ok,
    new_session,
)
from dunning.settings import Settings
from schemas.commands import ApprovalTerms
from schemas.refusals import Refusal
from schemas.roles import Role, may

HERE = Path(__file__).parent
PAGE_SIZE = 25
MAX_LISTED = 1000  # the listing's limit: pages past it are not offered
CONSOLE_ROLES = frozenset({Role.operator, Role.supervisor, Role.auditor, Role.collector})
DASHBOARD = frozenset({Role.supervisor})
BY_SLUG: dict[str, Action] = {slug(action): action for action in ACTIONS}
# Events that are contacts, for the case page's table by channel.
CONTACT_EVENTS = (
    "contact_attempted",
    "contact_deferred",
    "contact_skipped",
    "contact_withdrawn",
    "contact_expired",
    "contact_failed",
)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

router = APIRouter(prefix=PATH, include_in_schema=False)
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html", "j2"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class SignIn(Exception):
    """Send the browser to the sign-in page (no session, or an idle one)."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("sign in")
        self.expired = expired


@dataclass(frozen=True)
class Visitor:
    session: Session
    principal: Principal | None

    @property
    def language(self) -> Language:
        return self.session.language


def signer(request: Request) -> Signer:
    found = getattr(request.app.state, "console_signer", None)
    if not isinstance(found, Signer):
        raise RuntimeError("the console is not installed (dunning.console.routes.install)")
    return found


def _browser_language(request: Request) -> Language:
    wanted = request.headers.get("accept-language", "").lower()
    return "zh-CN" if wanted.startswith("zh") else "en"


def _anonymous(request: Request) -> Session:
    """The cookie's session if it is a valid one (even signed in), else a new anonymous
    one: the sign-in form's CSRF token lives there."""
    found = signer(request).load(request.cookies.get(COOKIE))
    return found if found is not None else new_session(_browser_language(request))


async def _visitor(request: Request) -> Visitor:
    """The signed-in visitor, or SignIn."""
    keys = signer(request)
    session = keys.load(request.cookies.get(COOKIE))
    if session is None or session.token_hash is None:
        raise SignIn()
    now = int(time.time())
    if keys.expired(session, now):
        raise SignIn(expired=True)
    principal = await tokens.lookup_hash(services(request).pool, session.token_hash)
    if principal is None or principal.role not in CONSOLE_ROLES:
        raise SignIn()
    return Visitor(session.touched(now), principal)


def _set_cookie(request: Request, response: Response, session: Session) -> None:
    response.set_cookie(
        COOKIE,
        signer(request).dump(session),
        max_age=signer(request).idle_seconds,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _render(
    request: Request, visitor: Visitor, template: str, code: int = 200, **values: Any
) -> HTMLResponse:
    language = visitor.language

    def t(key: str, **kw: object) -> str:
        return text(language, key, **kw)

    body = templates.get_template(template).render(
        t=t,
        visitor=visitor,
        csrf=visitor.session.csrf,
        lang=language,
        languages=LANGUAGE_NAMES,
        path=request.url.path,
        when=_when,
        **values,
    )
    response = HTMLResponse(body, status_code=code, headers=SECURITY_HEADERS)
    _set_cookie(request, response, visitor.session)
    return response


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


def _see(location: str, request: Request, session: Session | None) -> Response:
    response = RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)
    if session is not None:
        _set_cookie(request, response, session)
    return response


async def _form(request: Request) -> dict[str, str]:
    """A posted urlencoded form (first value of each field)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        return {}
    raw = (await request.body()).decode("utf-8", "replace")
    return {key: values[0] for key, values in parse_qs(raw, keep_blank_values=True).items()}


def _csrf_refused(request: Request, visitor: Visitor) -> HTMLResponse:
    return _render(
        request, visitor, "message.html.j2", 403, message=text(visitor.language, "bad_csrf")
    )


# --- signing in and out ----------------------------------------------------------------


@router.get("")
@router.get("/")
async def home() -> Response:
    return RedirectResponse(f"{PATH}/cases", status_code=303)


@router.get("/sign-in")
async def sign_in_page(request: Request, expired: int = 0, out: int = 0) -> HTMLResponse:
    session = _anonymous(request)
    notice = "expired" if expired else "signed_out" if out else None
    return _render(request, Visitor(session, None), "sign_in.html.j2", notice=notice)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    session = _anonymous(request)
    posted = await _form(request)
    visitor = Visitor(session, None)
    if not csrf_ok(signer(request).load(request.cookies.get(COOKIE)), posted.get("csrf")):
        return _csrf_refused(request, visitor)
    language: Language = session.language
    chosen = posted.get("language")
    for known in LANGUAGES:
        if chosen == known:
            language = known
    visitor = Visitor(new_session(language), None)
    principal = await tokens.lookup(services(request).pool, posted.get("token", "").strip())
    if principal is None or principal.role not in CONSOLE_ROLES:
        error = "bad_token" if principal is None else "no_console_role"
        return _render(request, visitor, "sign_in.html.j2", 401, error=error, notice=None)
    token_hash = tokens.token_hash(posted["token"].strip())
    return _see(_landing(principal), request, new_session(language, token_hash))


def _landing(principal: Principal) -> str:
    """Where a principal starts: collectors at their queue, everyone else the cases."""
    return f"{PATH}/queue" if principal.role is Role.collector else f"{PATH}/cases"


def _queue_instead(request: Request, visitor: Visitor) -> Response | None:
    """Collectors work from their queue: the case listing and pages are not theirs."""
    if visitor.principal is not None and visitor.principal.role is Role.collector:
        return _see(f"{PATH}/queue", request, visitor.session)
    return None


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    session = signer(request).load(request.cookies.get(COOKIE))
    posted = await _form(request)
    if not csrf_ok(session, posted.get("csrf")):
        return _csrf_refused(request, Visitor(session or new_session(), None))
    response = _see(f"{PATH}/sign-in?out=1", request, None)
    response.delete_cookie(COOKIE, path=PATH)
    return response


@router.post("/language")
async def language(request: Request) -> Response:
    session = _anonymous(request)
    posted = await _form(request)
    if not csrf_ok(signer(request).load(request.cookies.get(COOKIE)), posted.get("csrf")):
        return _csrf_refused(request, Visitor(session, None))
    chosen = next((known for known in LANGUAGES if known == posted.get("language")), None)
    back = posted.get("back", "")
    if not back.startswith(f"{PATH}/") or "//" in back or "\\" in back:
        back = f"{PATH}/cases"
    if chosen is None:
        return _see(back, request, session)
    return _see(back, request, Session(session.csrf, session.seen, chosen, session.token_hash))


# --- cases -----------------------------------------------------------------------------

FILTERS = ("stage", "state", "policy", "arm", "dpd_from", "dpd_to")


@router.get("/cases")
async def cases(request: Request) -> Response:
    visitor = await _visitor(request)
    elsewhere = _queue_instead(request, visitor)
    if elsewhere is not None:
        return elsewhere
    query = request.query_params
    loan = query.get("loan", "").strip()
    if loan:
        try:
            case_id = case_id_from_path(loan)
        except Problem:
            return _render(
                request,
                visitor,
                "message.html.j2",
                404,
                message=text(visitor.language, "not_found"),
            )
        return _see(f"{PATH}/cases/{case_id}", request, visitor.session)
    chosen = {name: query.get(name, "").strip() or None for name in FILTERS}
    try:
        page = max(1, min(int(query.get("page", "1")), MAX_LISTED // PAGE_SIZE))
    except ValueError:
        page = 1
    error = None
    try:
        found = await case_client.list_cases(
            services(request).client,
            chosen["stage"],
            limit=min(page * PAGE_SIZE + 1, MAX_LISTED),
            arm=chosen["arm"],
            state=chosen["state"],
            policy=chosen["policy"],
            dpd_from=case_client.days_filter("dpd_from", chosen["dpd_from"]),
            dpd_to=case_client.days_filter("dpd_to", chosen["dpd_to"]),
        )
    except ValueError as exc:
        found, error = [], str(exc)
    shown = found[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    kept = {name: value for name, value in chosen.items() if value}

    def page_link(number: int) -> str:
        return f"{PATH}/cases?{urlencode({**kept, 'page': number})}"

    return _render(
        request,
        visitor,
        "cases.html.j2",
        400 if error else 200,
        cases=shown,
        chosen=chosen,
        states=case_client.CASE_STATES,
        error=error,
        page=page,
        previous=page_link(page - 1) if page > 1 else None,
        next=page_link(page + 1) if len(found) > page * PAGE_SIZE else None,
    )


def _contacts(rows: list[TimelineRow]) -> list[tuple[str, str, int]]:
    """(channel, outcome, count) of the case's contact events."""
    counted: Counter[tuple[str, str]] = Counter()
    for row in rows:
        if row.event_type not in CONTACT_EVENTS:
            continue
        channel = str(row.payload.get("channel", "-"))
        if row.event_type == "contact_attempted":
            outcome = str(row.payload.get("outcome", "attempted"))
        else:
            rule = row.payload.get("rule")
            outcome = row.event_type.removeprefix("contact_") + (f" ({rule})" if rule else "")
        counted[(channel, outcome)] += 1
    return [(channel, outcome, n) for (channel, outcome), n in sorted(counted.items())]


def _forms(role: Role) -> tuple[list[ActionForm], list[ActionForm]]:
    """The forms `role` may use: the case's actions, and those answering an approval
    (their terms name a request: one per pending approval, the request set)."""
    allowed = [a for a in ACTIONS if may(role, a.roles)]
    answering = [a for a in allowed if issubclass(a.terms, ApprovalTerms)]
    acting = [a for a in allowed if a not in answering]
    return [action_form(a) for a in acting], [
        action_form(a, hidden=frozenset({"request"})) for a in answering
    ]


async def _case_page(
    request: Request,
    visitor: Visitor,
    case_id: str,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    current = services(request)
    try:
        status = await case_client.status(current.client, case_id)
    except case_client.CaseNotFound:
        message = text(visitor.language, "not_found")
        return _render(request, visitor, "message.html.j2", 404, message=message)
    rows = await case_timeline(current.pool, case_id)
    assert visitor.principal is not None
    acting, answering = _forms(visitor.principal.role)
    return _render(
        request,
        visitor,
        "case.html.j2",
        status_code,
        case_id=case_id,
        status=status,
        rows=rows,
        contacts=_contacts(rows),
        forms=acting if status.state != "closed" else [],
        answering=answering if status.state != "closed" else [],
        **values,
    )


@router.get("/cases/{case}")
async def case_page(request: Request, case: str) -> Response:
    visitor = await _visitor(request)
    elsewhere = _queue_instead(request, visitor)
    if elsewhere is not None:
        return elsewhere
    try:
        case_id = case_id_from_path(case)
    except Problem:
        message = text(visitor.language, "not_found")
        return _render(request, visitor, "message.html.j2", 404, message=message)
    done = request.query_params.get("done")
    action = BY_SLUG.get(done or "")
    pending = request.query_params.get("pending") == "1"
    return await _case_page(request, visitor, case_id, done=action, pending=pending)


@router.post("/cases/{case}/actions/{name}")
async def act(request: Request, case: str, name: str) -> Response:
    visitor = await _visitor(request)
    posted = await _form(request)
    if not csrf_ok(visitor.session, posted.get("csrf")):
        return _csrf_refused(request, visitor)
    assert visitor.principal is not None
    action = BY_SLUG.get(name)
    try:
        case_id = case_id_from_path(case)
    except Problem:
        action = None
    if action is None:
        message = text(visitor.language, "not_found")
        return _render(request, visitor, "message.html.j2", 404, message=message)
    if not may(visitor.principal.role, action.roles):
        message = text(visitor.language, "forbidden")
        return _render(request, visitor, "message.html.j2", 403, message=message)
    failed: dict[str, Any] = {"failed": slug(action), "posted": posted}
    try:
        terms = terms_from_form(action, posted)
        command = action.build(terms, visitor.principal.name)
    except ValidationError as exc:
        return await _case_page(request, visitor, case_id, 422, errors=field_errors(exc), **failed)
    except InvalidTerms as exc:
        errors = {exc.field: exc.problem}
        return await _case_page(request, visitor, case_id, 422, errors=errors, **failed)
    try:
        result = await case_client.act(services(request).client, case_id, action.update, command)
    except case_client.CaseNotFound:
        message = text(visitor.language, "not_found")
        return _render(request, visitor, "message.html.j2", 404, message=message)
    except case_client.CaseClosed:
        refusal: dict[str, str | None] = {
            "reason": text(visitor.language, "closed_case"),
            "code": Refusal.case_closed.value,
        }
        return await _case_page(request, visitor, case_id, 409, refusal=refusal, **failed)
    except case_client.ActionRejected as exc:
        code = exc.code
        status_code = REFUSAL_STATUS[code.kind] if code is not None else 409
        refusal = {"reason": exc.reason, "code": code.value if code else None}
        return await _case_page(request, visitor, case_id, status_code, refusal=refusal, **failed)
    pending = "&pending=1" if result.pending_approval is not None else ""
    return _see(f"{PATH}/cases/{case_id}?done={slug(action)}{pending}", request, visitor.session)


# --- the supervisors' dashboard --------------------------------------------------------


@router.get("/dashboard")
async def dashboard_page(request: Request) -> Response:
    visitor = await _visitor(request)
    assert visitor.principal is not None
    if visitor.principal.role not in DASHBOARD:
        message = text(visitor.language, "dashboard_only")
        return _render(request, visitor, "message.html.j2", 403, message=message)
    current = services(request)
    figures = await dashboard.figures(current.client, current.pool, visitor.language)
    return _render(request, visitor, "dashboard.html.j2", figures=figures)


# For the console's other pages (`audit_pages`): the same visitor, pages and forms.
visitor_of = _visitor
render = _render
see = _see
posted_form = _form
csrf_refused = _csrf_refused


def install(app: FastAPI, settings: Settings) -> None:
    """Serve the console under /ui on `app`."""
    from dunning.console import audit_pages, queue_pages  # they build on these helpers

    app.state.console_signer = Signer(settings)
    app.include_router(router)
    app.include_router(audit_pages.router)
    app.include_router(queue_pages.router)
    app.mount(f"{PATH}/static", StaticFiles(directory=HERE / "static"), name="console-static")

    for kind in (RPCError, OSError):  # Temporal or PostgreSQL not answering: a page
        _unavailable_page(app, kind)

    @app.exception_handler(SignIn)
    async def to_sign_in(request: Request, exc: SignIn) -> Response:
        location = f"{PATH}/sign-in" + ("?expired=1" if exc.expired else "")
        response = RedirectResponse(location, status_code=303, headers=SECURITY_HEADERS)
        if exc.expired:
            response.delete_cookie(COOKIE, path=PATH)
        return response


def _unavailable_page(app: FastAPI, kind: type[Exception]) -> None:
    """Under /ui, `kind` (a dependency that did not answer) is a page saying so; elsewhere
    the API's own handler answers (a problem)."""
    api_handler = app.exception_handlers.get(kind)

    async def handler(request: Request, exc: Exception) -> Response:
        if not request.url.path.startswith(f"{PATH}/"):
            if api_handler is None:
                raise exc
            answer = api_handler(request, exc)
            found: Response = await answer if inspect.isawaitable(answer) else answer
            return found
        session = _anonymous(request)
        message = text(session.language, "unavailable")
        body = templates.get_template("message.html.j2").render(
            t=lambda key, **kw: text(session.language, key, **kw),
            visitor=Visitor(session, None),
            csrf=session.csrf,
            lang=session.language,
            languages=LANGUAGE_NAMES,
            path=request.url.path,
            message=message,
        )
        return HTMLResponse(body, status_code=503, headers=SECURITY_HEADERS)

    app.add_exception_handler(kind, handler)
