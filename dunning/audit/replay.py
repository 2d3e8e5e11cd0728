"""Replay cases' recorded histories against the current workflow code.

A case's history is the evidence of what the engine decided; replaying it with the
code a worker runs today proves that code makes the same decisions in the same order
(Temporal's determinism). A case that continued-as-new is a chain of runs: every run
is replayed, first to last, and the first one that diverges is reported with the
failure Temporal raises, which names the history event that no longer matches.

The replayer uses the worker's own sandbox (`worker.workflow_runner`) and the
client's data converter (pydantic, payloads decrypted: `dunning.temporal_client`), so
it replays exactly as a worker would execute.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer

from dunning.case_client import CaseNotFound
from dunning.runtime import workflow_runner
from workflows.loan_collection import LoanCollection

ALL_CASES_QUERY = "WorkflowType = 'LoanCollection'"
# Histories fetched at once, and cases replayed per replayer pass, for `--all`.
FETCH_CONCURRENCY = 16
BATCH = 100


@dataclass(frozen=True)
class ReplayReport:
    case_id: str
    runs: int
    deterministic: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


async def fetch_histories(client: Client, case_id: str) -> list[WorkflowHistory]:
    """Every run of the case's continue-as-new chain, first run first."""
    try:
        described = await client.get_workflow_handle(case_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise CaseNotFound(case_id) from exc
        raise
    run_id: str | None = (
        described.raw_description.workflow_execution_info.first_run_id or described.run_id
    )
    histories: list[WorkflowHistory] = []
    seen: set[str] = set()
    while run_id and run_id not in seen:
        seen.add(run_id)
        history = await client.get_workflow_handle(case_id, run_id=run_id).fetch_history()
        histories.append(history)
        run_id = _continued_as(history)
    return histories


def _continued_as(history: WorkflowHistory) -> str | None:
    """The run this one continued-as-new into, if it did."""
    if not history.events:
        return None
    last = history.events[-1]
    if last.HasField("workflow_execution_continued_as_new_event_attributes"):
        return last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return None


@functools.cache
def _quiet_runtime() -> Runtime:
    """A runtime whose core logs only errors: a divergence is reported, not also warned."""
    quiet = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=quiet)))


def replayer(
    workflows: Sequence[type] = (LoanCollection,), data_converter: DataConverter | None = None
) -> Replayer:
    """`data_converter`: the one the histories were written with (`data_converter(settings)`
    of `dunning.temporal_client`); unencrypted histories replay with any of them."""
    return Replayer(
        workflows=list(workflows),
        data_converter=data_converter or pydantic_data_converter,
        workflow_runner=workflow_runner(),
        runtime=_quiet_runtime(),
    )


async def replay_histories(
    histories: Iterable[WorkflowHistory],
    *,
    workflows: Sequence[type] = (LoanCollection,),
    data_converter: DataConverter | None = None,
) -> list[ReplayReport]:
    """Replay histories in one pass; one report per workflow id, in first-seen order.

    A case's histories must be given in chain order (as `fetch_histories` returns
    them): the first failing run is the one reported.
    """
    ordered = list(histories)
    if not ordered:
        return []

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in ordered:
            yield history

    results = await replayer(workflows, data_converter).replay_workflows(
        each(), raise_on_replay_failure=False
    )
    by_case: dict[str, list[WorkflowHistory]] = {}
    for history in ordered:
        by_case.setdefault(history.workflow_id, []).append(history)
    reports = []
    for case_id, runs in by_case.items():
        events = sum(len(h.events) for h in runs)
        failed = [
            (n, h, results.replay_failures[h.run_id])
            for n, h in enumerate(runs, start=1)
            if h.run_id in results.replay_failures
        ]
        if not failed:
            detail = f"{len(runs)} run(s), {events} events replayed identically"
            reports.append(ReplayReport(case_id, len(runs), True, detail))
            continue
        n, history, failure = failed[0]
        detail = f"run {n} of {len(runs)} ({history.run_id}): {_message(failure)}"
        reports.append(ReplayReport(case_id, len(runs), False, detail))
    return reports


# Core wraps the reason in a debug dump of its failure struct: keep the reason, which
# names the history event that no longer matches.
_CORE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')


def _message(failure: BaseException) -> str:
    text = str(failure)
    found = _CORE_MESSAGE.search(text)
    if found:
        return found.group(1)
    return f"{type(failure).__name__}: {text}" if text else type(failure).__name__


async def replay_case(
    client: Client, case_id: str, *, workflows: Sequence[type] = (LoanCollection,)
) -> ReplayReport:
    """Fetch and replay every run of one case."""
    histories = await fetch_histories(client, case_id)
    if not histories:
        return ReplayReport(case_id, 0, True, "no history")
    [report] = await replay_histories(
        histories, workflows=workflows, data_converter=client.data_converter
    )
    return report


async def case_ids(client: Client, query: str = ALL_CASES_QUERY) -> list[str]:
    """Every case's workflow id once (a continued-as-new case lists one row per run)."""
    seen: dict[str, None] = {}
    async for execution in client.list_workflows(query):
        seen.setdefault(execution.id, None)
    return list(seen)


async def replay_all(
    client: Client,
    *,
    query: str = ALL_CASES_QUERY,
    workflows: Sequence[type] = (LoanCollection,),
) -> list[ReplayReport]:
    """Replay every case the query lists, in batches, one replayer pass per batch."""
    ids = await case_ids(client, query)
    gate = asyncio.Semaphore(FETCH_CONCURRENCY)

    async def fetch(case_id: str) -> list[WorkflowHistory]:
        async with gate:
            try:
                return await fetch_histories(client, case_id)
            except CaseNotFound:
                return []  # listed, then gone (retention) before it was fetched

    reports: list[ReplayReport] = []
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        fetched = await asyncio.gather(*(fetch(c) for c in chunk))
        reports.extend(
            await replay_histories(
                (h for runs in fetched for h in runs),
                workflows=workflows,
                data_converter=client.data_converter,
            )
        )
    return reports
