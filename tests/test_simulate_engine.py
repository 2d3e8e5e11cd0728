"""Simulator and engine agree: 200 cases, a deterministic borrower-response model, the
same contacts and closures from `dunning simulate`'s fold as from `LoanCollection` on
the time-skipping server.

The engine side fakes the borrower only at the provider boundary: a dialer whose
call outcomes follow the model, and a driver that sends the payments, promises and
disputes the simulated borrower sent, through the workflow's Updates, at the instants
the simulation says. Everything between (decide, evolve, the guard, the audit log) is
the production code on both sides.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import starter
from activities.providers.base import Content
from activities.providers.sandbox import SandboxProvider
from dunning.samples import due_date_for
from dunning.settings import Settings
from dunning.sim.borrower import BorrowerAction
from dunning.sim.portfolio import generate
from dunning.sim.responses import ResponseModel
from dunning.sim.runner import Placement, simulate_case
from dunning.strategies import cached_policies
from dunning.strategies import load_file as load_strategy_file
from schemas.activity_io import OutboundRequest, ProviderReceipt
from schemas.case import CaseInput
from schemas.events import Event
from schemas.status import ActionResult
from tests.records import audit_events
from worker import build_worker

CASES = 200
DAYS = 18
# Compare what happened before this instant after opening: well past the last action
# either side sends, short of the instant the engine's clock is moved to.
CUTOFF = timedelta(days=DAYS) - timedelta(hours=12)
BATCH = timedelta(seconds=5)  # responses this close together are sent together
SHANGHAI = ZoneInfo("Asia/Shanghai")
BEHAVIOURS = ("payer", "promiser", "breaker", "partial", "disputer", "silent")

MODEL = ResponseModel.model_validate(
    {
        "name": "agreement",
        "respond_after_hours": 1.5,  # contacts end at 22:00: responses stay before midnight
        "promise_days": 5,
        "dispute_days": 10,
        "dispute_for_borrower": 0,  # resolved for the lender: collection resumes
        "responses": [
            {"segment": "payer", "channel": "sms", "answer": 1, "pay_full": 1},
            {"segment": "promiser", "channel": "call", "answer": 1, "promise": 1, "keep": 1},
            {"segment": "breaker", "channel": "call", "answer": 1, "promise": 1, "keep": 0},
            # Half at the first reminder call, the rest at the first negotiation SMS.
            {
                "segment": "partial",
                "stage": "reminder",
                "channel": "call",
                "answer": 1,
                "pay_part": 1,
                "part_share": 0.5,
            },
            {
                "segment": "partial",
                "stage": "negotiation",
                "channel": "sms",
                "answer": 1,
                "pay_full": 1,
            },
            {"segment": "disputer", "channel": "call", "answer": 1, "dispute": 1},
            {"answer": 0},
        ],
    }
)

STRATEGY = "\n".join(
    [
        'name = "agreement"',
        "version = 1",
        *(
            f'[[rules]]\nsegment = "{b}"\nwhen = {{ segment = ["{b}"] }}\npolicy = "default"'
            for b in BEHAVIOURS
        ),
        '[[rules]]\nsegment = "other"\npolicy = "default"',
    ]
)


class ModelDialer(SandboxProvider):
    """The sandbox provider, with call outcomes from the response model (deterministic:
    every probability in it is 0 or 1)."""

    def __init__(self, pool: asyncpg.Pool, segments: dict[str, str]) -> None:
        super().__init__(pool)
        self._segments = segments

    async def deliver(self, request: OutboundRequest, content: Content) -> ProviderReceipt:
        if request.channel != "call":
            return await super().deliver(request, content)
        rule = MODEL.response(self._segments[request.case_id], request.stage, "call")
        outcome = "answered" if rule.answer >= 1 else "no_answer"
        return await self._record(request, None, outcome=outcome)


@pytest.fixture
async def model_worker(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool, stack_settings: Settings, task_queue: str
) -> AsyncIterator[tuple[Worker, dict[str, str]]]:
    segments: dict[str, str] = {}
    provider = ModelDialer(pool, segments)
    worker = build_worker(ts_env.client, pool, task_queue, stack_settings, provider=provider)
    async with worker:
        yield worker, segments


SKEW = timedelta(seconds=60)  # engine instants trail the simulated ones by this at most
IGNORED = {"provider_ref", "idempotency_key", "document_id", "sha256", "case", "policy", "detail"}


def _differs(engine: Event, sim: Event) -> str | None:
    """Where two events disagree: the kind of event and what it says must be equal,
    except provider references and document hashes; instants and durations the engine
    measured on its own clock may be off by `SKEW` (it runs a few seconds behind)."""
    if engine.type != sim.type:
        return f"{engine.type} != {sim.type}"
    mine, theirs = engine.model_dump(exclude=IGNORED), sim.model_dump(exclude=IGNORED)
    for key in mine.keys() | theirs.keys():
        if not _close(mine.get(key), theirs.get(key)):
            return f"{engine.type}.{key}: {mine.get(key)!r} != {theirs.get(key)!r}"
    return None


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, datetime) and isinstance(b, datetime):
        return abs(a - b) <= SKEW
    if isinstance(a, timedelta) and isinstance(b, timedelta):
        return abs(a - b) <= SKEW
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _first_difference(engine: list[Event], sim: list[Event]) -> str | None:
    for index, (a, b) in enumerate(zip(engine, sim, strict=False)):
        why = _differs(a, b)
        if why is not None:
            return f"event {index + 1}: {why}"
    if len(engine) != len(sim):
        return f"{len(engine)} events in the engine, {len(sim)} simulated"
    return None


def _contacts(events: list[Event]) -> list[tuple[str, str]]:
    return [
        (e.type, str(getattr(e, "channel", "")))
        for e in events
        if e.type in ("contact_attempted", "field_visit_scheduled", "handed_to_legal")
    ]


def _closure(events: list[Event]) -> str | None:
    return next((str(getattr(e, "reason", "")) for e in events if e.type == "case_closed"), None)


async def test_the_simulator_predicts_what_the_engine_does_on_200_cases(
    ts_env: WorkflowEnvironment,
    model_worker: tuple[Worker, dict[str, str]],
    pool: asyncpg.Pool,
    task_queue: str,
    stack_settings: Settings,
    tmp_path: Path,
) -> None:
    for rule in MODEL.responses:
        for p in (rule.answer, rule.promise, rule.keep, rule.pay_full, rule.pay_part, rule.dispute):
            assert p in (0, 1), "the engine's dialer can follow a deterministic model only"
    _, segments = model_worker
    (tmp_path / "agreement.toml").write_text(STRATEGY, encoding="utf-8")
    strategy = load_strategy_file(tmp_path / "agreement.toml")
    tag = uuid.uuid4().hex[:6]
    cases: list[CaseInput] = []
    for i, case in enumerate(generate(CASES, seed=21)):
        loan = case.loan.model_copy(update={"id": f"AG-{tag}-{i:03d}"})
        dpd = case.loan.days_past_due
        if i % 5 >= 3:  # opened late: in negotiation soon, in field visit, or legal soon
            dpd = 10 if i % 5 == 3 else 28 if i % 10 == 4 else 87
        # Opened today, as the engine opens it: the due date agrees with the days past due.
        due = date.fromisoformat(due_date_for(dpd, case.borrower.timezone))
        loan = loan.model_copy(update={"days_past_due": dpd, "due_date": due})
        cases.append(case.model_copy(update={"loan": loan, "segment": BEHAVIOURS[i % 6]}))
    for case in cases:
        segments[case.case_id] = strategy.rule_for(case).segment

    # The engine opens every case (as the starter does) on the time-skipping server, at
    # 11:00 in Shanghai (09:00 in Urumqi): inside the window, whenever the test runs, and
    # an hour from its edge. A contact due a whole number of days after opening then never
    # falls within the driver's lateness of 08:00; opened at 08:00 in Urumqi, a dispute the
    # driver opened a few seconds later than it resolved one brought the engine's next SMS
    # to 07:59:5x (deferred) where the simulator's was at 08:00:0x (sent).
    now = (await ts_env.get_current_time()).astimezone(SHANGHAI)
    opening = datetime.combine(now.date(), dt_time(11), tzinfo=SHANGHAI)
    await ts_env.sleep((opening if opening > now else opening + timedelta(days=1)) - now)
    settings = stack_settings.model_copy(update={"task_queue": task_queue, "strategy": None})
    named = [case.model_copy(update={"policy": "default"}) for case in cases]
    opened = await starter.open_cases(ts_env.client, settings, named)
    assert {r.outcome for r in opened} == {"opened"}, {r.detail for r in opened}

    async def opened_at(case: CaseInput) -> datetime:
        for _ in range(600):
            events = await audit_events(pool, case.case_id)
            if events:
                return events[0].at
            await asyncio.sleep(0.1)
        raise AssertionError(f"{case.case_id}: no case_opened in the audit log")

    found = await asyncio.gather(*map(opened_at, cases))
    starts = dict(zip([c.case_id for c in cases], found, strict=True))

    # The simulator folds the same cases from the same instants with the model.
    policy = cached_policies()("default")
    predicted: dict[str, list[Event]] = {}
    actions: list[tuple[datetime, str, BorrowerAction]] = []
    for case in cases:
        placement = Placement("engine", case, policy, segments[case.case_id])
        result = simulate_case(placement, MODEL, 1, starts[case.case_id], DAYS, keep_log=True)
        assert result.events is not None and result.actions is not None
        cutoff = starts[case.case_id] + CUTOFF
        predicted[case.case_id] = [e for e in result.events if e.at < cutoff]
        actions += [(a.at, case.case_id, a) for a in result.actions if a.at < cutoff]
    assert len({segments[c] for c in predicted}) == len(BEHAVIOURS)
    closures = {_closure(events) for events in predicted.values()}
    assert {"paid", None} <= closures, closures

    # The driver plays the borrowers' responses on the engine at the simulated instants,
    # a few seconds' worth at a time: the test server's clock runs on in real time
    # between skips, so a response goes out a little late, never early.
    batches: list[list[tuple[datetime, str, BorrowerAction]]] = []
    for at, case_id, action in sorted(actions, key=lambda item: item[0]):
        if batches and at - batches[-1][0][0] <= BATCH:
            batches[-1].append((at, case_id, action))
        else:
            batches.append([(at, case_id, action)])
    answers: dict[tuple[str, datetime], bool] = {}

    async def send(case_id: str, action: BorrowerAction) -> None:
        handle = ts_env.client.get_workflow_handle(case_id)
        try:
            await handle.execute_update(action.update, action.command, result_type=ActionResult)
            answers[(case_id, action.at)] = True
        except WorkflowUpdateFailedError:
            answers[(case_id, action.at)] = False

    late = timedelta(0)
    for batch in batches:
        last = batch[-1][0]
        now = await ts_env.get_current_time()
        if last > now:
            await ts_env.sleep(last - now)
        late = max(late, now - last)
        await asyncio.gather(*(send(case_id, action) for _, case_id, action in batch))
    assert late < SKEW - BATCH, f"the driver fell {late} behind"
    end = max(starts.values()) + timedelta(days=DAYS)
    await ts_env.sleep(end - await ts_env.get_current_time())

    assert answers == {(case_id, a.at): a.accepted for _, case_id, a in actions}
    mismatches = []
    for case in cases:
        cutoff = starts[case.case_id] + CUTOFF
        engine = [e for e in await audit_events(pool, case.case_id) if e.at < cutoff]
        sim = predicted[case.case_id]
        if _contacts(engine) != _contacts(sim) or _closure(engine) != _closure(sim):
            mismatches.append((case.case_id, segments[case.case_id], "contacts or closure"))
        why = _first_difference(engine, sim)
        if why is not None:
            mismatches.append((case.case_id, segments[case.case_id], why))
    assert not mismatches, mismatches[:5]
    assert sum(len(batch) for batch in batches) == len(actions) > CASES
    for case in cases:
        if _closure(await audit_events(pool, case.case_id)) is None:
            await ts_env.client.get_workflow_handle(case.case_id).terminate("test over")
