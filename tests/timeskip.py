"""Moving the time-skipping test server's clock without landing on a case's timers.

The Java time-skipping test server wedges a workflow when an Update or a signal reaches
it in the very instant one of the workflow's timers fires: the worker's completion is
refused ("invalid history builder state for action") and the task never completes.
A bare workflow reproduces it (docs/repros/test_server_update_timer.py); the dev
server and a real cluster are not affected. A case's timers sit on whole days after
its opening, and tests think in whole days, so every skip lands a few seconds past the
asked-for time.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

OFF_INSTANT = timedelta(seconds=7)


async def skip(env: WorkflowEnvironment, duration: timedelta) -> None:
    """Advance the test server's clock by `duration` and a few seconds more."""
    await env.sleep(duration + OFF_INSTANT)
