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
from pydantic import ValidationError
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Worker

import starter
from dunning.action_table import BY_NAME
from dunning.samples import due_date_for
from dunning.settings import Settings
from schemas.refusals import Refusal
from schemas.status import ActionResult, CaseStatus
from tests.factories import case_payload
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
OP = {"operator": "op-1", "reason": "x"}
NUL = "a\u0000b"  # PostgreSQL's jsonb refuses it: it must never reach the audit store
# (action of dunning.action_table, raw payload as a caller might send it, code or text
# expected in the refusal). Every text field of every command is here at least once.
BAD_ACTIONS: list[tuple[str, dict[str, Any], Refusal | str]] = [
    ("pay", {"amount": "NaN", "reference": "R-1"}, ""),
    ("pay", {"amount": "-5", "reference": "R-1"}, ""),
    ("pay", {"amount": "1e30", "reference": "R-1"}, ""),
    ("pay", {"amount": "10.00", "reference": "has space"}, ""),
    ("pay", {"amount": "10.00"}, ""),
    ("pay", {"amount": "10.001", "reference": "R-1"}, Refusal.minor_units),
    ("pay", {"amount": "10.00", "reference": NUL}, "reference"),
    ("pay", {"amount": "10.00", "reference": "R-1", "source": NUL}, "source"),
    ("pay", {"amount": "10.00", "reference": "R-1", "source": "x" * 65}, "source"),
    ("pay", {"amount": "10.00", "reference": "R" * 129}, "reference"),
    ("pause", {"operator": "op-1", "reason": ""}, ""),
    ("pause", {"operator": "op 1", "reason": "x"}, ""),
    ("pause", {"operator": "op-1", "reason": "x" * 501}, ""),
    ("pause", {"operator": "op-1", "reason": NUL}, "control characters"),
    ("pause", {"operator": "op-1", "reason": "\u200b\u200b"}, "visible characters"),
    ("pause", {"operator": "op-1", "reason": "a\x1b[2Jb"}, "control characters"),
    ("pause", {"operator": NUL, "reason": "x"}, "operator"),
    ("pause", {"operator": "o" * 65, "reason": "x"}, "operator"),
    ("pause", {**OP, "until": "2020-01-01T00:00:00Z"}, Refusal.not_in_future),
    ("pause", {**OP, "until": "2030-01-01T00:00:00"}, ""),
    ("pause", {**OP, "surprise": 1}, "Extra inputs"),
    ("resume", OP, Refusal.not_paused),
    ("resume", {"operator": "op-1"}, "reason"),
    ("promise", {**OP, "amount": "5", "pay_by": "2020-01-01"}, Refusal.date_in_past),
    ("promise", {**OP, "amount": "5", "pay_by": "2999-01-01"}, Refusal.date_too_far),
    ("promise", {**OP, "amount": "99999", "pay_by": SOON}, Refusal.amount_over_balance),
    ("promise", {**OP, "amount": "5.555", "pay_by": SOON}, Refusal.minor_units),
    ("promise", {**OP, "amount": "5", "pay_by": "tomorrow"}, "pay_by"),
    ("plan", {**OP, "instalments": []}, ""),
    ("plan", {**OP, "instalments": [{"amount": "1070.00", "due": "nope"}]}, ""),
    ("plan", {**OP, "instalments": [{"amount": "1070.001", "due": SOON}]}, Refusal.minor_units),
    ("plan", {**OP, "instalments": [{"amount": "10", "due": SOON}] * 37}, ""),
    (
        "plan",
        {**OP, "instalments": [{"amount": "10.00", "due": SOON}]},
        Refusal.instalments_mismatch,
    ),
    ("settle", {**OP, "amount": "5000", "pay_by": SOON}, Refusal.amount_not_below_balance),
    ("settle", {**OP, "amount": "100.00", "pay_by": SOON}, Refusal.below_floor),
    (
        "settle",
        {**OP, "amount": "800.00", "pay_by": SOON, "supervisor": "sup-1"},
        Refusal.approval_required,
    ),
    ("settle", {**OP, "amount": "800.00", "pay_by": SOON, "supervisor": NUL}, "supervisor"),
    ("dispute resolve", {**OP, "outcome": "for_borrower"}, Refusal.no_dispute),
    ("dispute resolve", {**OP, "outcome": "maybe"}, "outcome"),
    ("visit book", {**OP, "at": "2030-01-01T10:00:00Z", "collectors": ["c-1"]}, ""),
    ("visit book", {**OP, "at": "2030-01-01T10:00:00Z", "collectors": ["c-1", "C-1"]}, ""),
    ("visit book", {**OP, "at": "2030-01-01T10:00:00Z", "collectors": ["c-1", NUL]}, ""),
    ("visit book", {**OP, "at": "2030-01-01T10:00:00Z", "collectors": ["c-1", "c 2"]}, ""),
    ("visit book", {**OP, "at": "2030-01-01T10:00:00Z", "collectors": ["c"] * 7}, ""),
    ("visit book", {**OP, "at": "2030-01-01T10:00:00Z", "collectors": ["c-1", "x" * 65]}, ""),
    ("visit report", {**OP, "outcome": "met"}, Refusal.no_visit),
    ("visit report", {**OP, "outcome": NUL}, "outcome"),
    ("write-off", {**OP, "supervisor": "sup-1"}, Refusal.approval_required),
    ("write-off", {**OP, "supervisor": "s" * 65}, "supervisor"),
    ("approve", {**OP, "request": 99}, Refusal.no_such_approval),
    ("approve", {**OP, "request": 0}, "request"),
    ("decline", {**OP, "request": "seven"}, "request"),
    ("cease", {**OP, "channel": "fax"}, "channel"),
    ("hard-stop", {**OP, "kind": "moved abroad"}, "kind"),
    ("third-party-opt-out", {**OP, "contact": 0}, Refusal.no_such_contact),
    ("third-party-opt-out", {**OP, "contact": 9}, "contact"),
    ("escalate", {"operator": "op-1", "reason": "\t"}, ""),
    ("dispute open", {"operator": "op-1", "reason": "a" * 501}, "reason"),
    ("note", {"operator": "op-1", "reason": NUL, "topic": "call"}, "control characters"),
    ("note", {"operator": "op-1", "reason": "x", "topic": "gossip"}, "topic"),
    ("deescalate", OP, Refusal.first_stage),
    ("close", {"operator": "op-1", "reason": "x", "note": "extra"}, "Extra inputs"),
]


def _refusal_code(failed: WorkflowUpdateFailedError) -> str | None:
    cause = failed.cause
    if isinstance(cause, ApplicationError) and cause.type == "Rejected" and cause.details:
        return str(cause.details[0])
    return None


def _field_errors(name: str, payload: dict[str, Any]) -> str:
    """What the CLI and the API say of a payload that does not fit the command (they
    validate with the same model before sending; the workflow refuses it too)."""
    try:
        BY_NAME[name].command.model_validate(payload)
    except ValidationError as exc:
        return starter.describe_errors(exc)
    return ""


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

    for name, payload, expected in BAD_ACTIONS:
        # Raw JSON by update name, as a caller in another language would send it.
        update = BY_NAME[name].update_name
        with pytest.raises(WorkflowUpdateFailedError) as failed:
            await handle.execute_update(update, payload, result_type=ActionResult)
        if isinstance(expected, Refusal):
            assert _refusal_code(failed.value) == expected.value, (name, payload)
        else:
            problems = _field_errors(name, payload)
            assert problems and expected in problems, (name, payload, problems)
            assert not any(ord(ch) < 32 for ch in problems), "errors never echo the input"
        assert (await handle.describe()).history_length == length, (name, payload)

    # Signals can't answer: a malformed one is dropped and changes nothing either.
    await handle.signal("payment", {"amount": "NaN", "reference": "R-9"})
    await handle.signal("pause", {"operator": "op-1", "reason": NUL})
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


def test_the_catalogue_holds_at_least_80_inputs_and_every_action() -> None:
    assert len(CASES) + len(BAD_ACTIONS) >= 80
    assert {name for name, _, _ in BAD_ACTIONS} >= set(BY_NAME) - {"policy migrate"}
