"""No log line names a borrower: not the engine's, not Temporal's, not the CLI's.

A full scenario runs with logging at DEBUG: cases with distinctive names, phones and
addresses open on a fast policy with a worker in this process, are paid, paused and
resumed, escalated by an operator, sent an update and a signal whose payload does not
validate (and quotes personal data), and looked at and opened through the `dunning`
CLI as subprocesses, one CSV row invalid. Every line (this process's log stream, its
file descriptors 1 and 2 where Temporal's core writes, the subprocesses' stdout and
stderr) is searched for every form of the borrowers' names, phones and addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import phonenumbers
import pytest
import structlog
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError
from temporalio.worker import Worker

import starter
from dunning.case_client import Update
from dunning.logging_setup import configure
from dunning.pii import mask_event, scrub
from dunning.settings import Settings
from schemas.commands import Escalate, Pause, Payment, Resume
from schemas.status import ActionResult, CaseStatus
from tests.factories import case_input, fast_policy
from tests.test_opening import DUNNING, cli_env
from workflows.loan_collection import LoanCollection

# name, phone as given (national form of `country`), country, address
BORROWERS = [
    ("Philippa Gruntbottle", "139 7531 8642", "CN", "12 Quillfeather Lane, Dunwich"),
    ("司马懿明", "186-2468-1357", "CN", "浦东新区世纪大道七十七号"),
    ("Bartholomew Zanzibarr", "(415) 555-0132", "US", "901 Wisteria Hollow, Mill Valley"),
]
OP = {"operator": "op-7", "reason": "log test"}
# Each borrower's emergency contact (name, phone in national form of the borrower's
# country): messaged once the borrower is unreachable, so their data flows too.
CONTACTS = [
    ("Ermintrude Quackenbush", "137 2468 9753"),
    ("欧阳娜娜", "135-8642-9731"),
    ("Cornelius Fitzwilliam", "(415) 555-0177"),
]


def _forms(phone: str, country: str) -> set[str]:
    parsed = phonenumbers.parse(phone, country)
    fmt = phonenumbers.PhoneNumberFormat
    forms = {phone}
    for kind in (fmt.E164, fmt.INTERNATIONAL, fmt.NATIONAL, fmt.RFC3966):
        text = phonenumbers.format_number(parsed, kind)
        forms |= {text, "".join(c for c in text if c.isdigit())}
    return forms | {str(parsed.national_number)}


def _secrets() -> list[str]:
    found: list[str] = []
    for (name, phone, country, address), (contact, number) in zip(BORROWERS, CONTACTS, strict=True):
        found += [name, address, *_forms(phone, country), contact, *_forms(number, country)]
        found += [part for part in f"{name} {contact}".split() if len(part) > 3]
    return found


@pytest.fixture
def captured_logs(tmp_path: Path) -> Iterator[Path]:
    """This process's logs as JSON at DEBUG into a file; the previous setup afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    path = tmp_path / "engine.log"
    with path.open("w", encoding="utf-8") as stream:
        configure("json", "DEBUG", stream=stream)
        try:
            yield path
        finally:
            stream.flush()
            root.handlers[:] = handlers
            root.setLevel(level)


def test_masking_covers_structlog_and_stdlib_lines(captured_logs: Path) -> None:
    name, phone, country, address = BORROWERS[0]
    e164 = phonenumbers.format_number(
        phonenumbers.parse(phone, country), phonenumbers.PhoneNumberFormat.E164
    )
    structlog.get_logger("test").info(
        f"dialling {e164}", name=name, phones=[e164], address=address, recipient=e164
    )
    structlog.get_logger("test").info("nested", case={"borrower": {"name": name, "phone": phone}})
    logging.getLogger("test.stdlib").warning("calling %s", phone)
    logging.getLogger("test.stdlib").info("extra", extra={"borrower_name": name, "body": "hi"})
    try:
        raise ValueError(f"input_value='{name}' rejected for 0{phone}")
    except ValueError:
        logging.getLogger("test.stdlib").exception("failed")
    text = captured_logs.read_text(encoding="utf-8")
    assert text.count("\n") >= 5, text
    assert "***42" in text and "P***" in text, text
    for secret in (name, address, e164, phone, "97531", "7531 8642", "Gruntbottle"):
        assert secret not in text, secret


def test_scrub_leaves_ids_times_and_amounts_alone() -> None:
    kept = [
        "2026-10-01T08:00:00.123456+00:00",
        "2026-10-01 08:00:00",
        "balance 1070.00, paid 1234567.89",
        "127.0.0.1:54329",
        "case-L-1001:12",
        "0196a1b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b",
        "12345678-1234-1234-1234-123456789012",
    ]
    for text in kept:
        assert scrub(text) == text
    assert scrub("+86 139 7531 8642 / 13975318642 / (415) 555-0132") == "***42 / ***42 / ***32"
    masked = mask_event(None, "info", {"event": "x", "phones": ["+8613975318642"], "name": "Li"})
    assert masked == {"event": "x", "phones": ["***42"], "name": "L***"}


async def test_a_full_scenario_logs_no_personal_data(
    captured_logs: Path,
    capfd: pytest.CaptureFixture[str],
    dev_client: Client,
    dev_worker: Worker,
    stack_settings: Settings,
    task_queue: str,
    tmp_path: Path,
) -> None:
    # Days of 1 s: a worker lagging a 300 ms day on a loaded machine coalesces piled-up
    # calls (rules 3), and the third party is only messaged after three real ones.
    policy = fast_policy(timedelta(seconds=1))
    tag = uuid.uuid4().hex[:8]
    handles = []
    for n, (name, phone, country, address) in enumerate(BORROWERS):
        contact, number = CONTACTS[n]
        borrower = {
            "name": name,
            "phones": [phone],
            "country": country,
            "address": address,
            "emergency_contacts": [{"name": contact, "phone": number}],
        }
        case = case_input(f"L-log-{tag}-{n}", borrower=borrower)
        params = starter.workflow_input(case).model_copy(update={"policy": policy})
        handles.append(
            await dev_client.start_workflow(
                LoanCollection.run, params, id=case.case_id, task_queue=task_queue
            )
        )
    first, second, third = handles

    async def update(handle: Any, method: Update, command: Any) -> CaseStatus:
        result: ActionResult = await handle.execute_update(method, command)
        return result.status

    async def contacted(handle: Any) -> None:
        for _ in range(100):
            status: CaseStatus = await handle.query(LoanCollection.status)
            if status.counters.get("sms", 0) > 0:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"{handle.id}: no contact")

    async def third_party_messaged(handle: Any) -> None:
        for _ in range(150):  # the borrower never answers: unreachable after 3 calls
            status: CaseStatus = await handle.query(LoanCollection.status)
            if status.counters.get("third_party_sms", 0) > 0:
                return
            await asyncio.sleep(0.2)
        lines = [e.summary for e in status.last_events]
        raise AssertionError(f"{handle.id}: no third-party message: {status.counters} {lines}")

    await asyncio.gather(*(contacted(h) for h in handles))
    pay = LoanCollection.record_payment
    await update(first, pay, Payment(amount=Decimal("100.00"), reference="P-1"))
    await update(first, LoanCollection.pause_case, Pause(**OP))
    await update(first, LoanCollection.resume_case, Resume(**OP))
    await update(second, LoanCollection.escalate, Escalate(**OP))
    await update(first, pay, Payment(amount=Decimal("970.00"), reference="P-2"))
    await asyncio.wait_for(first.result(), 30)

    # Payloads that do not validate, quoting personal data: refused, and not logged.
    name, phone, _, address = BORROWERS[2]
    bad = {"amount": phone, "reference": name, "source": address}
    with pytest.raises(WorkflowUpdateFailedError):
        await third.execute_update("record_payment", bad, result_type=ActionResult)
    await third.signal("payment", bad)
    await third.signal("pause", {"operator": name, "reason": f"call {phone}", "until": address})

    env = {**cli_env(stack_settings.model_copy(update={"task_queue": task_queue}))}
    env["DUNNING_LOG_LEVEL"] = "DEBUG"
    rows = tmp_path / "cases.csv"
    with rows.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        columns = ["loan_id", "borrower_id", "borrower_name", "phones", "country", "address"]
        columns += ["timezone", "language", "currency", "principal", "interest", "fees"]
        columns += ["due_date", "days_past_due", "policy"]
        writer.writerow(columns)
        for n, (name, phone, country, address) in enumerate(BORROWERS):
            timezone = "Asia/Shanghai" if n != 1 else "Mars/Olympus_Mons"  # invalid row
            loan = ["zh-CN", "CNY", "1000.00", "50.00", "20.00", "2026-10-01", "1", "demo"]
            writer.writerow(
                [f"L-logcli-{tag}-{n}", f"B-{n}", name, phone, country, address, timezone, *loan]
            )

    def dunning(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DUNNING, *args], env=env, capture_output=True, text=True)

    outputs: list[str] = []
    for args in (
        ("open", str(rows)),
        ("open", str(rows), "--json"),
        ("status", first.id),
        ("status", third.id, "--json"),
        ("pay", f"L-log-{tag}-2", "not-a-number", "--reference", "R-1"),
        ("cases", "--json"),
    ):
        done = await asyncio.to_thread(dunning, *args)
        outputs += [done.stdout, done.stderr]
    opened = outputs[0]
    assert "invalid" in opened and "opened" in opened, opened
    assert "borrower.timezone" in opened, opened

    await third_party_messaged(third)
    for case_id in (second.id, third.id, f"case-L-logcli-{tag}-0", f"case-L-logcli-{tag}-2"):
        with contextlib.suppress(RPCError):  # already closed (a fast policy reaches legal)
            await dev_client.get_workflow_handle(case_id).terminate("log test done")

    engine = await asyncio.to_thread(captured_logs.read_text, encoding="utf-8")
    fd = capfd.readouterr()
    everything = "\n".join([engine, fd.out, fd.err, *outputs])
    # The capture saw the scenario: the engine's lines, Temporal's, the CLI's.
    assert '"event": "outbound"' in engine, engine[:2000]
    assert "audit appended" in engine
    assert any(first.id in line for line in engine.splitlines())
    leaked = [s for s in _secrets() if s in everything]
    assert not leaked, f"personal data in the logs: {leaked}"
