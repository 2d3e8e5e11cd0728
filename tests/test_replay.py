"""Determinism: recorded histories replay with the current workflow code.

The histories in tests/histories/ were recorded (`python -m tests.make_histories`)
with the workflow as it was before its last command-changing edit, those in
tests/histories/rules2/ with the compliance guard on (`--generation 2`); replaying
them here is the CI guard that a change to workflows/ which would break running cases
fails the build. `tests/replay_variants.py` shows the guard failing.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
import uuid
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.worker import Worker

import starter
from dunning.audit.replay import (
    ReplayReport,
    fetch_histories,
    replay_all,
    replay_case,
    replay_histories,
)
from dunning.case_client import CaseNotFound
from dunning.cli.audit_replay import collect, render
from dunning.settings import Settings
from schemas.activity_io import APPEND_AUDIT
from schemas.commands import (
    Approve,
    DisputeOpen,
    DisputeResolve,
    Escalate,
    Instalment,
    Pause,
    Payment,
    PromiseToPay,
    RepaymentPlan,
    Resume,
    Settlement,
    WriteOff,
)
from schemas.status import ActionResult, CaseStatus
from tests import replay_variants
from tests.factories import TOTAL, case_input, fast_policy
from tests.make_histories import ACTIONS, RULES2, SEAM, case_id, history_files
from workflows.loan_collection import (
    COMPLIANCE_GUARD,
    PUBLISH_AFTER_AUDIT,
    LoanCollection,
)

COMMITTED = history_files()
COMMITTED_2 = history_files(RULES2)
COMMITTED_3 = history_files(ACTIONS)
COMMITTED_4 = history_files(SEAM)


def _committed(name: str) -> list[WorkflowHistory]:
    return [WorkflowHistory.from_json(case_id(name), p.read_text()) for p in COMMITTED[name]]


def _all_committed() -> list[WorkflowHistory]:
    return [h for name in COMMITTED for h in _committed(name)]


def _patches(history: WorkflowHistory) -> list[str]:
    """The patch ids `workflow.patched` recorded in a run (as markers)."""
    ids = [PUBLISH_AFTER_AUDIT]
    return [
        patch
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        for patch in ids
        if patch.encode() in e.marker_recorded_event_attributes.SerializeToString()
    ]


def _markers(history: WorkflowHistory) -> list[str]:
    return [
        e.marker_recorded_event_attributes.marker_name
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
    ]


# --- the committed histories ------------------------------------------------------------


def test_committed_histories_cover_the_paths() -> None:
    assert set(COMMITTED) >= {
        "legal",
        "paid",
        "partial-then-paid",
        "paused-resumed",
        "opened-late",
        "continued-as-new",
    }
    assert len(COMMITTED["continued-as-new"]) >= 2, "a continue-as-new chain"
    total = sum(p.stat().st_size for runs in COMMITTED.values() for p in runs)
    assert total < 1_000_000, f"keep tests/histories small: {total} bytes"
    # Recorded before the PUBLISH_AFTER_AUDIT change, so they take the unpatched branch:
    # re-recording them with today's code would drop that coverage (add new ones instead).
    assert not [m for h in _all_committed() for m in _markers(h)], "re-recorded histories?"


@pytest.mark.parametrize("name", sorted(COMMITTED))
async def test_committed_history_replays_with_the_current_code(name: str) -> None:
    [report] = await replay_histories(_committed(name))

    assert report.deterministic, report.detail
    assert report.runs == len(COMMITTED[name])


@pytest.mark.parametrize("name", sorted(COMMITTED_2))
async def test_second_generation_history_replays_with_the_current_code(name: str) -> None:
    """Recorded with the compliance guard on: third parties, a migration, a cease."""
    runs = [WorkflowHistory.from_json(case_id(name), p.read_text()) for p in COMMITTED_2[name]]
    guard = COMPLIANCE_GUARD.encode()
    assert any(guard in e.SerializeToString() for e in runs[0].events), "recorded with the guard"
    [report] = await replay_histories(runs)

    assert report.deterministic, report.detail
    assert report.runs == len(COMMITTED_2[name])


@pytest.mark.parametrize("name", sorted(COMMITTED_3))
async def test_third_generation_history_replays_with_the_current_code(name: str) -> None:
    """Recorded before four-eyes approvals and the delivery seam: one-step write-offs
    and supervisor-named settlements, agreements recorded inside their Update."""
    runs = [WorkflowHistory.from_json(case_id(name), p.read_text()) for p in COMMITTED_3[name]]
    [report] = await replay_histories(runs)

    assert report.deterministic, report.detail
    assert report.runs == len(COMMITTED_3[name])


@pytest.mark.parametrize("name", sorted(COMMITTED_4))
async def test_fourth_generation_history_replays_with_the_current_code(name: str) -> None:
    """Recorded on decision rules 3 (the delivery seam, four eyes), every attempt on
    the cases' own task queue (before the partners' queues) and every audit append an
    activity task of its own."""
    runs = [WorkflowHistory.from_json(case_id(name), p.read_text()) for p in COMMITTED_4[name]]
    appends = [
        e
        for run in runs
        for e in run.events
        if e.activity_task_scheduled_event_attributes.activity_type.name == APPEND_AUDIT
    ]
    assert appends, "recorded with the audit append as an activity task"
    [report] = await replay_histories(runs)

    assert report.deterministic, report.detail
    assert report.runs == len(COMMITTED_4[name])


def test_fourth_generation_covers_rules_3() -> None:
    assert len(COMMITTED_4["continued-as-new"]) >= 2, "a continue-as-new chain"
    reasons = {name: _final_status(name, COMMITTED_4)["closed_reason"] for name in COMMITTED_4}
    assert reasons == {
        "legal": "transferred_to_legal",
        "paid": "paid",
        "paused-resumed": "transferred_to_legal",
        "promised-then-paid": "paid",
        "visited-and-moved": "transferred_to_legal",
        "continued-as-new": "transferred_to_legal",
    }
    total = sum(p.stat().st_size for runs in COMMITTED_4.values() for p in runs)
    assert total < 1_000_000, f"keep tests/histories small: {total} bytes"


def test_third_generation_covers_the_one_step_actions() -> None:
    reasons = {name: _final_status(name, COMMITTED_3)["closed_reason"] for name in COMMITTED_3}
    assert reasons == {
        "promised-then-paid": "paid",
        "plan-paid": "paid",
        "settled-with-supervisor": "settled",
        "written-off": "written_off",
        "disputed-for-borrower": "cancelled",
        "visited-and-moved": "transferred_to_legal",
    }
    total = sum(p.stat().st_size for runs in COMMITTED_3.values() for p in runs)
    assert total < 1_000_000, f"keep tests/histories small: {total} bytes"


def _final_status(name: str, generation: dict[str, list[Any]] = COMMITTED_2) -> dict[str, Any]:
    """The case status a committed case ended with (its workflow result)."""
    last = json.loads(generation[name][-1].read_text())["events"][-1]
    data = last["workflowExecutionCompletedEventAttributes"]["result"]["payloads"][0]["data"]
    status: dict[str, Any] = json.loads(base64.b64decode(data))
    return status


def test_second_generation_covers_the_guarded_paths() -> None:
    assert set(COMMITTED_2) >= {"third-party", "migrated", "ceased", "continued-as-new"}
    assert len(COMMITTED_2["continued-as-new"]) >= 2, "a continue-as-new chain"
    assert _final_status("third-party")["counters"].get("third_party_sms", 0) >= 1
    assert _final_status("migrated")["policy"] == "demo@2"
    assert "call" in _final_status("ceased")["ceased"]
    total = sum(p.stat().st_size for runs in COMMITTED_2.values() for p in runs)
    assert total < 1_000_000, f"keep tests/histories small: {total} bytes"


@pytest.mark.parametrize(
    ("variant", "diverges_at"),
    [
        (replay_variants.TimerFirst, "Timer machine does not handle this event"),
        (replay_variants.PublishAfterAuditUnpatched, "UpsertWorkflowSearchAttributes"),
    ],
)
async def test_a_non_deterministic_change_fails_the_guard(variant: type, diverges_at: str) -> None:
    reports = await replay_histories(_all_committed(), workflows=[variant])

    assert len(reports) == len(COMMITTED)
    for report in reports:
        assert not report.deterministic, report
        # The first diverging run, and the history event that no longer matches.
        assert report.detail.startswith(f"run 1 of {report.runs} ("), report.detail
        assert "Nondeterminism" in report.detail and "HistoryEvent(id: " in report.detail
        assert diverges_at in report.detail


# --- live cases on the dev server -------------------------------------------------------


async def _start(
    client: Client, task_queue: str, loan_id: str, day: timedelta, **update: object
) -> WorkflowHandle[LoanCollection, CaseStatus]:
    case = case_input(loan_id, loan={"days_past_due": update.pop("dpd", 1)})
    params = starter.workflow_input(case).model_copy(update={"policy": fast_policy(day), **update})
    return await client.start_workflow(
        LoanCollection.run, params, id=case.case_id, task_queue=task_queue
    )


async def test_a_live_case_replays_across_its_continue_as_new_chain(
    dev_client: Client, dev_worker: Worker, stack_settings: Settings, task_queue: str
) -> None:
    loan = f"L-rp-{uuid.uuid4().hex[:8]}"
    handle = await _start(
        dev_client, task_queue, loan, timedelta(milliseconds=400), dpd=1, max_events_per_run=10
    )
    await asyncio.wait_for(handle.result(), 60)

    histories = await fetch_histories(dev_client, handle.id)
    assert len(histories) >= 2
    assert len({h.run_id for h in histories}) == len(histories)
    # The chain: each run continued as the next, the last one completed.
    assert histories[-1].events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
    # New runs take the patched branch and say so in their history.
    assert all(_patches(h) == [PUBLISH_AFTER_AUDIT] for h in histories)

    report = await replay_case(dev_client, handle.id)
    assert report == ReplayReport(handle.id, len(histories), True, report.detail)

    broken = await replay_case(dev_client, handle.id, workflows=[replay_variants.TimerFirst])
    assert not broken.deterministic
    assert broken.detail.startswith(f"run 1 of {len(histories)} ({histories[0].run_id})")

    # `--all`, narrowed to this case: one report although it lists one row per run.
    [listed] = await replay_all(dev_client, query=f"WorkflowId = '{handle.id}'")
    assert listed.case_id == handle.id and listed.deterministic

    # The command's logic: by loan id, then the exit code and output.
    [by_loan] = await collect(stack_settings, loan, all_cases=False)
    assert by_loan.deterministic and by_loan.runs == len(histories)
    with pytest.raises(CaseNotFound):
        await collect(stack_settings, "L-no-such-loan", all_cases=False)


def test_replay_command_output_and_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    good = ReplayReport("case-L-1", 2, True, "2 run(s), 90 events replayed identically")
    bad = ReplayReport("case-L-2", 1, False, "run 1 of 1 (r1): [TMPRL1100] Nondeterminism error")

    assert render([good], as_json=False) == 0
    assert "deterministic" in capsys.readouterr().out

    assert render([good, bad], as_json=False) == 1
    out = capsys.readouterr().out
    assert "diverges" in out and "[TMPRL1100]" in out and "1 case(s) do not replay" in out

    assert render([good, bad], as_json=True) == 1
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["deterministic"] for line in lines] == [True, False]
    assert set(lines[0]) == {"case_id", "runs", "deterministic", "detail"}


CASES = 200
# path -> days past due at opening: late enough that each path is a few steps long, so
# 200 cases fit in about a minute on two cores.
PATHS = {
    "legal": 8,
    "paid": 1,
    "partial": 1,
    "paused": 7,
    # Operator paths, through Workflow Updates (each ends the case quickly).
    "promised": 1,
    "plan": 1,
    "settled": 1,
    "disputed": 1,
    "written_off": 1,
    "escalated": 8,
}
OP = {"operator": "op-1", "reason": "agreed"}


async def _drive(handle: WorkflowHandle[LoanCollection, CaseStatus], path: str, day: float) -> None:
    """Signals at staggered times; a case already closed by then is left alone."""
    rng = random.Random(handle.id)
    try:
        if path == "paid":
            await asyncio.sleep(day * rng.uniform(0.5, 2))
            await handle.signal(LoanCollection.payment, Payment(amount=TOTAL, reference="P-1"))
        elif path == "partial":
            await asyncio.sleep(day * rng.uniform(0.5, 1.5))
            part = Decimal("100.00")
            await handle.signal(LoanCollection.payment, Payment(amount=part, reference="P-1"))
            await asyncio.sleep(day * rng.uniform(0.5, 1.5))
            rest = Payment(amount=TOTAL - part, reference="P-2")
            await handle.signal(LoanCollection.payment, rest)
        elif path == "paused":
            await asyncio.sleep(day * rng.uniform(0.5, 1.5))
            await handle.signal(LoanCollection.pause, Pause(reason="hardship", operator="op-1"))
            await asyncio.sleep(day * rng.uniform(1, 2))
            await handle.signal(LoanCollection.resume, Resume(reason="done", operator="op-1"))
        else:
            await _operate(handle, path, rng, day)
    except (RPCError, WorkflowUpdateFailedError):
        pass  # closed first (the messages race the policy on a loaded machine)


async def _operate(
    handle: WorkflowHandle[LoanCollection, CaseStatus], path: str, rng: random.Random, day: float
) -> None:
    await asyncio.sleep(day * rng.uniform(0.3, 1))
    soon = date.today() + timedelta(days=5)
    pay = LoanCollection.record_payment
    if path == "promised":
        promise = PromiseToPay(amount=Decimal("500.00"), pay_by=soon, **OP)
        await handle.execute_update(LoanCollection.promise_to_pay, promise)
        await handle.execute_update(pay, Payment(amount=TOTAL, reference="P-1"))
    elif path == "plan":
        half = TOTAL / 2
        plan = RepaymentPlan(
            instalments=(
                Instalment(amount=half, due=soon),
                Instalment(amount=half, due=soon + timedelta(days=30)),
            ),
            **OP,
        )
        await handle.execute_update(LoanCollection.agree_plan, plan)
        for ref in ("I-1", "I-2"):
            await handle.execute_update(pay, Payment(amount=half, reference=ref))
    elif path == "settled":
        # A waiver of 30 %: past the approval share, so a second principal approves.
        offer = Settlement(amount=Decimal("750.00"), pay_by=soon, **OP)
        await _approved(handle, await handle.execute_update(LoanCollection.offer_settlement, offer))
        await handle.execute_update(pay, Payment(amount=Decimal("750.00"), reference="S-1"))
    elif path == "disputed":
        await handle.execute_update(LoanCollection.open_dispute, DisputeOpen(**OP))
        await asyncio.sleep(day)
        resolve = DisputeResolve(outcome="for_borrower", **OP)
        await _approved(
            handle, await handle.execute_update(LoanCollection.resolve_dispute, resolve)
        )
    elif path == "written_off":
        await _approved(
            handle, await handle.execute_update(LoanCollection.write_off, WriteOff(**OP))
        )
    elif path == "escalated":
        await handle.execute_update(LoanCollection.escalate, Escalate(**OP))


async def _approved(
    handle: WorkflowHandle[LoanCollection, CaseStatus], asked: ActionResult
) -> None:
    pending = asked.pending_approval
    assert pending is not None, asked.recorded
    approval = Approve(request=pending.request, operator="sup-1", reason="four eyes")
    await handle.execute_update(LoanCollection.approve, approval)


@pytest.mark.slow
async def test_two_hundred_mixed_cases_all_replay(
    dev_client: Client, dev_worker: Worker, task_queue: str
) -> None:
    day = timedelta(milliseconds=300)
    prefix = f"L-rp200-{uuid.uuid4().hex[:6]}"
    paths = [list(PATHS)[i % len(PATHS)] for i in range(CASES)]
    started = time.monotonic()
    handles = await asyncio.gather(
        *(
            _start(dev_client, task_queue, f"{prefix}-{i:03d}", day, dpd=PATHS[path] + i % 3)
            for i, path in enumerate(paths)
        )
    )
    await asyncio.gather(
        *(_drive(h, p, day.total_seconds()) for h, p in zip(handles, paths, strict=True))
    )
    results = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 150)
    ran = time.monotonic() - started

    outcomes = Counter(r.closed_reason for r in results)
    assert outcomes["paid"] >= CASES // 8 and outcomes["transferred_to_legal"] >= CASES // 8
    assert {"settled", "cancelled", "written_off"} <= set(outcomes), outcomes
    replay_started = time.monotonic()
    # Every case of this test's task queue, each run of each case, in one replayer pass
    # per batch (what `dunning audit replay --all` does).
    reports = await replay_all(dev_client, query=f"TaskQueue = '{task_queue}'")
    replayed = time.monotonic() - replay_started

    assert sorted(r.case_id for r in reports) == sorted(h.id for h in handles)
    assert [r for r in reports if not r.deterministic] == []
    print(f"{CASES} cases ran in {ran:.1f}s and replayed in {replayed:.1f}s; {dict(outcomes)}")
