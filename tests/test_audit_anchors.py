"""A truncated or rewritten audit log is detected (issue 12, item 12).

A hash chain shows a changed row, but not rows removed from its end, nor a tail
rewritten with fresh hashes: both leave a valid chain. Two anchors outside the rows
catch them: the head (seq, hash) each append returned, kept in the case's Temporal
history (`dunning audit verify`, live), and the head checkpoints the worker signs with
a key the database does not hold (`--no-live` too). `verify --all` also lists the
cases Temporal knows that the log lacks entirely.

The attacker is a database superuser: triggers switched off, rows deleted or
rewritten, hashes recomputed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities import checkpoints as stored
from activities.audit_store import read_rows
from activities.chain import row_hash
from dunning.audit.verify import all_case_ids, verify_case
from dunning.db import checkpoints
from dunning.settings import Settings
from schemas.case import CaseInput
from schemas.commands import Payment
from schemas.status import CaseStatus
from tests.factories import TOTAL, case_payload, open_with_starter
from tests.test_opening import DUNNING, cli_env
from workflows.loan_collection import LoanCollection

DISABLE = "ALTER TABLE {table} DISABLE TRIGGER {table}_append_only"
ENABLE = "ALTER TABLE {table} ENABLE TRIGGER {table}_append_only"


def _verify(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DUNNING, "audit", "verify", *args],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=120,
    )


async def _paid_case(
    client: Client, settings: Settings, task_queue: str, tag: str
) -> WorkflowHandle[LoanCollection, CaseStatus]:
    """A case on the dev server, paid in three parts: it closes as paid."""
    case = CaseInput.model_validate(case_payload(f"L-{tag}-{uuid.uuid4().hex[:8]}"))
    handle = await open_with_starter(client, settings, task_queue, case)
    for n, amount in enumerate((Decimal("100.00"), Decimal("200.00"), TOTAL - 300), start=1):
        await handle.execute_update(
            LoanCollection.record_payment,
            Payment(amount=amount, reference=f"p-{n}", source="core"),
        )
    final = await asyncio.wait_for(handle.result(), 60)
    assert final.closed_reason == "paid"
    return handle


async def _wait_for_rows(pool: asyncpg.Pool, case_id: str, at_least: int) -> int:
    deadline = time.monotonic() + 30
    while True:
        count: int = await pool.fetchval(
            "SELECT count(*) FROM audit_events WHERE case_id = $1", case_id
        )
        if count >= at_least:
            return count
        assert time.monotonic() < deadline, f"{case_id} has {count} rows"
        await asyncio.sleep(0.2)


async def _as_superuser(
    owner_pool: asyncpg.Pool, table: str, *statements: tuple[str, list]
) -> None:
    async with owner_pool.acquire() as conn, conn.transaction():
        await conn.execute(DISABLE.format(table=table))
        for sql, args in statements:
            await conn.execute(sql, *args)
        await conn.execute(ENABLE.format(table=table))


async def test_a_truncated_log_is_reported_with_and_without_live(
    dev_client: Client,
    dev_worker: Worker,
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    settings = stack_settings.model_copy(update={"task_queue": task_queue})
    handle = await _paid_case(dev_client, settings, task_queue, "cut")
    rows = await _wait_for_rows(pool, handle.id, 4)
    for mode in ([], ["--no-live"]):
        clean = _verify(stack_settings, handle.id, *mode)
        assert clean.returncode == 0, clean.stdout + clean.stderr

    # Remove the last two rows: the chain of what is left is intact.
    await _as_superuser(
        owner_pool,
        "audit_events",
        ("DELETE FROM audit_events WHERE case_id = $1 AND seq > $2", [handle.id, rows - 2]),
    )

    offline = _verify(stack_settings, handle.id, "--no-live")
    assert offline.returncode == 1, offline.stdout + offline.stderr
    assert f"{handle.id}#{rows} [checkpoint]" in offline.stdout, offline.stdout
    assert "rows were removed" in offline.stdout

    live = _verify(stack_settings, handle.id, "--json")
    assert live.returncode == 1, live.stdout + live.stderr
    (report,) = json.loads(live.stdout)
    anchors = [p for p in report["problems"] if p["check"] == "anchor"]
    assert anchors == [
        {
            "seq": rows,
            "check": "anchor",
            "detail": f"the log ends at seq {rows - 2}, but the case's Temporal history "
            f"recorded the append of seq {rows}: rows were removed",
        }
    ], report


async def test_a_tail_rewritten_with_fresh_hashes_is_reported(
    dev_client: Client,
    dev_worker: Worker,
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    settings = stack_settings.model_copy(update={"task_queue": task_queue})
    handle = await _paid_case(dev_client, settings, task_queue, "rewrite")
    await _wait_for_rows(pool, handle.id, 4)
    async with pool.acquire() as conn:
        last = (await read_rows(conn, handle.id))[-1]
    # The last event a second later, its hash recomputed so the chain still holds.
    later = last.occurred_at + timedelta(seconds=1)
    payload = {**last.payload, "at": later.isoformat().replace("+00:00", "Z")}
    fresh = row_hash(
        case_id=last.case_id,
        seq=last.seq,
        event_type=last.event_type,
        occurred_at=later,
        actor=last.actor,
        workflow_id=last.workflow_id,
        run_id=last.run_id,
        payload=payload,
        prev_hash=last.prev_hash or "",
    )
    await _as_superuser(
        owner_pool,
        "audit_events",
        (
            "UPDATE audit_events SET occurred_at = $3, payload = $4::jsonb, hash = $5 "
            "WHERE case_id = $1 AND seq = $2",
            [handle.id, last.seq, later, json.dumps(payload), fresh],
        ),
    )
    chain_only = await verify_case(pool, handle.id, None)
    assert chain_only.ok, "the chain alone cannot tell"

    for mode, check in ((["--no-live"], "checkpoint"), ([], "anchor")):
        result = _verify(stack_settings, handle.id, *mode)
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"{handle.id}#{last.seq} [{check}]" in result.stdout, result.stdout
        assert "rewritten" in result.stdout


async def test_a_deleted_tail_with_its_checkpoints_is_still_caught_live_or_at_the_head(
    dev_client: Client,
    dev_worker: Worker,
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    """An attacker who also deletes the checkpoints after the cut: the log alone still
    shows a head row that was never a batch's end; Temporal's history shows the cut."""
    settings = stack_settings.model_copy(update={"task_queue": task_queue})
    handle = await _paid_case(dev_client, settings, task_queue, "both")
    rows = await _wait_for_rows(pool, handle.id, 4)
    checkpointed = {
        r["seq"]
        for r in await owner_pool.fetch(
            "SELECT seq FROM audit_checkpoints WHERE case_id = $1", handle.id
        )
    }
    assert rows in checkpointed, "every append signs its head"
    cut = max(seq for seq in range(1, rows) if seq not in checkpointed)  # mid-batch
    await _as_superuser(
        owner_pool,
        "audit_events",
        ("DELETE FROM audit_events WHERE case_id = $1 AND seq > $2", [handle.id, cut]),
    )
    await _as_superuser(
        owner_pool,
        "audit_checkpoints",
        ("DELETE FROM audit_checkpoints WHERE case_id = $1 AND seq > $2", [handle.id, cut]),
    )

    offline = _verify(stack_settings, handle.id, "--no-live")
    assert offline.returncode == 1, offline.stdout
    assert f"{handle.id}#{cut} [checkpoint] the last row has no signed checkpoint" in (
        offline.stdout
    ), offline.stdout
    live = _verify(stack_settings, handle.id)
    assert f"{handle.id}#{rows} [anchor]" in live.stdout, live.stdout


async def test_verify_all_reports_a_case_temporal_knows_and_the_log_lacks(
    dev_client: Client,
    dev_worker: Worker,
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    settings = stack_settings.model_copy(update={"task_queue": task_queue})
    handle = await _paid_case(dev_client, settings, task_queue, "gone")
    await _wait_for_rows(pool, handle.id, 4)
    for table in ("audit_events", "audit_checkpoints"):
        await _as_superuser(
            owner_pool, table, (f"DELETE FROM {table} WHERE case_id = $1", [handle.id])
        )

    async with pool.acquire() as conn:
        logged = {
            r["case_id"] for r in await conn.fetch("SELECT DISTINCT case_id FROM audit_events")
        }
    assert handle.id not in logged
    assert handle.id in await all_case_ids(pool, dev_client)

    report = await verify_case(pool, handle.id, dev_client)
    assert not report.ok
    (anchor,) = [p for p in report.problems if p.check == "anchor"]
    assert "the log has no row of this case" in anchor.detail, anchor


@pytest.mark.parametrize("forged", ["signature", "hash"])
async def test_a_forged_checkpoint_is_reported(
    dev_client: Client,
    dev_worker: Worker,
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
    forged: str,
) -> None:
    """Without the key, a checkpoint cannot be made to vouch for other rows."""
    settings = stack_settings.model_copy(update={"task_queue": task_queue})
    handle = await _paid_case(dev_client, settings, task_queue, "forge")
    rows = await _wait_for_rows(pool, handle.id, 4)
    column, value = ("signature", "AAAA") if forged == "signature" else ("hash", "f" * 64)
    await _as_superuser(
        owner_pool,
        "audit_checkpoints",
        (
            f"UPDATE audit_checkpoints SET {column} = $3 WHERE case_id = $1 AND seq = $2",
            [handle.id, rows, value],
        ),
    )
    offline = _verify(stack_settings, handle.id, "--no-live")
    assert offline.returncode == 1, offline.stdout
    assert f"{handle.id}#{rows} [checkpoint] signature does not verify" in offline.stdout


def test_the_public_key_verifies_what_the_signing_key_signs(stack_settings: Settings) -> None:
    """`dunning audit public-key` prints what auditors set as DUNNING_AUDIT_VERIFY_KEYS;
    with it alone (no private key) a checkpoint verifies, and a forged one does not."""
    env = cli_env(stack_settings)
    printed = subprocess.run(
        [DUNNING, "audit", "public-key"], env=env, capture_output=True, text=True
    )
    assert printed.returncode == 0, printed.stderr
    signer = checkpoints.signer(stack_settings)
    auditor = Settings(  # type: ignore[call-arg]
        _env_file=None,
        state_dir=stack_settings.state_dir / "nowhere",
        audit_verify_keys=[printed.stdout.strip()],
    )
    keys = checkpoints.verifier(auditor)
    assert keys is not None and set(keys.keys) == {signer.key_id}
    with pytest.raises(stored.SigningKeyError):
        checkpoints.signer(auditor)  # an auditor cannot sign
    good = stored.Checkpoint(
        "case-x", 3, "a" * 64, signer.key_id, signer.sign("case-x", 3, "a" * 64), datetime.now(UTC)
    )
    assert keys.problem(good) is None
    assert keys.problem(dataclasses.replace(good, seq=4)) is not None
    assert keys.problem(dataclasses.replace(good, key_id="0" * 16)) is not None


@pytest.mark.parametrize(
    ("key", "problem"),
    [("not base64!", "is not valid base64"), ("c2hvcnQ=", "must be 32 bytes")],
)
def test_a_bad_signing_key_is_refused_naming_it(tmp_path: Path, key: str, problem: str) -> None:
    bad = Settings(_env_file=None, state_dir=tmp_path, audit_signing_key=key)  # type: ignore[call-arg]
    with pytest.raises(stored.SigningKeyError, match=f"audit signing key {problem}"):
        checkpoints.signer(bad)
    nothing = Settings(_env_file=None, state_dir=tmp_path)  # type: ignore[call-arg]
    with pytest.raises(stored.SigningKeyError, match="DUNNING_AUDIT_SIGNING_KEY"):
        checkpoints.signer(nothing)  # a worker without a key does not start
    assert checkpoints.verifier(nothing) is None
