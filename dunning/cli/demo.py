"""`dunning demo`: the embedded stack, a worker, a demo portfolio, shown live."""

from __future__ import annotations

import asyncio
import sys
import time

import typer
from rich.console import Group
from rich.live import Live
from rich.text import Text

from dunning import case_client
from dunning.cli.common import console, fail, run, settings
from dunning.cli.render import cases_table
from dunning.demo import STRATEGY, portfolio, run_script
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
    import starter
    from dunning.api.server import optional_api
    from worker import running_worker

    client = await connect(current)
    tag = time.strftime("%H%M%S")
    cases = portfolio(tag, count)
    async with (
        running_worker(current, client),
        optional_api(current, client, api_port, console.print),
    ):
        placed = current.model_copy(update={"strategy": STRATEGY})
        results = await starter.open_cases(client, placed, cases)
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
        Live(console=console, refresh_per_second=2, transient=False)
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
                live.update(
                    Group(
                        Text(headline, style="bold"),
                        Text("\n".join(notes[-4:]), style="cyan"),
                        # Open cases first: on a short terminal the closed ones drop off.
                        cases_table(sorted(statuses, key=lambda s: s.state == "closed")),
                    )
                )
            elif time.monotonic() - last_line > 5:
                last_line = time.monotonic()
                console.print(headline)
            if until_done and closed == len(statuses):
                console.print(f"all {closed} demo cases closed: {_outcomes(statuses)}")
                return True
            if until_done and time.monotonic() > deadline:
                return False
            await asyncio.sleep(1)


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
