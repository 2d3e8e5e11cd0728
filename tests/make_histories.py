"""Record the committed workflow histories in `tests/histories/` that CI replays.

`.venv/bin/python -m tests.make_histories [DIR] [--generation 2|3|4]` brings up a private
embedded stack in a temporary folder, runs a worker in this process, drives a few
representative cases on an accelerated policy to their end, writes every run's
history as `<DIR>/<name>-run<N>.json` and stops the stack. Generation 1
(`tests/histories/`) was recorded before any patch; generation 2
(`tests/histories/rules2/`) with the compliance guard on: third parties, a policy
migration, a cease; generation 3 (`tests/histories/actions/`) with the operator actions
as they were before four-eyes approvals and the delivery seam; generation 4
(`tests/histories/seam/`) on decision rules 3, before the partners' task queues.

Re-record only on purpose: the files are the *old* code's histories, and
`tests/test_replay.py` proves the current code still replays them. A change that
alters the workflow's commands must go through `workflow.patched` (see
docs/architecture.md, "Determinism"), not through re-recording.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from temporalio.client import Client, WorkflowHandle, WorkflowHistory

import starter
from dunning.audit.replay import fetch_histories
from dunning.localstack import stack
from dunning.settings import Settings
from dunning.temporal_client import connect
from schemas.commands import (
    CeaseContact,
    DisputeOpen,
    DisputeResolve,
    Instalment,
    MigratePolicy,
    OperatorAction,
    Pause,
    Payment,
    PromiseToPay,
    RepaymentPlan,
    Resume,
    Settlement,
    VisitBooking,
    VisitReport,
    WriteOff,
)
from tests.factories import TOTAL, case_input, fast_policy
from worker import running_worker
from workflows.loan_collection import LoanCollection

HERE = Path(__file__).resolve().parent / "histories"
RULES2 = HERE / "rules2"
# Generation 3: operator actions as they were before four-eyes approvals and the
# delivery seam: one-step write-off and supervisor-named settlement, agreements
# recorded inside the update, disputes resolved for the borrower, visits, stage moves.
ACTIONS = HERE / "actions"
# Generation 4: decision rules 3 (the delivery seam, four eyes, coalesced bursts) with
# every attempt on the cases' own task queue and every audit append an activity task.
SEAM = HERE / "seam"
DAY = timedelta(milliseconds=500)
SHANGHAI = ZoneInfo("Asia/Shanghai")

Handle = WorkflowHandle[LoanCollection, object]
Script = Callable[[Handle], Awaitable[None]]


def case_id(name: str) -> str:
    """The workflow id a committed history was recorded under."""
    return f"case-L-hist-{name}"


def history_files(directory: Path = HERE) -> dict[str, list[Path]]:
    """Committed histories by case name, each case's runs in order."""
    cases: dict[str, list[Path]] = {}
    for path in sorted(directory.glob("*-run*.json")):
        cases.setdefault(path.stem.rpartition("-run")[0], []).append(path)
    for runs in cases.values():
        runs.sort(key=lambda p: int(p.stem.rpartition("-run")[2]))
    return cases


async def _days(n: float) -> None:
    await asyncio.sleep(DAY.total_seconds() * n)


async def _nothing(handle: Handle) -> None:
    return None


async def _paid_in_full(handle: Handle) -> None:
    await _days(3)
    await handle.signal(LoanCollection.payment, Payment(amount=TOTAL, reference="PAY-full"))


async def _partially_paid(handle: Handle) -> None:
    await _days(2)
    await handle.signal(
        LoanCollection.payment, Payment(amount=Decimal("300.00"), reference="PAY-part-1")
    )
    # A duplicate reference counts once.
    await handle.signal(
        LoanCollection.payment, Payment(amount=Decimal("300.00"), reference="PAY-part-1")
    )
    await _days(3)
    await handle.signal(
        LoanCollection.payment, Payment(amount=TOTAL - Decimal("300.00"), reference="PAY-part-2")
    )


async def _paused_and_resumed(handle: Handle) -> None:
    await _days(2)
    await handle.signal(LoanCollection.pause, Pause(reason="hardship review", operator="op-7"))
    await _days(4)
    await handle.signal(LoanCollection.resume, Resume(reason="review done", operator="op-9"))


async def _migrated(handle: Handle) -> None:
    await _days(2)
    policy = fast_policy(DAY).model_copy(update={"version": 2})
    await handle.execute_update(
        LoanCollection.migrate_policy,
        MigratePolicy(policy=policy, operator="op-7", reason="strategy 2"),
    )


async def _ceased(handle: Handle) -> None:
    await _days(2)
    await handle.execute_update(
        LoanCollection.cease_contact,
        CeaseContact(channel="call", operator="op-7", reason="borrower asked"),
    )


OP = {"operator": "op-7", "reason": "agreed on the phone"}


def _local_day(offset: int = 0) -> date:
    return (datetime.now(SHANGHAI) + timedelta(days=offset)).date()


async def _promised_then_paid(handle: Handle) -> None:
    await _days(2)
    await handle.execute_update(
        LoanCollection.promise_to_pay,
        PromiseToPay(amount=TOTAL, pay_by=_local_day(3), **OP),
    )
    await _days(1)
    await handle.signal(LoanCollection.payment, Payment(amount=TOTAL, reference="PAY-promised"))


async def _plan_paid(handle: Handle) -> None:
    await _days(2)
    half = TOTAL / 2
    await handle.execute_update(
        LoanCollection.agree_plan,
        RepaymentPlan(
            instalments=(
                Instalment(amount=half, due=_local_day(5)),
                Instalment(amount=TOTAL - half, due=_local_day(20)),
            ),
            **OP,
        ),
    )
    await _days(1)
    await handle.signal(LoanCollection.payment, Payment(amount=half, reference="PAY-plan-1"))
    await _days(1)
    await handle.signal(
        LoanCollection.payment, Payment(amount=TOTAL - half, reference="PAY-plan-2")
    )


async def _settled_with_supervisor(handle: Handle) -> None:
    await _days(2)
    amount = Decimal("600.00")  # a waiver of 44 %: past the approval share
    await handle.execute_update(
        LoanCollection.offer_settlement,
        Settlement(amount=amount, pay_by=_local_day(5), supervisor="sup-2", **OP),
    )
    await _days(1)
    await handle.signal(LoanCollection.payment, Payment(amount=amount, reference="PAY-settle"))


async def _written_off(handle: Handle) -> None:
    await _days(3)
    await handle.execute_update(LoanCollection.write_off, WriteOff(supervisor="sup-2", **OP))


async def _disputed_for_borrower(handle: Handle) -> None:
    await _days(2)
    await handle.execute_update(LoanCollection.open_dispute, DisputeOpen(**OP))
    await _days(2)
    await handle.execute_update(
        LoanCollection.resolve_dispute, DisputeResolve(outcome="for_borrower", **OP)
    )


async def _visited_and_moved(handle: Handle) -> None:
    await _days(1)
    await handle.execute_update(LoanCollection.escalate, OperatorAction(**OP))
    await handle.execute_update(LoanCollection.deescalate, OperatorAction(**OP))
    at = datetime.now(UTC) + timedelta(seconds=1)
    await handle.execute_update(
        LoanCollection.book_visit, VisitBooking(at=at, collectors=("c-1", "c-2"), **OP)
    )
    await asyncio.sleep(1.5)
    await handle.execute_update(LoanCollection.report_visit, VisitReport(outcome="met", **OP))


CONTACT = {"name": "Li Na", "phone": "+86 137 0013 7000", "relation": "sibling"}

# name -> (days past due at opening, continue-as-new cap, what happens to the case)
SCENARIOS: dict[str, tuple[int, int | None, Script]] = {
    "legal": (1, None, _nothing),
    "paid": (1, None, _paid_in_full),
    "partial-then-paid": (1, None, _partially_paid),
    "paused-resumed": (1, None, _paused_and_resumed),
    "opened-late": (9, None, _nothing),  # skips stages on opening
    "continued-as-new": (1, 10, _nothing),
}
# Generation 2: every case names an emergency contact (the sandbox dialer never gets an
# answer, so third parties are messaged once the borrower is unreachable).
SCENARIOS_2: dict[str, tuple[int, int | None, Script]] = {
    "third-party": (1, None, _nothing),
    "migrated": (1, None, _migrated),
    "ceased": (1, None, _ceased),
    "paused-resumed": (1, None, _paused_and_resumed),
    "continued-as-new": (1, 10, _nothing),
}
SCENARIOS_3: dict[str, tuple[int, int | None, Script]] = {
    "promised-then-paid": (1, None, _promised_then_paid),
    "plan-paid": (1, None, _plan_paid),
    "settled-with-supervisor": (1, None, _settled_with_supervisor),
    "written-off": (1, None, _written_off),
    "disputed-for-borrower": (1, None, _disputed_for_borrower),
    "visited-and-moved": (1, None, _visited_and_moved),
}
SCENARIOS_4: dict[str, tuple[int, int | None, Script]] = {
    "legal": (1, None, _nothing),
    "paid": (1, None, _paid_in_full),
    "paused-resumed": (1, None, _paused_and_resumed),
    "promised-then-paid": (1, None, _promised_then_paid),
    "visited-and-moved": (1, None, _visited_and_moved),
    "continued-as-new": (1, 10, _nothing),
}
GENERATIONS = {
    1: (SCENARIOS, HERE),
    2: (SCENARIOS_2, RULES2),
    3: (SCENARIOS_3, ACTIONS),
    4: (SCENARIOS_4, SEAM),
}


async def record(settings: Settings, out: Path, generation: int = 1) -> dict[str, int]:
    client: Client = await connect(settings)
    policy = fast_policy(DAY)
    scenarios = GENERATIONS[generation][0]
    contacts = [CONTACT] if generation >= 2 else []
    async with running_worker(settings, client):
        handles: dict[str, Handle] = {}
        for name, (dpd, cap, _) in scenarios.items():
            case = case_input(
                f"L-hist-{name}",
                loan={"days_past_due": dpd},
                borrower={"emergency_contacts": contacts},
            )
            assert case.case_id == case_id(name)
            params = starter.workflow_input(case).model_copy(
                update={"policy": policy, "max_events_per_run": cap}
            )
            handles[name] = await client.start_workflow(
                LoanCollection.run, params, id=case.case_id, task_queue=settings.task_queue
            )
        await asyncio.gather(*(scenarios[n][2](h) for n, h in handles.items()))
        await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles.values())), 120)
    histories = {name: await fetch_histories(client, case_id(name)) for name in scenarios}
    write(histories, out)
    return {name: len(runs) for name, runs in histories.items()}


def write(histories: dict[str, list[WorkflowHistory]], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*-run*.json"):
        old.unlink()
    for name, runs in histories.items():
        for n, history in enumerate(runs, start=1):
            # Compact JSON: the same content as `to_json()`, a third of the size.
            text = json.dumps(history.to_json_dict(), separators=(",", ":"), sort_keys=True)
            (out / f"{name}-run{n}.json").write_text(text + "\n")


def main() -> None:
    args = sys.argv[1:]
    generation = 1
    if "--generation" in args:
        at = args.index("--generation")
        generation = int(args[at + 1])
        del args[at : at + 2]
    out = Path(args[0]) if args else GENERATIONS[generation][1]
    with tempfile.TemporaryDirectory(prefix="dunning-histories-") as tmp:
        settings = stack.private_settings(Path(tmp)).model_copy(
            # Unencrypted: the files are replayed anywhere, with no key (decoding passes
            # plain payloads through).
            update={"task_queue": f"histories-{uuid.uuid4().hex[:8]}", "encryption": False}
        )
        stack.up(settings)
        try:
            runs = asyncio.run(record(settings, out, generation))
        finally:
            stack.down(settings)
    size = sum(p.stat().st_size for p in out.glob("*.json"))
    for name, n in runs.items():
        print(f"{name}: {n} run(s)")
    print(f"{out}: {size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
