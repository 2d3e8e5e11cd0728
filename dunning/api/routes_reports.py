"""Reports: the effectiveness figures of `dunning report`, for supervisors and auditors,
as JSON and as the same self-contained page of plots."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from dunning.api import auth
from dunning.api.problems import invalid
from dunning.api.routes_cases import problems
from dunning.api.services import services
from dunning.api.tokens import Principal
from dunning.report.model import Report
from dunning.report.period import Period, PeriodError, parse_period
from dunning.report.query import effectiveness

router = APIRouter(tags=["reports"])

PERIOD_HELP = (
    "Cases opened in [from, to), followed to `to`; figures defined in docs/reports.md. "
    "`from`/`to` are dates (YYYY-MM-DD: the whole day, both included) or ISO 8601 "
    "instants; without `to` the period ends now, without `from` it starts 30 days "
    "before its end."
)


def _period(start: str | None, end: str | None, tz: str) -> Period:
    try:
        return parse_period(start, end, tz)
    except PeriodError as exc:
        field, _, problem = str(exc).partition(": ")
        raise invalid([{"field": field, "problem": problem}]) from None


async def _report(request: Request, start: str | None, end: str | None, tz: str) -> Report:
    return await effectiveness(services(request).pool, _period(start, end, tz))


FROM = Query(None, alias="from", max_length=40, description="first day or instant")
TO = Query(None, alias="to", max_length=40, description="last day (included) or instant (excluded)")
TZ = Query("UTC", max_length=64, description="IANA time zone of dates and times without offset")


@router.get(
    "/reports/effectiveness",
    summary="Effectiveness figures",
    description=PERIOD_HELP,
    response_model=Report,
    responses=problems(401, 403, 422),
)
async def effectiveness_json(
    request: Request,
    start: str | None = FROM,
    end: str | None = TO,
    tz: str = TZ,
    _: Principal = Depends(auth.allow(auth.REPORTS)),
) -> Report:
    return await _report(request, start, end, tz)


@router.get(
    "/reports/effectiveness.html",
    summary="Effectiveness figures as a page of plots",
    description=PERIOD_HELP + " The page is self-contained: it fetches nothing.",
    response_class=HTMLResponse,
    responses={200: {"content": {"text/html": {}}}, **problems(401, 403, 422)},
)
async def effectiveness_html(
    request: Request,
    start: str | None = FROM,
    end: str | None = TO,
    tz: str = TZ,
    lang: Literal["en", "zh-CN"] = Query("en", description="the page's language"),
    _: Principal = Depends(auth.allow(auth.REPORTS)),
) -> HTMLResponse:
    from dunning.report.render_html import report_page

    report = await _report(request, start, end, tz)
    page = await asyncio.to_thread(report_page, report, lang)  # CPU-bound: off the loop
    return HTMLResponse(page)
