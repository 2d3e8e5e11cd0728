"""(b) Stop the Temporal dev server while cases run and start it again (its SQLite
file keeps the histories): every case closes, nothing lost, nothing repeated.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from dunning.localstack import temporal
from dunning.settings import Settings
from tests.factories import fault_policy
from tests.faults.harness import check_nothing_lost_or_repeated, run_with_fault
from tests.webhook_gateway import Gateway

# Struck when about a third of the cases have logged their SMS (one row per case on
# average, of the three each writes first), the outage (stop, 5 s down, start, the
# worker's reconnect and the 10 s activity and sticky-queue timeouts after it) meets
# workflow tasks and activities in flight. Each case hands over to legal three
# 8-second days after it opened: none is finished when the fault strikes.
POLICY = fault_policy(timedelta(seconds=8), legal_day=3)
DOWN_S = 5


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_temporal_restart_loses_nothing_and_repeats_nothing(
    fault_client: Client, fault_settings: Settings, gateway: Gateway, tmp_path: Path
) -> None:
    state_dir = fault_settings.state_dir.resolve()

    async def restart() -> None:
        assert await asyncio.to_thread(temporal.stop, state_dir)
        await asyncio.sleep(DOWN_S)
        pid = temporal.launch(fault_settings, state_dir)
        await temporal.wait_ready(fault_settings, state_dir, pid)

    try:
        flight = await run_with_fault(
            fault_client,
            fault_settings,
            gateway,
            tmp_path,
            name="temporal",
            policy=POLICY,
            fault=restart,
            fault_after_rows=1,
        )
    finally:  # never leave the package's stack down for the next test
        if temporal.running_pid(state_dir) is None:
            pid = temporal.launch(fault_settings, state_dir)
            await temporal.wait_ready(fault_settings, state_dir, pid)
    await check_nothing_lost_or_repeated(fault_client, flight, gateway)
