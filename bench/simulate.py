"""`dunning simulate` at portfolio scale: 10,000 cases x 120 days on one core.

    .venv/bin/python -m bench.simulate                  # 10,000 cases, 120 days, seed 1
    .venv/bin/python -m bench.simulate --cases 2000 --json

A generated portfolio (`dunning.sim.portfolio.generate`) runs under the default
strategy and policy with the shipped `baseline` response model, in this one process
(single-threaded: one core). Printed: the time to generate the cases and to simulate
them (wall and CPU), case runs and folded events per second, and the verdict against
the target (60 s) on CPU time, the work of one core (wall time on a shared machine
includes waiting for the core; it is printed too). Side by side, on a sample of the
same cases: the fold with `CaseState.__deepcopy__` as shipped (frozen parts shared)
and with pydantic's plain deep copy, which `evolve` used before; both must give
identical figures.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from datetime import UTC, datetime
from typing import Any

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table

from dunning.sim.portfolio import generate
from dunning.sim.responses import load as load_model
from dunning.sim.runner import Clock, Simulation, by_strategy, simulate
from dunning.strategies import cached_policies
from dunning.strategies import load as load_strategy
from workflows.state import CaseState

START = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)
console = Console()


def _run(
    cases: int, days: int, seed: int, first: int | None = None
) -> tuple[Simulation, float, float]:
    portfolio = generate(cases, seed)[:first]
    placed = by_strategy(portfolio, load_strategy("default"), cached_policies())
    wall, cpu = time.perf_counter(), time.process_time()
    result = simulate(placed, load_model("baseline"), seed, Clock(START, days))
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _plain_copy() -> Any:
    """Swap in pydantic's deep copy (what `evolve` paid before); returns the undo."""
    shipped = CaseState.__deepcopy__
    CaseState.__deepcopy__ = BaseModel.__deepcopy__  # type: ignore[method-assign]

    def undo() -> None:
        CaseState.__deepcopy__ = shipped  # type: ignore[method-assign]

    return undo


def _figures(result: Simulation) -> dict[str, Any]:
    return {name: summary.as_json() for name, summary in result.groups.items()}


def main(
    cases: int = typer.Option(10_000, min=1),
    days: int = typer.Option(120, min=1),
    seed: int = typer.Option(1),
    sample: int = typer.Option(300, min=10, help="cases in the side-by-side copy comparison"),
    target: float = typer.Option(60.0, help="seconds the full run must stay under"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    began = time.perf_counter()
    generate(cases, seed)
    generated = time.perf_counter() - began
    result, wall, cpu = _run(cases, days, seed)
    runs = sum(g.cases for g in result.groups.values())
    folded = sum(r.folded for rows in result.results.values() for r in rows)

    # Side by side on the same sample: shared frozen parts vs the plain deep copy.
    shared, shared_wall, _ = _run(cases, days, seed, sample)
    undo = _plain_copy()
    try:
        plain, plain_wall, _ = _run(cases, days, seed, sample)
    finally:
        undo()
    same = _figures(shared) == _figures(plain)

    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cases": cases,
        "days": days,
        "seed": seed,
        "generate_s": round(generated, 2),
        "simulate_wall_s": round(wall, 2),
        "simulate_cpu_s": round(cpu, 2),
        "case_runs_per_s": round(runs / wall, 1),
        "events_folded": folded,
        "events_per_s": round(folded / wall),
        "target_s": target,
        "within_target_cpu": generated + cpu < target,
        "within_target_wall": generated + wall < target,
        "sample": sample,
        "ms_per_case_shared_copy": round(shared_wall / sample * 1000, 2),
        "ms_per_case_plain_copy": round(plain_wall / sample * 1000, 2),
        "copy_speedup": round(plain_wall / shared_wall, 1),
        "copies_agree": same,
        "recovery_rate": {n: round(g.recovery_rate, 4) for n, g in result.groups.items()},
    }
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        table = Table(title=f"dunning simulate: {cases} cases x {days} days, seed {seed}, one core")
        table.add_column("figure")
        table.add_column("value", justify="right")
        for key, value in report.items():
            table.add_row(key, str(value))
        console.print(table)
    if not same:
        console.print("[red]the two copies gave different figures[/]")
        sys.exit(1)
    if not report["within_target_cpu"]:
        sys.exit(1)


if __name__ == "__main__":
    typer.run(main)
