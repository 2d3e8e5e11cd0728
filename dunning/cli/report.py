"""`dunning report`: the effectiveness figures for a period, from the audit log."""

from __future__ import annotations

import sys
from pathlib import Path

import asyncpg
import typer

from dunning.cli.common import console, fail, run, settings
from dunning.report.labels import LANGUAGES, Language
from dunning.report.model import Report
from dunning.report.period import PeriodError, parse_period
from dunning.report.query import DEFAULT_CONFIDENCE, Options


def report(
    start: str | None = typer.Option(
        None, "--from", help="first day (YYYY-MM-DD) or instant; default: 30 days before --to"
    ),
    end: str | None = typer.Option(
        None, "--to", help="last day (YYYY-MM-DD, included) or instant (excluded); default: now"
    ),
    tz: str = typer.Option("UTC", "--tz", help="time zone of dates and times without offset"),
    as_json: bool = typer.Option(False, "--json", help="the whole report as JSON"),
    as_csv: bool = typer.Option(False, "--csv", help="every figure, one CSV row each"),
    html: Path | None = typer.Option(None, "--html", help="also write a page of plots here"),
    lang: str = typer.Option("en", "--lang", help="en or zh-CN (terminal and page)"),
    confidence: float = typer.Option(
        DEFAULT_CONFIDENCE, help="confidence level of the champion/challenger intervals"
    ),
) -> None:
    """Recovery, cure, roll, promise-kept and right-party-contact rates, contacts per
    recovered unit, days to cure, by policy, arm, segment and stage, with champion
    against challenger; figures defined in docs/reports.md."""
    from dunning.report.query import effectiveness

    if lang not in LANGUAGES:
        fail(f"--lang: must be one of {', '.join(LANGUAGES)}", 2)
    if not 0.5 <= confidence < 1:
        fail("--confidence: must be at least 0.5 and below 1, e.g. 0.95", 2)
    if as_json and as_csv:
        fail("--json and --csv: choose one", 2)
    try:
        period = parse_period(start, end, tz)
    except PeriodError as exc:
        name = str(exc).split(":", 1)[0]
        fail(f"--{name}{str(exc)[len(name) :]}", 2)
    current = settings()

    async def go() -> Report:
        async with asyncpg.create_pool(current.database_url, min_size=1, max_size=1) as pool:
            return await effectiveness(pool, period, Options(confidence=confidence))

    try:
        result = run(go())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        fail(f"audit store: {exc}")
    language: Language = "zh-CN" if lang == "zh-CN" else "en"
    if html is not None:
        from dunning.report.render_html import report_page

        try:
            html.write_text(report_page(result, language), encoding="utf-8")
        except OSError as exc:
            fail(f"--html: {exc}")
    if as_json:
        print(result.model_dump_json(indent=2))
    elif as_csv:
        from dunning.report.render_csv import write_csv

        write_csv(result, sys.stdout)
    else:
        from dunning.report.render_terminal import print_report

        print_report(result, console, language)
        if html is not None:
            console.print(f"wrote {html}", highlight=False)
