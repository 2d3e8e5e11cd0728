"""The delivery seam under a failing SMS gateway (issue 12).

(e) The gateway answers 503 while 50 cases have their first SMS in retry; during the
outage 10 are paid in full, 10 paused, 10 hard-stopped, 10 ceased and 10 disputed.
Every action is answered in under 2 s whatever the gateway does; when it comes back
it accepts not one SMS for those cases, and each withdrawal is in the audit log.

(f) The gateway refuses some cases for good (400): the refusal is recorded as a failed
contact with its reason, the cases go on under their policy, none ends as Failed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Worker

import starter
from activities.providers.webhook import WebhookProvider
from dunning import case_client
from dunning.settings import Settings
from schemas.case import CaseInput
from schemas.commands import CeaseContact, DisputeOpen, HardStop, Pause, Payment
from schemas.policy import ActionSpec, Policy, Stage
from tests.factories import TOTAL, case_input
from tests.faults.harness import SECRET
from tests.records import audit_events
from tests.webhook_gateway import Gateway
from worker import build_worker
from workflows.loan_collection import LoanCollection

OP = {"operator": "op-7", "reason": "during the outage"}
ANSWER_WITHIN_S = 2.0


def seam_policy() -> Policy:
    """One SMS at opening, then nothing for long: a minute-long policy day (no window:
    an attempt lasts a policy day), the legal handoff far away."""
    return Policy(
        name="seam",
        version=1,
        day_length=timedelta(minutes=1),
        compliance="cn",
        stages=(
            Stage(
                name="reminder",
                from_dpd=1,
                actions=(ActionSpec(channel="sms", template="reminder", at_days=(0,)),),
            ),
            Stage(name="legal", from_dpd=60, actions=(ActionSpec(channel="legal_handoff"),)),
        ),
    )


@pytest.fixture
async def webhook_worker(
    fault_client: Client, fault_settings: Settings, gateway: Gateway
) -> AsyncIterator[tuple[Worker, Settings]]:
    queue = f"seam-{uuid.uuid4().hex[:8]}"
    settings = fault_settings.model_copy(update={"task_queue": queue})
    async with (
        asyncpg.create_pool(fault_settings.database_url, min_size=1, max_size=10) as pool,
        WebhookProvider(gateway.urls(), SECRET, timeout_s=2.0) as provider,
    ):
        async with build_worker(fault_client, pool, queue, settings, provider=provider) as worker:
            yield worker, settings


async def _open(client: Client, settings: Settings, cases: list[CaseInput]) -> None:
    for case in cases:
        params = starter.workflow_input(case).model_copy(update={"policy": seam_policy()})
        await client.start_workflow(
            LoanCollection.run, params, id=case.case_id, task_queue=settings.task_queue
        )


async def _until(check: Callable[[], Awaitable[bool]], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)


@pytest.mark.slow
@pytest.mark.timeout(240)
async def test_actions_during_an_outage_withdraw_every_sms_in_retry(
    fault_client: Client,
    fault_settings: Settings,
    gateway: Gateway,
    webhook_worker: tuple[Worker, Settings],
) -> None:
    _, settings = webhook_worker
    gateway.fail_status = 503
    tag = uuid.uuid4().hex[:6]
    cases = [case_input(f"L-seam-{tag}-{i:02d}") for i in range(50)]
    await _open(fault_client, settings, cases)
    ids = {c.case_id for c in cases}

    async def all_in_retry() -> bool:
        return ids <= gateway.requested_cases()

    await _until(all_in_retry, 60, "every first SMS in retry")

    actions: list[tuple[Any, Any, str]] = [
        (LoanCollection.record_payment, Payment(amount=TOTAL, reference="PAID"), "paid"),
        (LoanCollection.pause_case, Pause(**OP), "paused"),
        (LoanCollection.hard_stop, HardStop(kind="represented", **OP), "hard_stop"),
        (LoanCollection.cease_contact, CeaseContact(channel="sms", **OP), "cease_contact"),
        (LoanCollection.open_dispute, DisputeOpen(**OP), "dispute"),
    ]
    withdrawn_by: dict[str, str] = {}

    operators = asyncio.Semaphore(5)  # five operators at their screens at once

    async def act(case: CaseInput, update: Any, command: Any) -> float:
        async with operators:
            started = time.monotonic()
            await case_client.act(fault_client, case.case_id, update, command)
            return time.monotonic() - started

    timings = await asyncio.gather(
        *(act(case, *actions[i % 5][:2]) for i, case in enumerate(cases))
    )
    for i, case in enumerate(cases):
        withdrawn_by[case.case_id] = actions[i % 5][2]
    assert max(timings) < ANSWER_WITHIN_S, f"slowest answer {max(timings):.2f}s"

    async def all_withdrawn() -> bool:
        async with asyncpg.create_pool(fault_settings.database_url, min_size=1) as pool:
            for case_id in ids:
                events = await audit_events(pool, case_id)
                if not [e for e in events if e.type == "contact_withdrawn"]:
                    return False
        return True

    await _until(all_withdrawn, 60, "every withdrawal in the audit log")
    gateway.fail_status = None
    await asyncio.sleep(8)  # the backoff the attempts would have been in

    delivered = {case_id: gateway.delivered_keys(case_id, "sms") for case_id in ids}
    assert not {k: v for k, v in delivered.items() if v}, "nothing reaches those borrowers"
    async with asyncpg.create_pool(fault_settings.database_url, min_size=1) as pool:
        for case_id in ids:
            events = await audit_events(pool, case_id)
            [withdrawn] = [e for e in events if e.type == "contact_withdrawn"]
            assert withdrawn.rule == withdrawn_by[case_id], (case_id, withdrawn)
            assert not [e for e in events if e.type == "contact_attempted"], case_id
    for case_id in ids:
        described = await fault_client.get_workflow_handle(case_id).describe()
        assert described.status in (
            WorkflowExecutionStatus.RUNNING,
            WorkflowExecutionStatus.COMPLETED,  # the paid ones close
        )
        if withdrawn_by[case_id] != "paid":
            await fault_client.get_workflow_handle(case_id).terminate("test over")


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_a_provider_that_refuses_for_good_fails_the_contact_never_the_case(
    fault_client: Client,
    fault_settings: Settings,
    gateway: Gateway,
    webhook_worker: tuple[Worker, Settings],
) -> None:
    _, settings = webhook_worker
    tag = uuid.uuid4().hex[:6]
    cases = [case_input(f"L-refused-{tag}-{i:02d}") for i in range(10)]
    refused = {c.case_id for c in cases[:5]}
    gateway.fail_cases.update(dict.fromkeys(refused, 400))
    await _open(fault_client, settings, cases)

    async with asyncpg.create_pool(fault_settings.database_url, min_size=1) as pool:

        async def settled() -> bool:
            for case in cases:
                types = [e.type for e in await audit_events(pool, case.case_id)]
                if not {"contact_failed", "contact_attempted"} & set(types):
                    return False
            return True

        await _until(settled, 60, "every first SMS answered")
        for case in cases:
            events = await audit_events(pool, case.case_id)
            failed = [e for e in events if e.type == "contact_failed"]
            if case.case_id in refused:
                [one] = failed
                assert "HTTP 400" in one.reason and one.channel == "sms", one
                assert "Wang" not in one.reason
            else:
                assert not failed
    for case in cases:
        handle = fault_client.get_workflow_handle_for(LoanCollection.run, case.case_id)
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        status = await handle.query(LoanCollection.status)
        if case.case_id in refused:
            [failure] = status.failures
            assert failure.channel == "sms" and "HTTP 400" in failure.reason
            assert status.next_action is not None  # the policy goes on: the legal stage
        await handle.terminate("test over")
