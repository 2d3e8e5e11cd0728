"""Opening cases: once per loan, and never from invalid input (dev server, real time)."""

from __future__ import annotations

import asyncio
import csv
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DeleteWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

import starter
from dunning import opening
from dunning.settings import Settings
from tests.factories import case_input, case_payload
from workflows.loan_collection import LoanCollection

DUNNING = str(Path(sys.executable).parent / "dunning")


def _loan_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def cli_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "DUNNING_TEMPORAL_ADDRESS": settings.temporal_address,
        "DUNNING_DATABASE_URL": settings.database_url,
        "DUNNING_DATABASE_OWNER_URL": settings.owner_database_url,
        "DUNNING_STATE_DIR": str(settings.state_dir),
        "DUNNING_TEMPORAL_UI_PORT": str(settings.temporal_ui_port),
        "DUNNING_TASK_QUEUE": settings.task_queue,
        "COLUMNS": "200",
    }


async def _exists(client: Client, case_id: str) -> bool:
    try:
        await client.get_workflow_handle(case_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_opening_the_same_loan_twice_reports_already_open(
    dev_client: Client, dev_worker: Worker, stack_settings: Settings, task_queue: str
) -> None:
    settings = stack_settings.model_copy(update={"task_queue": task_queue})
    payload = case_payload(_loan_id("L-twice"))

    first = await starter.open_case(dev_client, settings, 1, payload)
    second = await starter.open_case(dev_client, settings, 2, payload)

    assert first.outcome == "opened"
    assert second.outcome == "already_open"
    handle = dev_client.get_workflow_handle(first.case_id or "")
    described = await handle.describe()
    # One execution only: the second start did not create a run.
    assert described.run_id == described.raw_description.workflow_execution_info.first_run_id
    status = await handle.query(LoanCollection.status)
    assert status.events >= 1
    await handle.terminate("test over")


def _broken(loan_id: str, case: str) -> dict[str, Any]:
    payloads: dict[str, dict[str, Any]] = {
        "bad phone": case_payload(loan_id, borrower={"phones": ["+86 12"]}),
        "unknown time zone": case_payload(loan_id, borrower={"timezone": "Mars/Olympus"}),
        "negative amount": case_payload(loan_id, loan={"principal": "-5.00"}),
        "unknown currency": case_payload(loan_id, loan={"currency": "XYZ"}),
        "missing field": case_payload(loan_id),
    }
    payload = payloads[case]
    if case == "missing field":
        del payload["loan"]["due_date"]
    return payload


INVALID = [
    ("bad phone", "borrower.phones[0]", "not a valid phone number"),
    ("unknown time zone", "borrower.timezone", "IANA time zone"),
    ("negative amount", "loan.principal", "greater than or equal to 0"),
    ("unknown currency", "loan.currency", "ISO 4217"),
    ("missing field", "loan.due_date", "Field required"),
]


@pytest.mark.parametrize(("case", "field", "problem"), INVALID)
async def test_invalid_case_is_rejected_with_field_and_problem_and_starts_nothing(
    dev_client: Client, stack_settings: Settings, case: str, field: str, problem: str
) -> None:
    loan_id = _loan_id("L-bad")
    result = await starter.open_case(dev_client, stack_settings, 1, _broken(loan_id, case))

    assert result.outcome == "invalid"
    assert result.detail.startswith(f"{field}: "), result.detail
    assert problem in result.detail
    assert not await _exists(dev_client, f"case-{loan_id}")


def test_cli_opens_a_csv_and_reports_each_row(
    stack_settings: Settings, tmp_path: Path, task_queue: str
) -> None:
    """`dunning open FILE.csv`: one row opened, one invalid (named), one duplicate."""
    good = case_payload(_loan_id("L-csv"))
    bad = case_payload(_loan_id("L-csv"), borrower={"timezone": "Nowhere/Else"})
    path = tmp_path / "cases.csv"
    columns = ["loan_id", "borrower_id", "borrower_name", "phones", "timezone", "language"]
    columns += ["currency", "principal", "interest", "fees", "due_date", "days_past_due", "product"]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for p in (good, bad, good):
            b, loan = p["borrower"], p["loan"]
            writer.writerow(
                {
                    "loan_id": loan["id"],
                    "borrower_id": b["id"],
                    "borrower_name": b["name"],
                    "phones": ";".join(b["phones"]),
                    "timezone": b["timezone"],
                    "language": b["language"],
                    **{k: loan[k] for k in columns[6:]},
                }
            )
    env = cli_env(stack_settings.model_copy(update={"task_queue": task_queue}))

    done = subprocess.run(
        [DUNNING, "open", str(path), "--json"], env=env, capture_output=True, text=True
    )

    assert done.returncode == 2, done.stderr  # some rows were invalid
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert [r["outcome"] for r in results] == ["opened", "invalid", "already_open"]
    assert results[1]["detail"].startswith("borrower.timezone: ")
    # No personal data echoed back in errors.
    assert "Nowhere/Else" not in done.stdout + done.stderr
    assert good["borrower"]["name"] not in done.stdout + done.stderr


async def test_a_loan_repeated_in_one_file_is_opened_by_its_first_valid_row(
    dev_client: Client, stack_settings: Settings, task_queue: str
) -> None:
    """Rows naming the same loan run in file order (rows of other loans alongside): the
    first valid row opens the case, every later one finds it open. Started all at once,
    whichever start reached the server first won, often a later row."""
    loan = _loan_id("L-rep")
    bad = case_payload(loan, borrower={"timezone": "Nowhere/Else"})
    others = [case_payload(_loan_id("L-other")) for _ in range(5)]
    rows = [bad, *([case_payload(loan)] * 12), *others]
    settings = stack_settings.model_copy(update={"task_queue": task_queue})
    results = await opening.open_cases(dev_client, settings, rows)
    assert [r.outcome for r in results] == [
        "invalid",
        "opened",
        *["already_open"] * 11,
        *["opened"] * 5,
    ]
    assert [r.row for r in results] == list(range(1, 19))
    for r in results:
        if r.outcome == "opened" and r.case_id is not None:
            await dev_client.get_workflow_handle(r.case_id).terminate("test over")


def test_schema_case_prints_the_case_json_schema() -> None:
    done = subprocess.run([DUNNING, "schema", "case"], capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    schema = json.loads(done.stdout)
    assert set(schema["required"]) >= {"borrower", "loan"}
    defs = schema["$defs"]
    assert "phones" in defs["Borrower"]["properties"]
    assert {"principal", "interest", "fees", "currency", "due_date"} <= set(
        defs["Loan"]["properties"]
    )


def test_due_date_and_days_past_due_must_agree_within_the_tolerance() -> None:
    """The rule itself, on the borrower's local date: a report a few days old or a time
    zone apart is accepted, a due date in the future or far from the days past due is
    not (issue 12, item 11)."""
    from schemas.case import DPD_TOLERANCE_DAYS, dates_problem

    today = date(2026, 12, 1)
    loan = case_input().loan

    def problem(due: date, dpd: int) -> tuple[str, str] | None:
        return dates_problem(loan.model_copy(update={"due_date": due, "days_past_due": dpd}), today)

    assert problem(date(2026, 11, 30), 1) is None
    assert problem(today, 1) is None  # due today for the borrower, a day late for the backend
    for lag in range(-DPD_TOLERANCE_DAYS, DPD_TOLERANCE_DAYS + 1):
        assert problem(date(2026, 11, 1), 30 + lag) is None, lag
    assert problem(date(2026, 11, 1), 30 + DPD_TOLERANCE_DAYS + 1) == (
        "loan.days_past_due",
        f"does not agree with loan.due_date (more than {DPD_TOLERANCE_DAYS} days from the days "
        "since it, in the borrower's time zone)",
    )
    assert problem(date(2026, 12, 2), 1) is not None
    assert problem(date(2099, 12, 31), 120) == (
        "loan.due_date",
        "is after today in the borrower's time zone: a loan past due fell due before",
    )


async def test_a_loan_reopened_after_retention_is_refused_as_closed(
    dev_client: Client,
    dev_worker: Worker,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> None:
    """Issue 12, item 14: once Temporal's retention has removed a closed case, the id
    `case-<loan>` is free again, but the old case's audit rows (and outbox and agreement
    keys) remain. Opening the loan again must not start a case that collides with them
    (it failed on its first audit append): it is refused as closed, and nothing runs."""
    settings = stack_settings.model_copy(update={"task_queue": task_queue})
    payload = case_payload(_loan_id("L-again"))
    first = await starter.open_case(dev_client, settings, 1, payload)
    assert first.outcome == "opened", first
    case_id = first.case_id or ""

    async def rows() -> int:
        async with pool.acquire() as conn:
            found: int = await conn.fetchval(
                "SELECT count(*) FROM audit_events WHERE case_id = $1", case_id
            )
        return found

    deadline = time.monotonic() + 30
    while await rows() == 0:
        assert time.monotonic() < deadline, "the case wrote no audit row"
        await asyncio.sleep(0.2)
    handle = dev_client.get_workflow_handle(case_id)
    await handle.terminate("closed")
    # What retention does once the namespace's period has passed.
    await dev_client.workflow_service.delete_workflow_execution(
        DeleteWorkflowExecutionRequest(
            namespace=dev_client.namespace,
            workflow_execution=WorkflowExecution(workflow_id=case_id),
        )
    )
    while await _exists(dev_client, case_id):
        assert time.monotonic() < deadline + 30, "the execution was not deleted"
        await asyncio.sleep(0.2)
    kept = await rows()

    again = await starter.open_case(dev_client, settings, 1, payload)

    assert again.outcome == "already_closed", again
    assert "audit log" in again.detail and "new loan id" in again.detail, again.detail
    assert not await _exists(dev_client, case_id), "nothing was started"
    assert await rows() == kept

    # In a file, where the audit log is asked once for the whole batch: the same
    # refusal, and the other rows open.
    fresh = case_payload(_loan_id("L-fresh"))
    batch = await opening.open_cases(dev_client, settings, [payload, fresh])
    assert [r.outcome for r in batch] == ["already_closed", "opened"], batch
    assert batch[0].detail == again.detail
    assert not await _exists(dev_client, case_id), "nothing was started"
    assert await _exists(dev_client, f"case-{fresh['loan']['id']}")
    assert await rows() == kept
