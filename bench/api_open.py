"""Opening cases through the HTTP API: cases per second, batched and one per request.

    .venv/bin/python -m bench.api_open --cases 1000 --batch 100 --concurrency 16

On a private embedded stack (Temporal dev server and PostgreSQL on free ports in a
temporary folder, stopped at the end) unless `--use-running`. In this one process:
the API (`dunning.api.create_app`, served by uvicorn on a free loopback port), a
worker on a task queue of its own (it runs each opened case's first workflow tasks
meanwhile, as in production) and the HTTP client (httpx), all on one event loop.

Two runs of `--cases` fresh cases each, on the default policy (nothing escalates
during the run):

- **batch**: `POST /cases` with `{"cases": [...]}` of `--batch` cases,
  `--concurrency` requests in flight at a time;
- **single**: one case per `POST /cases`, `--concurrency` requests in flight.

Every case must be answered `opened` (201, or `opened` in its batch row), and is
checked afterwards with `GET /cases/{id}` on a sample; anything else is printed and
the run exits with status 1. Seconds are wall-clock from the first request sent to
the last answer received.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import tempfile
import time
import uuid
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import typer
from rich.console import Console
from rich.table import Table

from dunning.api import tokens
from dunning.api.app import create_app
from dunning.api.server import running_api
from dunning.localstack import stack
from dunning.logging_setup import configure
from dunning.runtime import running_worker
from dunning.samples import sample_payload as case_payload
from dunning.settings import Settings, get_settings
from dunning.temporal_client import connect
from schemas.roles import Role

console = Console()
app = typer.Typer(add_completion=False)


async def _gated(gate: asyncio.Semaphore, send: Any) -> Any:
    async with gate:
        return await send()


async def run_batches(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    cases: list[dict[str, Any]],
    size: int,
    concurrency: int,
) -> tuple[float, list[str]]:
    gate = asyncio.Semaphore(concurrency)
    chunks = [cases[i : i + size] for i in range(0, len(cases), size)]

    async def send(chunk: list[dict[str, Any]]) -> list[str]:
        answer = await http.post("/cases", json={"cases": chunk}, headers=headers)
        if answer.status_code != 200:
            return [f"batch: {answer.status_code} {answer.text[:200]}"]
        return [
            f"row {r['row']}: {r['outcome']} {r['detail']}"
            for r in answer.json()["results"]
            if r["outcome"] != "opened"
        ]

    began = time.perf_counter()
    found = await asyncio.gather(*(_gated(gate, lambda c=c: send(c)) for c in chunks))
    return time.perf_counter() - began, [p for problems in found for p in problems]


async def run_singles(
    http: httpx.AsyncClient,
    headers: dict[str, str],
    cases: list[dict[str, Any]],
    concurrency: int,
) -> tuple[float, list[str]]:
    gate = asyncio.Semaphore(concurrency)

    async def send(case: dict[str, Any]) -> list[str]:
        answer = await http.post("/cases", json=case, headers=headers)
        return [] if answer.status_code == 201 else [f"{answer.status_code} {answer.text[:200]}"]

    began = time.perf_counter()
    found = await asyncio.gather(*(_gated(gate, lambda c=c: send(c)) for c in cases))
    return time.perf_counter() - began, [p for problems in found for p in problems]


async def bench(
    settings: Settings, count: int, batch: int, concurrency: int, worker: bool
) -> tuple[list[tuple[str, int, float]], list[str]]:
    settings = settings.model_copy(update={"task_queue": f"bench-api-{uuid.uuid4().hex[:6]}"})
    client = await connect(settings)
    tag = uuid.uuid4().hex[:6]
    runs: list[tuple[str, int, float]] = []
    problems: list[str] = []
    async with (
        asyncpg.create_pool(settings.database_url, min_size=2, max_size=20) as pool,
        running_worker(settings, client) if worker else contextlib.nullcontext(),
        running_api(create_app(settings, client=client, pool=pool)) as api,
        httpx.AsyncClient(base_url=api.url, timeout=120) as http,
    ):
        # Tokens are the owner's to make; the API itself may only read them.
        owner = await asyncpg.connect(settings.owner_database_url)
        try:
            token = await tokens.create(owner, Role.service, f"bench-{tag}")
        finally:
            await owner.close()
        headers = {"Authorization": f"Bearer {token}"}
        # Warm up imports, pools and connections (not measured).
        await run_singles(http, headers, [case_payload(f"W-{tag}-{i}") for i in range(20)], 8)
        for mode in ("batch", "single"):
            cases = [case_payload(f"B-{tag}-{mode}-{i}") for i in range(count)]
            if mode == "batch":
                seconds, found = await run_batches(http, headers, cases, batch, concurrency)
            else:
                seconds, found = await run_singles(http, headers, cases, concurrency)
            runs.append((mode, count, seconds))
            problems += [f"{mode}: {p}" for p in found]
            for case in cases:  # every case exists (describe: no worker needed)
                try:
                    await client.get_workflow_handle(f"case-{case['loan']['id']}").describe()
                except Exception as exc:
                    problems.append(f"{mode}: case-{case['loan']['id']}: {exc}")
    return runs, problems


@app.command()
def main(
    cases: int = typer.Option(1000, min=1, help="cases per run (batch, then single)"),
    batch: int = typer.Option(100, min=1, max=1000, help="cases per batch request"),
    concurrency: int = typer.Option(16, min=1, help="requests in flight at a time"),
    worker: bool = typer.Option(
        True, "--worker/--no-worker", help="run a worker in this process meanwhile"
    ),
    use_running: bool = typer.Option(
        False, help="use the stack of the settings (dunning dev up) instead of a private one"
    ),
) -> None:
    """Cases per second opened through POST /cases, in batches and one by one."""
    configure("console", "WARNING")
    if use_running:
        runs, problems = asyncio.run(bench(get_settings(), cases, batch, concurrency, worker))
    else:
        with tempfile.TemporaryDirectory(
            prefix="dunning-bench-", ignore_cleanup_errors=True
        ) as tmp:
            settings = stack.private_settings(Path(tmp))
            try:
                stack.up(settings)
                runs, problems = asyncio.run(bench(settings, cases, batch, concurrency, worker))
            finally:
                stack.down(settings)
    table = Table(
        title=f"POST /cases, {concurrency} requests in flight, "
        + ("a worker in the same process" if worker else "no worker")
    )
    for column in ("mode", "cases", "per request", "seconds", "cases/s"):
        table.add_column(column, justify="right")
    for mode, count, seconds in runs:
        per = str(batch) if mode == "batch" else "1"
        table.add_row(mode, str(count), per, f"{seconds:.1f}", f"{count / seconds:.0f}")
    console.print(table)
    console.print(
        f"cpus {os.cpu_count()}, python {platform.python_version()}, {platform.platform()}, "
        f"temporalio {version('temporalio')}, fastapi {version('fastapi')}, "
        f"uvicorn {version('uvicorn')}"
    )
    for problem in problems[:20]:
        console.print(f"[red]{problem}[/]")
    if problems:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
