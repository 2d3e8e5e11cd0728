"""The pacer at the call site: however the worker was handed a paced partner's attempts
(a worker that stalls gets the ones the server dispatched meanwhile all at once:
docs/providers.md, Pacing), their provider is called at most `rate` times in any second,
in the order the attempts reached the worker; an attempt withdrawn while it waits for
its turn is never sent and gives its turn to the next. The partner is a real HTTP
server on loopback that records when each request arrived."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.outbound import OutboundActivities
from activities.pacing import HOLD_S, Pacer, paced_rate, paced_slots
from activities.providers.webhook import WebhookProvider
from dunning import templates
from schemas.activity_io import OutboundRequest, ProviderReceipt
from schemas.channels import PARTNERS
from tests.webhook_gateway import Gateway, running_gateway

SECRET = b"call-pacing"


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    with running_gateway(SECRET) as gw:
        yield gw


def _request(n: int) -> OutboundRequest:
    return OutboundRequest(
        case_id=f"case-P-{n:02d}",
        idempotency_key=f"case-P-{n:02d}:1",
        channel="sms",
        stage="reminder",
        recipient="+8613800138000",
        language="zh-CN",
        template="reminder",
        variables={
            "name": "Wang",
            "loan_id": f"P-{n:02d}",
            "days_past_due": "3",
            "amount": "100.00",
            "currency": "CNY",
        },
    )


def _outbound(provider: WebhookProvider, rate: float) -> OutboundActivities:
    return OutboundActivities(
        {partner: provider for partner in PARTNERS}, templates.current(), rates={"sms": rate}
    )


def _env(deadline_s: float = 60.0, try_s: float = 10.0) -> ActivityEnvironment:
    """An activity started now, with the timeouts the workflow gives an SMS: the try's
    start-to-close and the attempt's deadline (schedule-to-close)."""
    env = ActivityEnvironment()
    now = datetime.now(UTC)
    env.info = dataclasses.replace(
        env.info,
        scheduled_time=now,
        current_attempt_scheduled_time=now,
        started_time=now,
        schedule_to_close_timeout=timedelta(seconds=deadline_s),
        start_to_close_timeout=timedelta(seconds=try_s),
    )
    return env


def _max_in_a_second(times: list[float]) -> int:
    """The most arrivals in any window of one second, [t, t + 1)."""
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u < t + 1.0) for i, t in enumerate(times)), default=0)


def _arrived(gateway: Gateway) -> list[tuple[str, float]]:
    with gateway.lock:
        return [(str(r.body["case_id"]), r.at) for r in gateway.requests if r.status == 200]


async def test_attempts_handed_over_at_once_reach_the_partner_at_its_rate_in_order(
    gateway: Gateway,
) -> None:
    rate, count = 4.0, 12
    async with WebhookProvider(gateway.urls(), SECRET, timeout_s=2.0) as provider:
        send = _outbound(provider, rate).activity("send_sms")
        # Twelve attempts reach the worker at the same moment, as after a stall.
        receipts: list[ProviderReceipt] = await asyncio.gather(
            *(_env().run(send, _request(n)) for n in range(count))
        )
    arrived = _arrived(gateway)
    times = [at for _, at in arrived]
    assert [r.outcome for r in receipts] == ["delivered"] * count
    assert len(arrived) == count
    assert _max_in_a_second(times) <= rate, times
    # Spread, not slowed: twelve at 4/s take about 11 intervals of a quarter second.
    assert (count - 1) / rate <= max(times) - min(times) <= (count - 1) / rate * 1.1 + 0.5
    # In the order they reached the worker.
    assert [case for case, _ in arrived] == [_request(n).case_id for n in range(count)]


async def test_an_attempt_withdrawn_while_waiting_for_its_turn_is_never_sent(
    gateway: Gateway,
) -> None:
    rate = 0.5
    heartbeats: list[Any] = []
    async with WebhookProvider(gateway.urls(), SECRET, timeout_s=2.0) as provider:
        send = _outbound(provider, rate).activity("send_sms")
        first = asyncio.ensure_future(_env().run(send, _request(0)))
        await asyncio.sleep(0.05)
        waiting_env = _env()
        waiting_env.on_heartbeat = lambda *details: heartbeats.append(details)
        withdrawn = asyncio.ensure_future(waiting_env.run(send, _request(1)))
        await asyncio.sleep(0.05)
        after = asyncio.ensure_future(_env().run(send, _request(2)))
        # The second waits two seconds for its turn, heartbeating: the withdrawal reaches it.
        await asyncio.sleep(1.3)
        assert not withdrawn.done()
        waiting_env.cancel()
        with pytest.raises(asyncio.CancelledError):
            await withdrawn
        started = time.time()
        await asyncio.gather(first, after)
    arrived = _arrived(gateway)
    assert [case for case, _ in arrived] == ["case-P-00", "case-P-02"]
    assert heartbeats, "no heartbeat while waiting for the turn"
    # The withdrawn attempt's turn went to the next one: it went out one interval after
    # the first, not two.
    gap = arrived[1][1] - arrived[0][1]
    assert 1.0 / rate - 0.05 <= gap <= 1.0 / rate + 0.5, gap
    assert time.time() - started < 1.0


async def test_a_turn_that_leaves_no_time_for_the_call_before_the_deadline_sends_nothing(
    gateway: Gateway,
) -> None:
    """The second SMS's turn comes 2 s after the first, with 1.5 s left before its
    deadline and the gateway's timeout 2 s: were it sent, the server could end the
    attempt (recorded as expired) while the gateway delivers it. It is not sent, and
    its retry is past the deadline, so the server gives up and the case records it as
    expired, decided again at the next opening."""
    rate = 0.5
    async with WebhookProvider(gateway.urls(), SECRET, timeout_s=2.0) as provider:
        send = _outbound(provider, rate).activity("send_sms")
        first = asyncio.ensure_future(_env().run(send, _request(0)))
        await asyncio.sleep(0.05)
        with pytest.raises(ApplicationError) as refused:
            await _env(deadline_s=3.5).run(send, _request(1))
        await first
        # A try whose own timeout runs short is tried again, as after any failure.
        with pytest.raises(ApplicationError) as short:
            await _env(try_s=1.0).run(send, _request(2))
    assert [case for case, _ in _arrived(gateway)] == ["case-P-00"]
    error = refused.value
    assert error.type == "NoTimeForCall" and not error.non_retryable
    assert error.next_retry_delay is not None
    assert error.next_retry_delay > timedelta(seconds=1.5), "the retry is past the deadline"
    assert "deadline" in str(error)
    assert short.value.type == "NoTimeForCall" and short.value.next_retry_delay is None


async def test_the_pacer_spaces_its_turns_and_keeps_the_order() -> None:
    pacer = Pacer(rate=10.0)
    turns: list[tuple[int, float]] = []

    async def take(n: int) -> None:
        await pacer.turn()
        turns.append((n, time.monotonic()))
        pacer.began()

    await asyncio.gather(*(take(n) for n in range(6)))
    assert [n for n, _ in turns] == list(range(6))
    gaps = [b - a for (_, a), (_, b) in itertools.pairwise(turns)]
    assert min(gaps) >= 0.1, gaps
    with pytest.raises(ValueError, match="rate"):
        Pacer(rate=0.0)


async def test_a_call_that_begins_late_after_its_turn_delays_the_next_calls() -> None:
    """A stall between a turn and its call (the worker busy with other tasks): the
    calls after it still begin an interval apart, not sooner."""
    pacer = Pacer(rate=10.0)
    begun: list[float] = []

    async def call(stall_s: float) -> None:
        await pacer.turn()
        await asyncio.sleep(stall_s)  # the stall, before the provider is asked
        pacer.began()
        begun.append(time.monotonic())

    async def not_made() -> None:
        await pacer.turn()
        pacer.passed()

    late = asyncio.ensure_future(call(0.3))
    await asyncio.sleep(0.01)
    await asyncio.gather(late, not_made(), call(0.0), call(0.0))
    gaps = [b - a for a, b in itertools.pairwise(begun)]
    assert len(begun) == 3
    assert min(gaps) >= 1.0 / paced_rate(10.0) - 0.005, gaps


def test_a_paced_worker_holds_no_more_than_its_tries_can_wait_for() -> None:
    """What a paced partner's worker holds at once (its activity slots): the last one
    held gets its turn well inside the try's 10 s timeout, at the pacer's rate; the
    rest of a backlog waits in the server's queue."""
    for rate in (0.2, 2.0, 10.0, 40.0):
        slots = paced_slots(rate)
        assert slots >= 1
        assert (slots - 1) / paced_rate(rate) <= HOLD_S * (1 + 0.05) + 1e-9
        assert slots >= min(rate * HOLD_S, 1)
    assert paced_slots(10.0) == 30
