"""What a case costs the worker when it is not in the cache: the sandbox's new instance.

    .venv/bin/python -m bench.sandbox_start --rounds 4 --replays 30

Every workflow task of a case the worker's cache no longer holds (any case once more
cases are open than the cache holds: the morning burst) starts a new sandbox: the
workflow's module is imported afresh, and compiled from source if Python finds no
bytecode for it. This replays one committed history (`tests/histories/seam/`) with
the worker's sandbox (`dunning.runtime.workflow_runner`), alternating rounds
without bytecode (an empty `sys.pycache_prefix`, nothing written) and with it
(the same folder after `compile_workflow_modules`), and prints the CPU per replay of
each, side by side, with their ratio. Same process, same history, same sandbox.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from dunning.runtime import compile_workflow_modules, workflow_runner
from workflows.loan_collection import LoanCollection

HISTORY = Path(__file__).parent.parent / "tests" / "histories" / "seam" / "paid-run1.json"
console = Console()


async def _cpu_per_replay(replayer: Replayer, history: WorkflowHistory, replays: int) -> float:
    start = time.process_time()
    for _ in range(replays):
        await replayer.replay_workflow(history)
    return (time.process_time() - start) / replays


async def bench(rounds: int, replays: int) -> dict[str, list[float]]:
    history = WorkflowHistory.from_json("bench-sandbox", HISTORY.read_text())
    replayer = Replayer(
        workflows=[LoanCollection],
        workflow_runner=workflow_runner(),
        data_converter=pydantic_data_converter,
    )
    await replayer.replay_workflow(history)  # warm: imports outside the sandbox done
    figures: dict[str, list[float]] = {"source": [], "bytecode": []}
    sys.dont_write_bytecode = True
    with tempfile.TemporaryDirectory() as empty, tempfile.TemporaryDirectory() as compiled:
        sys.pycache_prefix = compiled
        compile_workflow_modules.cache_clear()
        if not compile_workflow_modules():
            raise SystemExit(f"could not write bytecode to {compiled}")
        for _ in range(rounds):
            for name, prefix in (("source", empty), ("bytecode", compiled)):
                sys.pycache_prefix = prefix
                figures[name].append(await _cpu_per_replay(replayer, history, replays))
    return figures


def main(
    rounds: int = typer.Option(4, min=1, help="alternating rounds of each"),
    replays: int = typer.Option(30, min=1, help="replays per round"),
) -> None:
    figures = asyncio.run(bench(rounds, replays))
    events = len(WorkflowHistory.from_json("h", HISTORY.read_text()).events)
    table = Table(title=f"replay of {HISTORY.name} ({events} events), CPU ms per replay")
    table.add_column("round", justify="right")
    table.add_column("from source", justify="right")
    table.add_column("from bytecode", justify="right")
    table.add_column("bytecode/source", justify="right")
    pairs = list(zip(figures["source"], figures["bytecode"], strict=True))
    for i, (source, compiled) in enumerate(pairs, 1):
        table.add_row(
            str(i), f"{source * 1000:.1f}", f"{compiled * 1000:.1f}", f"{compiled / source:.2f}"
        )
    median = statistics.median(c / s for s, c in pairs)
    table.add_row("median", "", "", f"[bold]{median:.2f}[/bold]")
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
