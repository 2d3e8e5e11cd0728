"""(b) Stop the Temporal dev server while cases run and start it again (its SQLite
file keeps the histories): every case closes, nothing lost, nothing repeated.

100 cases: see tests/faults/test_sms_outage.py for why not 200.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from dunning.localstack import temporal
from dunning.settings import Settings
from tests.faults.harness import check_nothing_lost_or_repeated, run_with_fault
from tests.webhook_gateway import Gateway

CASES = 100
# An 8-second day: the outage (stop, 5 s down, start, the worker's reconnect and the
# 10 s activity and sticky-queue timeouts after it) stays inside a 4-day (32 s) stage.
DAY = timedelta(seconds=8)
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
            cases=CASES,
            day=DAY,
            days_past_due=7,
            fault=restart,
            fault_after_rows=3,
        )
    finally:  # never leave the package's stack down for the next test
        if temporal.running_pid(state_dir) is None:
            pid = temporal.launch(fault_settings, state_dir)
            await temporal.wait_ready(fault_settings, state_dir, pid)
    await check_nothing_lost_or_repeated(fault_client, flight, gateway)
