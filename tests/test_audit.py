"""The auditor's case file: hash chain, tamper detection, state as of, live comparison,
masked history with recorded reveals, and a self-checking export.

Cases run on the real servers (time-skipping or dev); the CLI runs as a subprocess
against the private stack's PostgreSQL (and dev server, for export).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import json
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import starter
from activities import audit_store
from activities.chain import GENESIS
from dunning.audit.fold import fold
from dunning.audit.verify import check_chain, compare, verify_case
from dunning.settings import Settings
from schemas.commands import Payment
from schemas.events import AuditRecord, CaseOpened, PaymentReceived
from schemas.status import CaseStatus
from tests.factories import case_input, fast_policy, open_with_starter, policy
from tests.test_opening import DUNNING, cli_env
from tests.timeskip import skip
from workflows.loan_collection import LoanCollection
from workflows.status_view import case_status

NAME = "Wang Xiaoming"
PHONE = "+8613800138000"


def _loan_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DUNNING, "audit", *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _open_ts(
    env: WorkflowEnvironment, settings: Settings, task_queue: str, loan_prefix: str
) -> WorkflowHandle[LoanCollection, CaseStatus]:
    case = case_input(_loan_id(loan_prefix))
    return await open_with_starter(env.client, settings, task_queue, case)


async def _paid_case(
    env: WorkflowEnvironment, settings: Settings, task_queue: str
) -> tuple[str, CaseStatus]:
    """A case with a partial payment, then paid off: it closes on its own."""
    handle = await _open_ts(env, settings, task_queue, "L-audit")
    await skip(env, timedelta(days=3))
    pay = LoanCollection.payment
    await handle.signal(pay, Payment(amount=Decimal("100.00"), reference="p-1", source="core"))
    await skip(env, timedelta(days=2))
    await handle.signal(pay, Payment(amount=Decimal("970.00"), reference="p-2", source="core"))
    async with env.time_skipping_unlocked():  # type: ignore[attr-defined]
        final = await handle.result()
    assert final.closed_reason == "paid"
    return handle.id, final


async def _workflow_now(handle: WorkflowHandle[LoanCollection, CaseStatus]) -> datetime:
    """The workflow's clock as a query sees it: the start of its last workflow task."""
    started = [
        e.event_time.ToDatetime(tzinfo=UTC)
        async for e in handle.fetch_history_events()
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
    ]
    return started[-1]


# --- the chain --------------------------------------------------------------------


async def test_a_case_run_to_the_end_verifies_and_agrees_with_its_result(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    case_id, final = await _paid_case(ts_env, stack_settings, task_queue)

    report = await verify_case(pool, case_id, ts_env.client)

    assert report.ok, report.problems
    assert report.live == "completed"
    assert report.rows == final.events
    assert report.legacy_rows == 0
    async with pool.acquire() as conn:
        rows = await audit_store.read_rows(conn, case_id)
    assert rows[0].prev_hash == "0" * 64
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(rows))
    assert report.head_hash == rows[-1].hash


async def test_append_is_idempotent_chained_and_refuses_a_different_event(
    pool: asyncpg.Pool,
) -> None:
    case = case_input(_loan_id("L-append"))
    at = datetime(2026, 10, 2, 1, 2, 3, 456789, tzinfo=UTC)
    opened = CaseOpened(at=at, case=case, policy=policy())
    paid = PaymentReceived(
        at=at + timedelta(hours=1),
        actor="service:core",
        amount=Decimal("10.50"),
        reference="r-1",
        applied_penalty=Decimal("0"),
        applied_fees=Decimal("10.50"),
        applied_interest=Decimal("0"),
        applied_principal=Decimal("0"),
        overpaid=Decimal("0"),
        balance_after=Decimal("1059.50"),
    )
    batch = [
        AuditRecord(case_id=case.case_id, seq=1, event=opened),
        AuditRecord(case_id=case.case_id, seq=2, event=paid),
    ]
    async with pool.acquire() as conn:
        assert await audit_store.append(conn, "wf", "run-1", batch[:1]) == 1
        assert await audit_store.append(conn, "wf", "run-1", batch) == 1  # seq 1 already there
        assert await audit_store.append(conn, "wf", "run-1", batch) == 0  # a retried batch
        other = paid.model_copy(update={"amount": Decimal("11.00")})
        with pytest.raises(audit_store.AuditConflict, match="#2"):
            await audit_store.append(
                conn, "wf", "run-1", [AuditRecord(case_id=case.case_id, seq=2, event=other)]
            )
    report = await verify_case(pool, case.case_id, client=None)
    assert report.ok, report.problems
    assert report.rows == 2


async def test_a_changed_row_is_named_by_case_and_seq(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    case_id, _ = await _paid_case(ts_env, stack_settings, task_queue)
    async with pool.acquire() as conn:
        seq = await conn.fetchval(
            "SELECT seq FROM audit_events WHERE case_id = $1 AND event_type = 'payment_received' "
            "ORDER BY seq LIMIT 1",
            case_id,
        )
    clean = _cli(stack_settings, "verify", case_id)
    assert clean.returncode == 0, clean.stdout + clean.stderr

    async with owner_pool.acquire() as conn, conn.transaction():
        # A superuser can switch the trigger off: the chain is what still tells.
        await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        await conn.execute(
            "UPDATE audit_events SET payload = jsonb_set(payload, '{amount}', '\"1.00\"') "
            "WHERE case_id = $1 AND seq = $2",
            case_id,
            seq,
        )
        await conn.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")

    result = _cli(stack_settings, "verify", case_id)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{case_id}#{seq}" in result.stdout
    assert "hash does not match" in result.stdout
    as_json = _cli(stack_settings, "verify", case_id, "--json")
    assert as_json.returncode == 1
    (report,) = json.loads(as_json.stdout)
    assert report["problems"][0] == {
        "seq": seq,
        "check": "chain",
        "detail": "hash does not match the row's content",
    }


# --- the state, then and now ------------------------------------------------------


async def test_state_as_of_reproduces_the_status_seen_at_that_moment(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    handle = await _open_ts(ts_env, stack_settings, task_queue, "L-asof")
    seen: list[tuple[datetime, CaseStatus]] = []
    for days in (4, 17):  # in reminder, then in negotiation
        await skip(ts_env, timedelta(days=days))
        status = await handle.query(LoanCollection.status)
        seen.append((await _workflow_now(handle), status))
    await handle.terminate("test over")
    assert seen[0][1].stage != seen[1][1].stage

    for moment, status in seen:
        result = _cli(stack_settings, "state", handle.id, "--as-of", moment.isoformat(), "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        # What only the running workflow knows (an attempt in flight) is not in the log.
        assert CaseStatus.model_validate_json(result.stdout) == status.model_copy(
            update={"in_flight": None}
        )

    before = _cli(stack_settings, "state", handle.id, "--as-of", "2000-01-01T00:00:00")
    assert before.returncode == 1
    assert "no events" in before.stderr


async def test_verify_agrees_with_an_open_case_and_would_report_a_difference(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    handle = await _open_ts(ts_env, stack_settings, task_queue, "L-live")
    await skip(ts_env, timedelta(days=20))
    await handle.signal(
        LoanCollection.payment, Payment(amount=Decimal("30.00"), reference="p-9", source="core")
    )
    await skip(ts_env, timedelta(hours=2))

    report = await verify_case(pool, handle.id, ts_env.client)

    assert report.live == "open"
    assert report.ok, report.problems
    live = await handle.query(LoanCollection.status)
    assert report.rows == live.events
    # The comparison itself: a live status that differs is reported field by field.
    async with pool.acquire() as conn:
        rows = await audit_store.read_rows(conn, handle.id)
    state = fold(rows).state
    assert state is not None
    rebuilt = case_status(state, datetime.now(UTC))
    changed = live.model_copy(
        update={"stage": "legal", "balance": live.balance.model_copy(update={"paid": Decimal(0)})}
    )
    details = [p.detail for p in compare(handle.id, rebuilt, changed)]
    assert [d.split(":")[0] for d in details] == ["balance.paid", "stage"]
    await handle.terminate("test over")


# --- history, reveal, export ------------------------------------------------------


async def test_history_masks_personal_data_and_a_reveal_is_recorded(
    ts_env: WorkflowEnvironment,
    ts_worker: Worker,
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    handle = await _open_ts(ts_env, stack_settings, task_queue, "L-mask")
    await skip(ts_env, timedelta(days=2))
    await handle.terminate("test over")

    async def reveals() -> list[tuple[str, str]]:
        # The application may record a reveal, not read them back: the owner looks.
        async with owner_pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT auditor, reason FROM audit_reveals WHERE case_id = $1", handle.id
            )
        return [(r["auditor"], r["reason"]) for r in rows]

    for fmt in ([], ["--json"], ["--csv"]):
        masked = _cli(stack_settings, "history", handle.id, *fmt)
        assert masked.returncode == 0, masked.stderr
        assert NAME not in masked.stdout and PHONE not in masked.stdout
        assert "Century Avenue" not in masked.stdout
        assert "W***" in masked.stdout and "***00" in masked.stdout
    opened = json.loads(_cli(stack_settings, "history", handle.id, "--json").stdout.splitlines()[0])
    assert opened["payload"]["case"]["borrower"]["phones"] == ["***00", "***78"]
    assert await reveals() == []

    refused = _cli(stack_settings, "history", handle.id, "--reveal", "--auditor", "aud-1")
    assert refused.returncode == 2
    assert await reveals() == []

    revealed = _cli(
        stack_settings,
        "history",
        handle.id,
        "--json",
        "--reveal",
        "--auditor",
        "aud-1",
        "--reason",
        "court order 12",
    )
    assert revealed.returncode == 0, revealed.stderr
    assert NAME in revealed.stdout and PHONE in revealed.stdout
    assert await reveals() == [("aud-1", "court order 12")]
    async with pool.acquire() as conn:
        events = await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE case_id = $1", handle.id
        )
    assert events == len(revealed.stdout.splitlines()), "a reveal adds no audit event"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
async def test_export_writes_every_run_and_a_manifest_that_matches(
    dev_client: Client,
    dev_worker: Worker,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
    tmp_path: Path,
) -> None:
    case = case_input(_loan_id("L-export"))
    params = starter.workflow_input(case).model_copy(
        update={"policy": fast_policy(timedelta(seconds=1)), "max_events_per_run": 10}
    )
    handle = await dev_client.start_workflow(
        LoanCollection.run, params, id=case.case_id, task_queue=task_queue
    )
    deadline = time.monotonic() + 60
    while True:  # until the case has continued as new at least once
        described = await handle.describe()
        if described.run_id != described.raw_description.workflow_execution_info.first_run_id:
            break
        assert time.monotonic() < deadline, "no continue-as-new within 60 s"
        await asyncio.sleep(0.5)
    await dev_client.get_workflow_handle(case.case_id).terminate("test over")

    result = _cli(stack_settings, "export", case.case_id, str(tmp_path))

    assert result.returncode == 0, result.stdout + result.stderr
    folder = tmp_path / case.case_id
    manifest = json.loads((folder / "manifest.json").read_text())
    written = {p.name for p in folder.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == written
    assert {name: _sha256(folder / name) for name in written} == manifest["files"]
    assert len(manifest["runs"]) >= 2
    histories = sorted(n for n in written if n.startswith("history-"))
    assert len(histories) == len(manifest["runs"])
    for name, run_id in zip(histories, manifest["runs"], strict=True):
        history = WorkflowHistory.from_json(case.case_id, (folder / name).read_text())
        assert run_id in name and history.events
    lines = (folder / "audit.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert json.loads(lines[-1])["hash"] == manifest["head_hash"]
    assert {json.loads(line)["run_id"] for line in lines} <= set(manifest["runs"])


def _row(seq: int, prev_hash: str | None, chained: bool = True) -> audit_store.AuditRow:
    at = datetime(2026, 10, 2, tzinfo=UTC) + timedelta(minutes=seq)
    row = audit_store.AuditRow(
        case_id="case-L-pure",
        seq=seq,
        event_type="case_closed",
        occurred_at=at,
        actor="system",
        workflow_id="case-L-pure",
        run_id="run",
        payload={"type": "case_closed", "at": at.isoformat(), "actor": "system"},
        recorded_at=at,
        prev_hash=prev_hash if chained else None,
        hash=None,
    )
    return dataclasses.replace(row, hash=row.computed_hash()) if chained else row


def test_check_chain_counts_legacy_rows_and_names_gaps_and_unchained_rows() -> None:
    legacy = [_row(1, None, chained=False), _row(2, None, chained=False)]
    first = _row(3, GENESIS)  # the chain starts after rows written before it existed
    second = _row(4, first.hash)
    assert check_chain([*legacy, first, second]) == (2, None)

    _, gap = check_chain([*legacy, first, _row(5, first.hash)])
    assert gap is not None and (gap.seq, gap.detail) == (5, "seq 4 is missing (next is 5)")

    _, late = check_chain([_row(1, GENESIS), _row(2, None, chained=False)])
    assert late is not None and (late.seq, late.detail) == (2, "unchained row in the chain")

    _, relinked = check_chain([*legacy, first, _row(4, GENESIS)])
    assert relinked is not None and (relinked.seq, relinked.detail) == (
        4,
        "prev_hash does not link to seq 3",
    )
