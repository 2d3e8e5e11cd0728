"""Pacing the morning burst: a partner's rate limit is its own task queue's, enforced by
Temporal, so a burst of SMS due at one window opening is spread at the gateway's rate,
oldest first, while calls (an unpaced partner) and audit appends are not held up; what
the limit cannot send before the window closes expires and is decided again at the
next opening. The gateway is a real HTTP server on loopback that records arrivals."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from activities.pacing import paced_rate
from activities.providers.webhook import WebhookProvider
from dunning.runtime import build_worker, workflow_runner
from dunning.settings import Settings
from dunning.temporal_client import data_converter
from schemas.commands import Note, Pause
from schemas.policy import Policy
from tests.factories import case_input
from tests.records import audit_events
from tests.webhook_gateway import Gateway, Received, running_gateway
from workflows.inputs import LoanCollectionInput
from workflows.loan_collection import LoanCollection

SECRET = b"pacing-secret"


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    with running_gateway(SECRET) as gw:
        yield gw


def _zone(now: datetime) -> ZoneInfo:
    """A borrower time zone whose local day is far from midnight now (a window of a few
    minutes from now must not wrap)."""
    for name in ("Asia/Shanghai", "Europe/London", "America/New_York"):
        zone = ZoneInfo(name)
        if 1 <= now.astimezone(zone).hour <= 21:
            return zone
    raise AssertionError("no zone found")  # pragma: no cover: one of the three always is


def _policy(zone: ZoneInfo, opens: datetime, closes: datetime, channel: str) -> Policy:
    """One stage, one contact on its first day, inside a window [opens, closes) of the
    borrower's local day. Accelerated (an hour a day), so the window is the policy's own."""
    action: dict[str, Any] = {"channel": channel, "at_days": [0]}
    if channel == "sms":
        action["template"] = "reminder"
    return Policy.model_validate(
        {
            "name": "pacing",
            "version": 1,
            "compliance": "cn",
            "day_length": timedelta(hours=1),
            "contact_window": {
                "start": opens.astimezone(zone).time(),
                "end": closes.astimezone(zone).time(),
            },
            "stages": [{"name": "reminder", "from_dpd": 1, "actions": [action]}],
        }
    )


async def _open(
    client: Client, task_queue: str, policy: Policy, zone: ZoneInfo, loans: list[str]
) -> list[WorkflowHandle[Any, Any]]:
    async def one(loan: str) -> WorkflowHandle[Any, Any]:
        case = case_input(loan, borrower={"timezone": zone.key})
        return await client.start_workflow(
            LoanCollection.run,
            LoanCollectionInput(case=case, policy=policy),
            id=case.case_id,
            task_queue=task_queue,
        )

    return list(await asyncio.gather(*(one(loan) for loan in loans)))


def _arrivals(gateway: Gateway, path: str) -> dict[str, Received]:
    """The first request of each case the gateway accepted on `path`."""
    with gateway.lock:
        first: dict[str, Received] = {}
        for r in gateway.requests:
            if r.path == path and r.status == 200:
                first.setdefault(str(r.body["case_id"]), r)
        return first


def _max_in_a_second(times: list[float]) -> int:
    """The most arrivals in any window of one second, [t, t + 1)."""
    times = sorted(times)
    return max((sum(1 for u in times[i:] if u < t + 1.0) for i, t in enumerate(times)), default=0)


async def _until(check: Any, within: float, step: float = 0.2) -> None:
    ends = time.monotonic() + within
    while not check():
        assert time.monotonic() < ends, "timed out waiting"
        await asyncio.sleep(step)


async def _dispatch(handle: WorkflowHandle[Any, Any], activity: str) -> tuple[float, float]:
    """When the case's first `activity` was scheduled and when a worker was handed it
    (the server's clock, epoch seconds)."""
    history = await handle.fetch_history()
    scheduled: dict[int, float] = {}
    for event in history.events:
        at = event.event_time.ToDatetime().timestamp()
        if (
            event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and event.activity_task_scheduled_event_attributes.activity_type.name == activity
        ):
            scheduled[event.event_id] = at
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            if started.scheduled_event_id in scheduled:
                return scheduled[started.scheduled_event_id], at
    raise AssertionError(f"{handle.id}: no {activity} started")


RATE = 2.0
BURST = 36  # SMS due at the same opening
LATE = 4  # SMS cases opened while the burst drains
CALLS = 8  # calls due at the same opening: the dialer has no limit


async def test_a_burst_at_the_opening_goes_out_at_the_gateways_rate_oldest_first(
    dev_client: Client,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
    gateway: Gateway,
) -> None:
    settings = stack_settings.model_copy(update={"partner_rates": {"sms": RATE}})
    now = datetime.now().astimezone()
    zone = _zone(now)
    opens = (now + timedelta(seconds=12)).replace(microsecond=0)
    closes = opens + timedelta(minutes=10)
    sms, call = (_policy(zone, opens, closes, channel) for channel in ("sms", "call"))
    prefix = f"L-pace-{uuid.uuid4().hex[:6]}"
    async with (
        WebhookProvider(gateway.urls(), SECRET, timeout_s=2.0) as provider,
        build_worker(dev_client, pool, task_queue, settings, provider=provider),
    ):
        burst = await _open(
            dev_client, task_queue, sms, zone, [f"{prefix}-s{i:02d}" for i in range(BURST)]
        )
        calls = await _open(
            dev_client, task_queue, call, zone, [f"{prefix}-c{i:02d}" for i in range(CALLS)]
        )
        assert datetime.now().astimezone() < opens, "the cases opened before the window"
        await asyncio.sleep(max(0.0, opens.timestamp() - time.time()))

        # Cases that open while the burst drains are due after it: they queue behind it.
        await _until(lambda: len(_arrivals(gateway, "/sms")) >= 2, 15)
        late = await _open(
            dev_client, task_queue, sms, zone, [f"{prefix}-l{i}" for i in range(LATE)]
        )

        # A case whose SMS waits in the gateway's queue gets a note: the note is in the
        # audit log at once, not behind the SMS (appends run on the cases' queue).
        waiting, paused = late[0], late[1]

        async def queued(handle: WorkflowHandle[Any, Any]) -> bool:
            status = await handle.query(LoanCollection.status)
            return status.in_flight is not None

        polled = time.monotonic()
        while not await queued(waiting):
            assert time.monotonic() - polled < 10
            await asyncio.sleep(0.1)
        noted = time.monotonic()
        await waiting.execute_update(
            LoanCollection.add_note, Note(reason="called in", operator="op-1")
        )

        async def note_logged() -> bool:
            return any(e.type == "note_recorded" for e in await audit_events(pool, waiting.id))

        while not await note_logged():
            assert time.monotonic() - noted < 10
            await asyncio.sleep(0.05)
        note_took = time.monotonic() - noted
        sms_still_waiting = waiting.id not in _arrivals(gateway, "/sms")

        # A pause withdraws an SMS waiting in the queue: it never starts.
        polled = time.monotonic()
        while not await queued(paused):
            assert time.monotonic() - polled < 10
            await asyncio.sleep(0.1)
        assert paused.id not in _arrivals(gateway, "/sms"), "queued behind the burst"
        await paused.execute_update(
            LoanCollection.pause_case, Pause(reason="hardship", operator="op-1")
        )

        total = BURST + LATE - 1  # all but the paused case's
        await _until(lambda: len(_arrivals(gateway, "/sms")) == total, total / RATE + 30)
        await _until(lambda: len(_arrivals(gateway, "/call")) == CALLS, 10)
        sms_dispatch = {
            h.id: await _dispatch(h, "send_sms") for h in [*burst, *late] if h is not paused
        }
        withdrawn = [e for e in await audit_events(pool, paused.id) if "contact" in e.type]
        call_dispatch = {h.id: await _dispatch(h, "place_call") for h in calls}
        for handle in [*burst, *late, *calls]:
            await handle.terminate("test over")

    scheduled = {c: d[0] for c, d in sms_dispatch.items()}
    started = sorted(d[1] for d in sms_dispatch.values())
    arrived = _arrivals(gateway, "/sms")
    times = sorted(r.at for r in arrived.values())
    span = times[-1] - times[0]
    busiest = _max_in_a_second(times)
    call_times = [r.at for r in _arrivals(gateway, "/call").values()]
    delivered_order = sorted(arrived, key=lambda c: arrived[c].at)
    scheduled_order = sorted(scheduled, key=lambda c: scheduled[c])
    inverted = [
        scheduled[b] - scheduled[a]
        for i, a in enumerate(scheduled_order)
        for b in scheduled_order[i + 1 :]
        if arrived[a].at > arrived[b].at
    ]
    inversions, worst = len(inverted), max(inverted, default=0.0)
    displacement = max(
        abs(delivered_order.index(c) - scheduled_order.index(c)) for c in scheduled_order
    )
    print(
        f"{total} SMS at {RATE}/s: first at opening+{times[0] - opens.timestamp():.2f}s, "
        f"span {span:.1f}s, busiest second {busiest}; calls done by "
        f"opening+{max(call_times) - opens.timestamp():.2f}s; note logged in "
        f"{note_took:.2f}s (SMS still queued: {sms_still_waiting}); order: {inversions} "
        f"inversions of {total * (total - 1) // 2} pairs (scheduled at most {worst:.2f}s "
        f"apart), max displacement {displacement}; scheduled over "
        f"{max(scheduled.values()) - min(scheduled.values()):.2f}s"
    )
    call_waits = [d[1] - d[0] for d in call_dispatch.values()]
    sms_waits = [d[1] - d[0] for d in sms_dispatch.values()]
    print(
        f"dispatch: busiest second {_max_in_a_second(started)}; SMS waited up to "
        f"{max(sms_waits):.1f}s in their queue, calls {max(call_waits):.2f}s"
    )
    assert [(e.type, getattr(e, "rule", None)) for e in withdrawn] == [
        ("contact_withdrawn", "paused")
    ]
    assert paused.id not in arrived
    # Every SMS went out, once, none before the window opened.
    assert sorted(arrived) == sorted(scheduled)
    assert gateway.accepted_counts().most_common(1)[0][1] == 1
    assert times[0] >= opens.timestamp()
    # Temporal hands out at most the rate per second, +2 in the first second after the
    # queue was idle (docs/providers.md, Pacing: the poll already open and the limiter's
    # token); the pacer at the call site keeps the gateway to the rate itself; the burst
    # took about N / rate (the pacer's, a little under the gateway's).
    assert _max_in_a_second(started) <= RATE + 2
    assert busiest <= RATE
    assert (total - 1) / RATE <= span <= (total - 1) / paced_rate(RATE) + 5
    # The dialer is not paced by the SMS gateway's limit: its calls never queue, and go
    # out past SMS that were waiting before them.
    assert max(call_waits) < 1.5
    overtaken = [
        c
        for c, (c_scheduled, c_started) in call_dispatch.items()
        if any(s < c_scheduled and c_started < t for s, t in sms_dispatch.values())
    ]
    assert overtaken, "no call was scheduled while SMS were queued"
    # The audit append of a case waiting for the gateway is not behind the gateway: its
    # note is in the log while its SMS still waits (behind the whole burst).
    assert sms_still_waiting and note_took < 10
    # Oldest first: the order at the gateway is the order the attempts were scheduled in
    # (one partition per queue; docs/providers.md, Pacing), but for attempts scheduled
    # within a moment of each other (the server hands them to matching in parallel).
    assert worst < 0.5, (delivered_order, scheduled_order)
    for case_id in (h.id for h in late if h is not paused):
        jumped = [
            c
            for c in scheduled
            if scheduled[c] < scheduled[case_id] - 1.0 and arrived[c].at > arrived[case_id].at
        ]
        assert not jumped, f"{case_id}, opened during the burst, went out before {jumped}"


async def test_what_the_limit_cannot_send_before_the_close_expires_and_goes_out_next_opening(
    ts_env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
    gateway: Gateway,
) -> None:
    """On the time-skipping server, whose clock runs in real time until a test skips it
    (so the next opening is a skip away): the window closes (its deadline) while the
    paced queue still holds SMS. The worker's own limit paces them here; whether the
    Java test server also applies the queue's server-side rate is not relied on."""
    rate, cases = 2.0, 40
    settings = stack_settings.model_copy(update={"partner_rates": {"sms": rate}})
    now = await ts_env.get_current_time()
    lag = now.timestamp() - time.time()  # the server's clock minus this one
    zone = _zone(now)
    opens = (now + timedelta(seconds=10)).replace(microsecond=0)
    closes = opens + timedelta(seconds=75)  # the attempts' deadline: 15 s after opening
    policy = _policy(zone, opens, closes, "sms")
    prefix = f"L-expire-{uuid.uuid4().hex[:6]}"
    async with (
        WebhookProvider(gateway.urls(), SECRET, timeout_s=2.0) as provider,
        build_worker(ts_env.client, pool, task_queue, settings, provider=provider),
    ):
        handles = await _open(
            ts_env.client, task_queue, policy, zone, [f"{prefix}-{i:02d}" for i in range(cases)]
        )
        deadline = closes - timedelta(minutes=1)

        async def outcomes() -> dict[str, list[Any]]:
            found: dict[str, list[Any]] = {}
            for handle in handles:
                events = await audit_events(pool, handle.id)
                found[handle.id] = [
                    e for e in events if e.type in ("contact_attempted", "contact_expired")
                ]
            return found

        # Real time passes: the window opens, the limit paces, the deadline comes.
        while (await ts_env.get_current_time()) < deadline + timedelta(seconds=4):  # noqa: ASYNC110
            await asyncio.sleep(0.5)
        first = await outcomes()
        while any(not v for v in first.values()):
            assert (await ts_env.get_current_time()) < deadline + timedelta(seconds=20)
            await asyncio.sleep(0.5)
            first = await outcomes()
        before_close = {c: r.at + lag for c, r in _arrivals(gateway, "/sms").items()}

        expired = {c: v[0] for c, v in first.items() if v[0].type == "contact_expired"}
        sent = {c for c, v in first.items() if v[0].type == "contact_attempted"}
        print(f"{len(sent)} sent before the deadline at {rate}/s, {len(expired)} expired")
        assert len(sent) >= rate * 8 and len(expired) >= 5
        # An SMS that waited for its turn past the point where the gateway's answer
        # could still come before the deadline is not sent: what the gateway got is
        # what the cases recorded as sent, none delivered yet recorded as expired.
        assert set(before_close) == sent, "what was recorded as sent is what the gateway got"
        assert max(before_close.values()) < deadline.timestamp() <= closes.timestamp()
        tomorrow = (opens + timedelta(days=1)).astimezone(zone)
        for event in expired.values():
            assert event.deadline == deadline
            assert event.retry_at.astimezone(zone) == tomorrow, "the next opening"

        # To a few seconds before the next opening, then real time again.
        await ts_env.sleep(tomorrow - (await ts_env.get_current_time()) - timedelta(seconds=3))
        lag = (await ts_env.get_current_time()).timestamp() - time.time()
        assert not set(_arrivals(gateway, "/sms")) - sent, "nothing while the window is shut"
        await _until(lambda: len(_arrivals(gateway, "/sms")) == cases, len(expired) / rate + 15)
        final = await outcomes()
        for handle in handles:
            await handle.terminate("test over")

    arrivals = _arrivals(gateway, "/sms")
    for case_id, event in expired.items():
        again = final[case_id][1]
        assert again.type == "contact_attempted", "decided again and sent at the opening"
        assert again.idempotency_key == event.idempotency_key
        assert tomorrow <= again.at < tomorrow + timedelta(seconds=10)
        assert arrivals[case_id].at + lag >= tomorrow.timestamp()
    assert gateway.accepted_counts().most_common(1)[0][1] == 1


async def test_attempts_scheduled_on_the_cases_queue_before_pacing_replay(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    """Running cases scheduled their attempts on the cases' queue: their histories say
    so. The SDK matches a scheduled activity by id and type, not queue, so the new
    routing replays them without a patch; a changed activity type would not."""
    now = await ts_env.get_current_time()
    zone = _zone(now)
    policy = _policy(zone, now - timedelta(minutes=30), now + timedelta(hours=2), "sms")
    [handle] = await _open(
        ts_env.client, task_queue, policy, zone, [f"L-route-{uuid.uuid4().hex[:6]}"]
    )
    await ts_env.sleep(timedelta(minutes=2))
    assert [e.type for e in await audit_events(pool, handle.id)][-1] == "contact_attempted"
    await handle.terminate("test over")
    history = await handle.fetch_history()

    def scheduled(events: Any) -> list[Any]:
        return [
            e.activity_task_scheduled_event_attributes
            for e in events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            and e.activity_task_scheduled_event_attributes.activity_type.name == "send_sms"
        ]

    [attempt] = scheduled(history.events)
    assert attempt.task_queue.name == f"{task_queue}.sms"
    attempt.task_queue.name = task_queue  # as recorded before the partners' queues
    replayer = Replayer(
        workflows=[LoanCollection],
        workflow_runner=workflow_runner(),
        data_converter=data_converter(stack_settings),
    )
    await replayer.replay_workflow(history)  # raises if not deterministic

    attempt.activity_type.name = "place_call"  # the control: this one diverges
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is not None


async def test_a_dialer_with_two_lines_carries_two_calls_at_once(
    dev_client: Client,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
    gateway: Gateway,
) -> None:
    """Lines are the dialer worker's slots: with each call taking a second at the
    dialer, six calls due at once go two by two."""
    settings = stack_settings.model_copy(update={"partner_lines": {"dialer": 2}})
    gateway.delay_s = 1.0
    now = datetime.now().astimezone()
    zone = _zone(now)
    policy = _policy(zone, now - timedelta(minutes=30), now + timedelta(hours=2), "call")
    prefix = f"L-lines-{uuid.uuid4().hex[:6]}"
    async with (
        WebhookProvider(gateway.urls(), SECRET, timeout_s=3.0) as provider,
        build_worker(dev_client, pool, task_queue, settings, provider=provider),
    ):
        handles = await _open(
            dev_client, task_queue, policy, zone, [f"{prefix}-{i}" for i in range(6)]
        )
        await _until(lambda: len(_arrivals(gateway, "/call")) == 6, 30)
        for handle in handles:
            await handle.terminate("test over")
    starts = sorted(r.at for r in _arrivals(gateway, "/call").values())
    # Each call holds its line for the dialer's second: never three within a second.
    print("calls arrived at", [round(t - starts[0], 2) for t in starts])
    assert _max_in_a_second(starts) <= 2
    assert starts[-1] - starts[0] >= 2.0  # three rounds of two
