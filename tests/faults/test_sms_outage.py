"""(d) The SMS gateway times out, then answers 500, for a while; every case still
closes, and no message is delivered twice although the gateway acted on requests
whose answers never arrived.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import Client

from dunning.settings import Settings
from tests.factories import fault_policy
from tests.faults.harness import check_nothing_lost_or_repeated, run_with_fault
from tests.webhook_gateway import Gateway

# Struck when about a third of the cases have logged their SMS (one row per case on
# average, of the three each writes first), the outage (5 s of timeouts + 7 s of
# 500s, then the activity's backoff) meets the other cases' SMS. Each case hands over
# to legal three 8-second days after it opened, when every case has opened: none is
# finished when the fault strikes, which the checks assert.
POLICY = fault_policy(timedelta(seconds=8), legal_day=3)


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
        policy=POLICY,
        fault=outage,
        fault_after_rows=1,
    )
    assert gateway.retries() > 0
    await check_nothing_lost_or_repeated(fault_client, flight, gateway)
