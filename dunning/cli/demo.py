"""`dunning demo`: the embedded stack, a worker, a demo portfolio, shown live.

The live view is rich's `Live`, which redraws its region by moving the cursor up as
many lines as it drew last time. Anything else writing to the terminal meanwhile
breaks that count and leaves fragments of old frames on screen, so while the view is
up the in-process worker's and API's log lines go to `<state_dir>/logs/demo.log`
(warnings and errors are also printed above the view, through it), and every frame
is cut to the terminal's height.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path

import typer
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.text import Text

from dunning import case_client
from dunning.cli.common import console, fail, run, settings
from dunning.cli.render import cases_table
from dunning.demo import STRATEGY, portfolio, run_script
from dunning.logging_setup import formatter
from dunning.policies import load
from dunning.settings import Settings
from dunning.temporal_client import connect
from schemas.status import CaseStatus


def demo(
    until_done: bool = typer.Option(False, "--until-done", help="exit when every demo case closes"),
    count: int = typer.Option(20, "--cases", min=1, max=500, help="how many demo cases"),
    timeout: float = typer.Option(600, help="with --until-done: give up after this many seconds"),
    api: bool = typer.Option(True, "--api/--no-api", help="also serve the HTTP API"),
    api_port: int = typer.Option(8000, help="the HTTP API's port (on 127.0.0.1)"),
) -> None:
    """Start the stack and a worker, open a demo portfolio, and watch it move."""
    from dunning.localstack import stack

    current = settings()
    info = stack.up(current)
    console.print(f"Temporal UI: {info.temporal_ui}  (search: WorkflowType='LoanCollection')")
    try:
        done = run(_demo(current, count, until_done, timeout, api_port if api else None))
    except KeyboardInterrupt:
        console.print("stopped; the cases keep running on the stack (`dunning dev down` stops it)")
        return
    if until_done and not done:
        fail(f"demo cases still open after {timeout:.0f}s")


async def _demo(
    current: Settings, count: int, until_done: bool, give_up_after: float, api_port: int | None
) -> bool:
    from dunning import opening
    from dunning.api.server import optional_api
    from dunning.runtime import running_worker

    client = await connect(current)
    tag = time.strftime("%H%M%S")
    cases = portfolio(tag, count)
    interactive = sys.stdout.isatty()
    log_file = current.state_dir / "logs" / "demo.log"
    if interactive:
        console.print(f"worker and API logs: {log_file}")
    async with (
        _maybe(logs_aside(log_file, console, current.log_format), interactive),
        running_worker(current, client),
        optional_api(current, client, api_port, console.print),
    ):
        placed = current.model_copy(update={"strategy": STRATEGY})
        results = await opening.open_cases(client, placed, cases)
        opened = [r.case_id for r in results if r.outcome == "opened" and r.case_id]
        console.print(
            f"opened {len(opened)} demo cases under strategy {STRATEGY} "
            "(policies demo and demo-calls; a day lasts 4 seconds)"
        )
        if not opened:
            problems = {f"{r.outcome}: {r.detail}" for r in results}
            console.print(f"[red]no demo case could be opened[/]: {'; '.join(sorted(problems))}")
            return False
        notes: list[str] = []
        script = asyncio.create_task(
            run_script(client, cases, load("demo").day_length, notes.append)
        )
        try:
            return await _watch(client, opened, notes, until_done, give_up_after)
        finally:
            script.cancel()


async def _watch(
    client: object, case_ids: list[str], notes: list[str], until_done: bool, give_up_after: float
) -> bool:
    deadline = time.monotonic() + give_up_after
    moving_announced = False
    interactive = sys.stdout.isatty()
    last_line = 0.0
    with (
        Live(console=console, refresh_per_second=2, transient=False, vertical_overflow="crop")
        if interactive
        else _Null() as live
    ):
        while True:
            statuses = await _statuses(client, case_ids)
            closed = sum(1 for s in statuses if s.state == "closed")
            moving = any(s.counters for s in statuses)
            if moving and not moving_announced:
                moving_announced = True
                console.print("cases moving")
            headline = (
                f"{len(statuses) - closed} open, {closed} closed  |  {_stage_counts(statuses)}"
            )
            if interactive:
                live.update(frame(headline, notes, statuses, console.size.height))
            elif time.monotonic() - last_line > 5:
                last_line = time.monotonic()
                console.print(headline)
            if until_done and closed == len(statuses):
                console.print(f"all {closed} demo cases closed: {_outcomes(statuses)}")
                return True
            if until_done and time.monotonic() > deadline:
                return False
            await asyncio.sleep(1)


NOTES_SHOWN = 4


def frame(
    headline: str, notes: Sequence[str], statuses: Sequence[CaseStatus], height: int
) -> RenderableType:
    """One frame of the live view, never taller than `height` lines: a line that does
    not fit would scroll the terminal and break the next redraw. Lines do not wrap;
    open cases come first, and what does not fit is counted in a last line."""
    lines = [Text(headline, style="bold", no_wrap=True, overflow="ellipsis")]
    # Notes only where the table keeps its title, header and a row.
    kept = min(NOTES_SHOWN, max(height - 4, 0))
    lines += [
        Text(note, style="cyan", no_wrap=True, overflow="ellipsis")
        for note in (list(notes)[-kept:] if kept else [])
    ]
    room = height - len(lines) - 2  # the table's title and header
    ordered = sorted(statuses, key=lambda s: s.state == "closed")
    if room < 1:
        return Group(*lines[:height])
    if len(ordered) > room:
        shown = ordered[: room - 1]
        hidden = len(ordered) - len(shown)
        more = Text(f"... {hidden} more (dunning cases)", style="dim", no_wrap=True)
        return Group(*lines, cases_table(shown), more) if shown else Group(*lines, more)
    return Group(*lines, cases_table(ordered))


class _ConsoleHandler(logging.Handler):
    """Log records printed through the live view's console: above the view, in place."""

    def __init__(self, console: Console, level: int) -> None:
        super().__init__(level)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)


@contextlib.contextmanager
def logs_aside(path: Path, console: Console, log_format: str) -> Iterator[None]:
    """While the live view owns the terminal, every log line goes to `path`; warnings
    and errors are also printed through `console` (so rich keeps the view in place).
    The root logger's handlers are given back afterwards."""
    root = logging.getLogger()
    saved = root.handlers[:]
    path.parent.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setFormatter(formatter(log_format, colors=False))
    shown = _ConsoleHandler(console, logging.WARNING)
    shown.setFormatter(formatter("console", colors=False))
    root.handlers[:] = [to_file, shown]
    try:
        yield
    finally:
        root.handlers[:] = saved
        to_file.close()


@contextlib.asynccontextmanager
async def _maybe(
    context: contextlib.AbstractContextManager[None], enter: bool
) -> AsyncIterator[None]:
    if not enter:
        yield
        return
    with context:
        yield


async def _statuses(client: object, case_ids: list[str]) -> list[CaseStatus]:
    return list(await asyncio.gather(*(case_client.status(client, cid) for cid in case_ids)))  # type: ignore[arg-type]


def _stage_counts(statuses: list[CaseStatus]) -> str:
    counts: dict[str, int] = {}
    for s in statuses:
        key = s.closed_reason or s.stage or "opening"
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))


def _outcomes(statuses: list[CaseStatus]) -> str:
    return _stage_counts(statuses)


class _Null:
    def __enter__(self) -> _Null:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, *_: object) -> None:
        return None
