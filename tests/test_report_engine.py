"""The report on what the engine itself wrote: two real cases on the time-skipping
server (one walked to legal, one paid in two payments), read back by the report and
checked against their audit rows. They are in Hong Kong dollars, a currency no other
test uses, so their group is theirs alone whatever else the session's log holds."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from dunning.report.period import Period
from dunning.report.query import effectiveness
from dunning.settings import Settings
from schemas.commands import Payment
from tests.factories import TOTAL, case_input, open_with_starter
from tests.records import audit_events
from tests.timeskip import skip
from workflows.loan_collection import LoanCollection


async def test_report_reads_the_engine_log(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    started = datetime.now(UTC) - timedelta(minutes=1)
    tag = uuid.uuid4().hex[:6]
    walked = case_input(f"L-rep-walk-{tag}", loan={"currency": "HKD"})
    paid = case_input(f"L-rep-paid-{tag}", loan={"currency": "HKD"})
    walking = await open_with_starter(ts_env.client, stack_settings, task_queue, walked)
    paying = await open_with_starter(ts_env.client, stack_settings, task_queue, paid)
    await skip(ts_env, timedelta(days=3))
    await paying.signal(LoanCollection.payment, Payment(amount=Decimal("70.00"), reference="p1"))
    await skip(ts_env, timedelta(hours=1))
    await paying.signal(LoanCollection.payment, Payment(amount=Decimal("1000.00"), reference="p2"))
    async with ts_env.time_skipping_unlocked():  # type: ignore[attr-defined]
        assert (await paying.result()).closed_reason == "paid"
        assert (await walking.result()).closed_reason == "transferred_to_legal"

    log = {c.case_id: await audit_events(pool, c.case_id) for c in (walked, paid)}
    # A week after the last event, so the week in which the walked case left is observed.
    end = max(events[-1].at for events in log.values()) + timedelta(days=7)
    report = await effectiveness(pool, Period(started, end))
    [group] = [g for g in report.groups if g.currency == "HKD"]
    # The shipped default strategy placed both: one segment, the champion arm.
    assert (group.strategy, group.arm, group.segment, group.policy) == (
        "default@1",
        "champion",
        "all",
        "default@1",
    )
    assert group.cases_opened == 2
    assert group.cases_closed == {"paid": 1, "transferred_to_legal": 1}
    assert group.amount_at_opening == 2 * TOTAL
    assert group.amount_recovered == TOTAL
    assert group.cure_rate == 0.5
    contacts = sum(1 for events in log.values() for e in events if e.type == "contact_attempted")
    assert group.contacts == contacts
    calls = [
        e
        for events in log.values()
        for e in events
        if e.type == "contact_attempted" and e.channel == "call"
    ]
    assert group.calls == len(calls)
    # The walked case went through every stage; the paid one stayed in reminder.
    assert [s.reached for s in group.stages] == [2, 1, 1, 1]
    assert [s.entered for s in group.stages] == [2, 1, 1, 1]
    assert group.stages[0].cured == 1 and group.stages[0].recovered == TOTAL
    # Paid 3 days and an hour after opening (policy days are 24 h here).
    assert group.days_to_cure_mean is not None and 3 < group.days_to_cure_mean < 3.2
    # Roll rates, the walked case at ages 0, 7, 14, ...: reminder until just after day 14
    # (so still at boundary 14), negotiation from then, field visit from day 29, legal
    # and closed at day 89: r->r twice, r->n, n->n, n->f, f->f seven times (35..84),
    # f->transferred (boundary 91); the paid case r->paid in its first week.
    roll = group.roll_rates
    assert roll.to_states == [*roll.from_stages, "paid", "transferred_to_legal"]
    assert roll.counts == [
        [2, 1, 0, 0, 1, 0],
        [0, 1, 1, 0, 0, 0],
        [0, 0, 7, 0, 0, 1],
        [0, 0, 0, 0, 0, 0],
    ]
