"""The bad-input catalogue: malformed cases and actions each get a clear error naming
the field, start or change nothing, and leave the worker running.

Policy files have their own catalogue in test_policy_files.py.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

import starter
from dunning.settings import Settings
from schemas.status import CaseStatus
from tests.factories import case_payload, due_date_for
from workflows.loan_collection import LoanCollection


def _mutated(loan_id: str, path: list[str], value: Any = None, delete: bool = False) -> Any:
    payload = case_payload(loan_id)
    target = payload
    for key in path[:-1]:
        target = target[key]
    if delete:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return payload


# (what, path, value, field named in the error, problem)
CASES: list[tuple[str, list[str], Any, str, str]] = [
    ("amount not a number", ["loan", "principal"], "abc", "loan.principal", "valid decimal"),
    ("amount NaN", ["loan", "principal"], "NaN", "loan.principal", "finite number"),
    ("amount Infinity", ["loan", "principal"], "Infinity", "loan.principal", "finite number"),
    ("amount overflowing", ["loan", "principal"], "1e30", "loan.principal", "18 digits"),
    ("amount below the minor unit", ["loan", "principal"], "10.001", "loan.principal", "decimals"),
    ("amount a boolean", ["loan", "principal"], True, "loan.principal", "Decimal input"),
    ("amount negative", ["loan", "interest"], "-1", "loan.interest", "greater than or equal"),
    ("days past due zero", ["loan", "days_past_due"], 0, "loan.days_past_due", "greater"),
    ("days past due a word", ["loan", "days_past_due"], "ten", "loan.days_past_due", "integer"),
    ("days past due huge", ["loan", "days_past_due"], 10**12, "loan.days_past_due", "less"),
    ("date impossible", ["loan", "due_date"], "2026-13-01", "loan.due_date", "valid date"),
    # Due date and days past due must agree at opening (issue 12, item 11).
    ("due date far ahead", ["loan", "due_date"], "2099-12-31", "loan.due_date", "after today"),
    ("due date tomorrow", ["loan", "due_date"], due_date_for(-1), "loan.due_date", "after today"),
    (
        "due date a year back, 1 day past due",
        ["loan", "due_date"],
        due_date_for(366),
        "loan.days_past_due",
        "does not agree with loan.due_date",
    ),
    (
        "due date 5 days back, 1 day past due",
        ["loan", "due_date"],
        due_date_for(5),
        "loan.days_past_due",
        "does not agree with loan.due_date",
    ),
    ("currency unknown", ["loan", "currency"], "ZZ", "loan.currency", "ISO 4217"),
    ("currency a number", ["loan", "currency"], 156, "loan.currency", "valid string"),
    ("loan id with a space", ["loan", "id"], "L 1", "loan.id", "pattern"),
    ("loan id huge", ["loan", "id"], "L" * 10_000, "loan.id", "at most 64"),
    ("loan id unicode", ["loan", "id"], "贷款-1", "loan.id", "pattern"),
    ("loan id with RTL override", ["loan", "id"], "L\u202e1", "loan.id", "pattern"),
    ("product missing", ["loan", "product"], None, "loan.product", "Field required"),
    ("name empty", ["borrower", "name"], "", "borrower.name", "at least 1"),
    ("name only spaces", ["borrower", "name"], "   ", "borrower.name", "at least 1"),
    ("name huge", ["borrower", "name"], "x" * 100_000, "borrower.name", "at most 200"),
    ("name invisible", ["borrower", "name"], "\u200b\u200b", "borrower.name", "visible"),
    ("name with NUL", ["borrower", "name"], "Li\x00Wei", "borrower.name", "control"),
    ("phones empty", ["borrower", "phones"], [], "borrower.phones", "at least 1"),
    ("phones not a list", ["borrower", "phones"], "+8613800138000", "borrower.phones", "list"),
    ("phone letters", ["borrower", "phones"], ["call me"], "borrower.phones[0]", "not a phone"),
    (
        "phone twice",
        ["borrower", "phones"],
        ["+86 138 0013 8000", "+8613800138000"],
        "borrower.phones[1]",
        "appears twice",
    ),
    (
        "too many phones",
        ["borrower", "phones"],
        [f"+86 138 0013 80{i:02d}" for i in range(11)],
        "borrower.phones",
        "at most 10",
    ),
    (
        "emergency contact's number is the borrower's",
        ["borrower", "emergency_contacts"],
        [{"name": "Li Na", "phone": "+86 138 0013 8000"}],
        "borrower.emergency_contacts[0].phone",
        "appears twice",
    ),
    (
        "emergency contact without a phone",
        ["borrower", "emergency_contacts"],
        [{"name": "Li Na"}],
        "borrower.emergency_contacts.0.phone",
        "Field required",
    ),
    (
        "emergency contact relation unknown",
        ["borrower", "emergency_contacts"],
        [{"name": "Li Na", "phone": "+86 137 0013 7000", "relation": "boss"}],
        "borrower.emergency_contacts.0.relation",
        "Input should be",
    ),
    ("time zone empty", ["borrower", "timezone"], "", "borrower.timezone", "at least 1"),
    ("time zone a path", ["borrower", "timezone"], "../../etc/passwd", "borrower.timezone", "IANA"),
    ("language unknown", ["borrower", "language"], "fr", "borrower.language", "'en'"),
    ("address huge", ["borrower", "address"], "a" * 1000, "borrower.address", "at most 500"),
    ("country unknown", ["borrower", "country"], "XX", "borrower.country", "ISO 3166"),
    ("extra field", ["vip"], True, "vip", "Extra inputs"),
    ("borrower missing", ["borrower"], None, "borrower", "Field required"),
    ("policy a path", ["policy"], "../default", "policy", "pattern"),
    ("policy unknown", ["policy"], "nope", "policy", "no policy named 'nope'"),
    ("policy version unknown", ["policy"], "default@9", "policy", "no default@9.toml kept"),
]


async def _started(client: Client, case_id: str) -> bool:
    try:
        await client.get_workflow_handle(case_id).describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


@pytest.mark.parametrize(("what", "path", "value", "field", "problem"), CASES)
async def test_a_malformed_case_is_refused_and_nothing_starts(
    dev_client: Client,
    stack_settings: Settings,
    what: str,
    path: list[str],
    value: Any,
    field: str,
    problem: str,
) -> None:
    loan_id = f"L-bad-{uuid.uuid4().hex[:8]}"
    delete = value is None
    payload = _mutated(loan_id, path, value, delete=delete)

    result = await starter.open_case(dev_client, stack_settings, 1, payload)

    assert result.outcome == "invalid", what
    assert result.detail.startswith(f"{field}: "), (what, result.detail)
    assert problem in result.detail, (what, result.detail)
    assert not await _started(dev_client, f"case-{loan_id}"), what
    if path[0] == "borrower" and isinstance(value, str) and len(value) > 3:
        assert value not in result.detail, "errors never echo personal data"


SOON = (date.today() + timedelta(days=5)).isoformat()
# (update, raw payload as a caller might send it, text expected in the refusal)
BAD_ACTIONS: list[tuple[str, dict[str, Any], str]] = [
    ("record_payment", {"amount": "NaN", "reference": "R-1"}, ""),
    ("record_payment", {"amount": "-5", "reference": "R-1"}, ""),
    ("record_payment", {"amount": "1e30", "reference": "R-1"}, ""),
    ("record_payment", {"amount": "10.00", "reference": "has space"}, ""),
    ("record_payment", {"amount": "10.00"}, ""),
    ("pause_case", {"operator": "op-1", "reason": ""}, ""),
    ("pause_case", {"operator": "op 1", "reason": "x"}, ""),
    ("pause_case", {"operator": "op-1", "reason": "x" * 501}, ""),
    ("pause_case", {"operator": "op-1", "reason": "x", "until": "2020-01-01T00:00:00Z"}, "until"),
    ("pause_case", {"operator": "op-1", "reason": "x", "until": "2030-01-01T00:00:00"}, ""),
    ("resume_case", {"operator": "op-1", "reason": "x"}, "not paused"),
    (
        "promise_to_pay",
        {"operator": "op-1", "reason": "x", "amount": "5", "pay_by": "2020-01-01"},
        "pay_by",
    ),
    (
        "promise_to_pay",
        {"operator": "op-1", "reason": "x", "amount": "5", "pay_by": "2999-01-01"},
        "days ahead",
    ),
    (
        "promise_to_pay",
        {"operator": "op-1", "reason": "x", "amount": "99999", "pay_by": SOON},
        "more than the balance",
    ),
    ("agree_plan", {"operator": "op-1", "reason": "x", "instalments": []}, ""),
    (
        "offer_settlement",
        {"operator": "op-1", "reason": "x", "amount": "5000", "pay_by": SOON},
        "not below the balance",
    ),
    (
        "book_visit",
        {"operator": "op-1", "reason": "x", "at": "2030-01-01T10:00:00Z", "collectors": ["c-1"]},
        "",
    ),
    ("write_off", {"operator": "op-1", "reason": "x"}, ""),
    ("report_visit", {"operator": "op-1", "reason": "x", "outcome": "met"}, "no booked visit"),
    (
        "resolve_dispute",
        {"operator": "op-1", "reason": "x", "outcome": "for_borrower"},
        "no open dispute",
    ),
]


async def test_malformed_actions_are_refused_and_leave_the_case_as_it_was(
    dev_client: Client, dev_worker: Worker, task_queue: str
) -> None:
    loan_id = f"L-acts-{uuid.uuid4().hex[:8]}"
    case = starter.CaseInput.model_validate(case_payload(loan_id))
    handle = await dev_client.start_workflow(
        LoanCollection.run, starter.workflow_input(case), id=case.case_id, task_queue=task_queue
    )
    length = -1
    for _ in range(50):  # let the case settle into its first wait
        current = (await handle.describe()).history_length
        if current == length:
            break
        length = current
        await asyncio.sleep(0.4)
    before: CaseStatus = await handle.query(LoanCollection.status)

    for update, payload, reason in BAD_ACTIONS:
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await handle.execute_update(update, payload, result_type=CaseStatus)
        assert reason in str(failed.value.cause), (update, payload, failed.value.cause)
        assert (await handle.describe()).history_length == length, (update, payload)

    # Signals can't answer: a malformed one is dropped and changes nothing either.
    await handle.signal("payment", {"amount": "NaN", "reference": "R-9"})
    after: CaseStatus = await handle.query(LoanCollection.status)  # the worker still answers
    assert after.balance == before.balance and after.events == before.events
    await handle.terminate("test over")


HEADER = (
    "loan_id,borrower_id,borrower_name,phones,timezone,currency,principal,due_date,"
    "days_past_due,product"
)
ROW = "L-{n},B-1,Li Wei,+86 138 0013 8000,Asia/Shanghai,CNY,100.00,2026-10-01,3,p"
CSV_CASES: list[tuple[str, str, str]] = [
    ("a cell too many", HEADER + "\n" + ROW + ",surplus\n", "more cells than the header"),
    (
        "loan_id column missing",
        HEADER.replace("loan_id,", "")
        + "\nB-1,Li Wei,+86 138 0013 8000,Asia/Shanghai,CNY,100.00,2026-10-01,3,p\n",
        "loan.id: Field required",
    ),
    ("unknown column", HEADER + ",vip\n" + ROW + ",yes\n", "vip: Extra inputs"),
    (
        "phones separated wrongly",
        HEADER + "\n" + ROW.replace("+86 138 0013 8000", "+86 138 0013 8000 / 139") + "\n",
        "borrower.phones[0]",
    ),
]


@pytest.mark.parametrize(("what", "text", "problem"), CSV_CASES)
async def test_a_malformed_csv_row_is_refused_and_nothing_starts(
    dev_client: Client, stack_settings: Settings, tmp_path: Any, what: str, text: str, problem: str
) -> None:
    n = uuid.uuid4().hex[:8]
    path = tmp_path / "cases.csv"
    path.write_text(text.replace("{n}", n), encoding="utf-8")
    try:
        rows = starter.read_rows(path)
    except ValueError as exc:
        assert problem in str(exc), what
        return
    results = await starter.open_cases(dev_client, stack_settings, rows)
    assert [r.outcome for r in results] == ["invalid"], (what, results)
    assert problem in results[0].detail, (what, results[0].detail)
    assert not await _started(dev_client, f"case-L-{n}")


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Any) -> None:
    path = tmp_path / "cases.csv"
    path.write_bytes(HEADER.encode() + b"\n\xff\xfe\xfa broken\n")
    with pytest.raises(UnicodeDecodeError):
        starter.read_rows(path)
