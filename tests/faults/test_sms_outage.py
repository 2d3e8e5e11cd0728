"""(d) The SMS gateway times out, then answers 500, for a while; every case still
closes, and no message is delivered twice although the gateway acted on requests
whose answers never arrived.

100 cases (not 200): three fault tests must share about four minutes on two cores,
and each runs its cases for several policy days. Tried with 200: one worker process
on two cores fell behind (some cases still at their first events when others were
handing over to legal, a minute in), the folder took 4.5 minutes, and a lagging
worker stretches the outage past the policy's timing. 100 keeps the worker and both
servers below saturation, so the policy's timing still holds.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from dunning.settings import Settings
from tests.faults.harness import check_nothing_lost_or_repeated, run_with_fault
from tests.webhook_gateway import Gateway

CASES = 100
# An 8-second day: the outage (5 s of timeouts + 7 s of 500s, then the activity's
# exponential backoff, up to 16 s more) stays inside a 4-day (32 s) stage.
DAY = timedelta(seconds=8)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_gateway_timeouts_and_500s_deliver_each_message_once(
    fault_client: Client, fault_settings: Settings, gateway: Gateway, tmp_path: Path
) -> None:
    async def outage() -> None:
        before = gateway.retries()
        gateway.delay_s = 3.0  # beyond the provider's 2 s timeout: acted on, answer lost
        await asyncio.sleep(5)
        gateway.delay_s = 0.0
        gateway.fail_status = 500
        await asyncio.sleep(7)
        gateway.fail_status = None
        assert gateway.retries() > before

    flight = await run_with_fault(
        fault_client,
        fault_settings,
        gateway,
        tmp_path,
        name="sms",
        cases=CASES,
        day=DAY,
        days_past_due=7,
        fault=outage,
        fault_after_rows=3,
    )
    assert gateway.retries() > 0
    await check_nothing_lost_or_repeated(fault_client, flight, gateway)
