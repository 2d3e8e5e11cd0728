"""(c) Stop PostgreSQL (the audit store) for 30 s while cases run, then start it
again: audit writes retry until it answers; every case closes with a gap-free,
verifying hash chain and each message delivered once.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from temporalio.client import Client

from dunning.localstack import postgres
from dunning.settings import Settings
from tests.factories import fault_policy
from tests.faults.harness import check_nothing_lost_or_repeated, run_with_fault
from tests.webhook_gateway import Gateway

DOWN_S = 30
# Struck when about a third of the cases have written their first rows (one row per
# case on average, of the three each writes first), the outage meets the other
# cases' first audit writes and, three 8-second days after each case opened, the
# handoffs' writes: all retry until it answers (the activity's backoff adds up to
# 16 s, sometimes 32 s, after it is back).
POLICY = fault_policy(timedelta(seconds=8), legal_day=3)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_postgres_outage_loses_nothing_and_repeats_nothing(
    fault_client: Client, fault_settings: Settings, gateway: Gateway, tmp_path: Path
) -> None:
    state_dir = fault_settings.state_dir.resolve()
    port = urlsplit(fault_settings.database_url).port
    assert port is not None

    async def outage() -> None:
        assert await asyncio.to_thread(postgres.stop, state_dir)
        await asyncio.sleep(DOWN_S)
        await asyncio.to_thread(postgres.start, state_dir, port)

    try:
        flight = await run_with_fault(
            fault_client,
            fault_settings,
            gateway,
            tmp_path,
            name="pg",
            policy=POLICY,
            fault=outage,
            fault_after_rows=1,
        )
    finally:  # never leave the package's stack down for the next test
        if postgres.running_pid(state_dir) is None:
            await asyncio.to_thread(postgres.start, state_dir, port)
    await check_nothing_lost_or_repeated(fault_client, flight, gateway)
