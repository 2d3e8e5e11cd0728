"""The baseline: a bare Temporal workflow with the shape of a case and nothing else.

`BareCase` gets the offsets (seconds from its start) at which the engine's case
calls a provider. It sleeps until each offset and runs one no-op activity there:
the same timers and the same provider activities as the engine's case, with no
decider, no domain events, no audit log, no search attributes and no pydantic
models in its payloads.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow
from temporalio.common import RetryPolicy

TASK_QUEUE_PREFIX = "bench-bare"
NOOP = "bench_noop"

# The engine's provider-call options, so retries and timeouts are not a difference.
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
TIMEOUT = timedelta(seconds=30)


@activity.defn(name=NOOP)
async def noop() -> None:
    """Does nothing: the cost of an activity round trip through Temporal, alone."""


@workflow.defn(name="BenchBareCase")
class BareCase:
    @workflow.run
    async def run(self, offsets: list[float]) -> int:
        opened = workflow.now()
        done = 0
        for offset in offsets:
            delay = opened + timedelta(seconds=offset) - workflow.now()
            if delay > timedelta(0):
                await workflow.sleep(delay)
            await workflow.execute_activity(
                noop, start_to_close_timeout=TIMEOUT, retry_policy=RETRY
            )
            done += 1
        return done
