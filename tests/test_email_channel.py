"""The `email` channel end to end against a real SMTP server (aiosmtpd on loopback):
one message per occurrence, with its List-Unsubscribe header and the unsubscribe line,
none while the case is paused; a borrower without an address is skipped, recorded;
the address is validated and never shown or logged in clear."""

from __future__ import annotations

import email
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import pytest
from aiosmtpd.controller import Controller
from pydantic import ValidationError
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.providers.base import Content
from activities.providers.smtp import SmtpConfig, SmtpProvider
from dunning.audit.history import mask_payload
from dunning.pii import mask_event, scrub
from dunning.policies import PolicyError, load_file
from dunning.runtime import build_worker
from dunning.settings import Settings
from schemas.activity_io import OutboundRequest
from schemas.case import Borrower, CaseInput
from schemas.commands import Pause, Resume
from schemas.events import CaseOpened, ContactSkipped
from tests.factories import case_input
from tests.records import audit_events
from tests.test_compliance_workflow import _of, _policy, _skip_to
from tests.timeskip import skip
from workflows.decide import decide
from workflows.evolve import evolve
from workflows.inputs import LoanCollectionInput
from workflows.loan_collection import LoanCollection

SHANGHAI = ZoneInfo("Asia/Shanghai")
ADDRESS = "wang.xiaoming@example.cn"
SENDER = "collections@lender.example"


@dataclass
class Inbox:
    """An SMTP server's handler: every message it accepted, with its envelope."""

    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)
    refuse_rcpt: str | None = None  # answer RCPT with this (e.g. "550 no such user")

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse_rcpt is not None:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.original_content or envelope.content)
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _smtp_settings(settings: Settings, port: int) -> Settings:
    return settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_from": SENDER,
            "smtp_security": "none",
        }
    )


def _email_case(**borrower: Any) -> CaseInput:
    return case_input(
        f"L-mail-{uuid.uuid4().hex[:8]}",
        borrower={"timezone": SHANGHAI.key, "email": ADDRESS, **borrower},
    )


async def test_each_occurrence_is_one_email_with_list_unsubscribe_and_none_while_paused(
    ts_env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
    smtp_server: tuple[Inbox, int],
) -> None:
    inbox, port = smtp_server
    policy = _policy("cn", [{"channel": "email", "template": "email_reminder", "every_days": 1}])
    worker = build_worker(ts_env.client, pool, task_queue, _smtp_settings(stack_settings, port))
    async with worker:
        await _skip_to(ts_env, SHANGHAI, "CN", hour=10, minute=0)
        case = _email_case()
        handle: WorkflowHandle[Any, Any] = await ts_env.client.start_workflow(
            LoanCollection.run,
            LoanCollectionInput(case=case, policy=policy),
            id=case.case_id,
            task_queue=task_queue,
        )
        await skip(ts_env, timedelta(days=1, hours=1))  # day 0 and day 1
        assert len(inbox.messages) == 2

        await handle.signal(LoanCollection.pause, Pause(reason="hardship", operator="op-7"))
        await skip(ts_env, timedelta(days=3))
        assert len(inbox.messages) == 2, "nothing goes out while the case is paused"

        await handle.signal(LoanCollection.resume, Resume(reason="review done", operator="op-7"))
        await skip(ts_env, timedelta(days=1, hours=1))
        events = await audit_events(pool, handle.id)
        await handle.terminate("test over")

    sent = [e for e in _of(events, "contact_attempted") if e.channel == "email"]
    assert len(sent) == 3 and len(inbox.messages) == 3, "one e-mail per occurrence"
    assert [e.occurrence for e in sent] == [0, 1, 2]
    assert not _of(events, "contact_failed")
    ids = set()
    for (mail_from, rcpt, message), event in zip(inbox.messages, sent, strict=True):
        assert mail_from == SENDER and rcpt == [ADDRESS]
        assert message["To"] == ADDRESS
        unsubscribe = message["List-Unsubscribe"]
        assert unsubscribe.startswith(f"<mailto:{SENDER}?subject=unsubscribe%20{case.case_id}")
        assert message["Message-ID"] == event.provider_ref
        ids.add(message["Message-ID"])
        subject = str(email.header.make_header(email.header.decode_header(message["Subject"])))
        assert subject.startswith(f"您的借款 {case.loan.id}")
        body = message.get_payload(decode=True).decode("utf-8")  # type: ignore[union-attr]
        assert "退订此类邮件" in body and "1070.00 CNY" in body
    assert len(ids) == 3


async def test_a_retried_attempt_is_not_sent_twice_and_a_refused_recipient_fails_for_good(
    pool: asyncpg.Pool, smtp_server: tuple[Inbox, int]
) -> None:
    inbox, port = smtp_server
    provider = SmtpProvider(SmtpConfig("127.0.0.1", port, SENDER, security="none"), pool)
    key = f"case-L-smtp-{uuid.uuid4().hex[:8]}:3.0.0"
    request = OutboundRequest(
        case_id=key.split(":")[0],
        idempotency_key=key,
        channel="email",
        stage="reminder",
        recipient=ADDRESS,
        language="en",
        template="email_reminder",
    )
    content = Content(text="Subject: Hello\nThe body.\n\nTo unsubscribe from these e-mails ...")
    first = await provider.deliver(request, content)
    again = await provider.deliver(request, content)
    assert not first.duplicate and again.duplicate and first.provider_ref == again.provider_ref
    assert len(inbox.messages) == 1

    inbox.refuse_rcpt = "550 5.1.1 no such user"
    refused = request.model_copy(update={"idempotency_key": key + "-b"})
    with pytest.raises(ApplicationError) as err:
        await provider.deliver(refused, content)
    assert err.value.non_retryable and ADDRESS not in str(err.value)
    assert "550" in str(err.value)


async def test_without_an_smtp_server_set_an_email_is_refused_naming_the_setting(
    pool: asyncpg.Pool,
) -> None:
    provider = SmtpProvider(SmtpConfig(None, 25, None), pool)
    request = OutboundRequest(
        case_id="case-L-x",
        idempotency_key="case-L-x:1.0.0",
        channel="email",
        stage="reminder",
        recipient=ADDRESS,
        language="en",
    )
    with pytest.raises(ApplicationError, match="DUNNING_SMTP_HOST") as err:
        await provider.deliver(request, Content(text="Subject: x\n"))
    assert err.value.non_retryable


def test_a_borrower_without_an_email_is_skipped_recorded() -> None:
    policy = _policy("cn", [{"channel": "email", "template": "email_reminder", "at_days": [0]}])
    case = case_input("L-nomail", borrower={"timezone": SHANGHAI.key})
    now = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai, a working day
    state = evolve(None, CaseOpened(at=now, case=case, policy=policy, rules=3))
    for _ in range(5):
        decision = decide(state, now)
        assert decision.effect is None, "nothing is sent to a borrower with no address"
        if not decision.events:
            break
        for event in decision.events:
            state = evolve(state, event)
            if isinstance(event, ContactSkipped):
                assert (event.rule, event.channel) == ("no_email", "email")
                return
    raise AssertionError("the e-mail was not skipped")


def test_the_address_is_validated_normalised_and_never_echoed() -> None:
    base = {"id": "B-1", "name": "Wang", "phones": ["+8613800138000"], "timezone": "UTC"}
    assert Borrower(**base, email="Wang.Li@Example.CN").email == "Wang.Li@example.cn"
    with pytest.raises(ValidationError) as err:
        Borrower(**base, email="wang.li@@example")
    [problem] = err.value.errors()
    assert problem["loc"] == ("email",) and "e-mail address" in problem["msg"]
    assert "wang.li" not in str(err.value)


def test_the_address_is_masked_in_logs_and_the_auditors_timeline() -> None:
    line = mask_event(None, "", {"event": f"refused <{ADDRESS}>", "email": ADDRESS})
    assert ADDRESS not in str(line)
    assert ADDRESS not in scrub(f"550 {ADDRESS}: no such user")
    payload = {"case": _email_case().model_dump(mode="json")}
    assert ADDRESS not in str(mask_payload(payload))


def test_policy_check_accepts_email_and_wants_the_unsubscribe_line(tmp_path: Path) -> None:
    toml = """name = "mail"
version = 1
compliance = "cn"
[[stages]]
name = "reminder"
from_dpd = 1
actions = [{ channel = "email", template = "TEMPLATE", every_days = 2 }]
"""
    path = tmp_path / "mail.toml"
    path.write_text(toml.replace("TEMPLATE", "email_reminder"), encoding="utf-8")
    assert load_file(path).stages[0].actions[0].channel == "email"
    path.write_text(toml.replace("TEMPLATE", "reminder"), encoding="utf-8")
    with pytest.raises(PolicyError, match="opt-out line"):
        load_file(path)  # the SMS reminder has no unsubscribe line


def test_a_case_without_an_email_keeps_the_shape_it_had_before_the_channel() -> None:
    """Recorded CaseOpened events and audit rows hold no `email` key: a case without
    one must serialise to the same JSON (a retried append is compared with the row)."""
    assert "email" not in case_input("L-shape").model_dump(mode="json")["borrower"]
    assert _email_case().model_dump(mode="json")["borrower"]["email"] == ADDRESS


def test_a_csv_case_file_carries_the_email_column(tmp_path: Path) -> None:
    from dunning.case_files import describe_errors, read_rows
    from dunning.samples import due_date_for

    header = (
        "borrower_id,borrower_name,phones,timezone,email,loan_id,currency,principal,"
        "due_date,days_past_due,product"
    )
    due = due_date_for(3)
    good = f"B-1,Wang,+8613800138000,Asia/Shanghai,{ADDRESS},L-csv-1,CNY,100.00,{due},3,p"
    bad = f"B-2,Li,+8613900139000,Asia/Shanghai,li@@example,L-csv-2,CNY,100.00,{due},3,p"
    path = tmp_path / "cases.csv"
    path.write_text("\n".join([header, good, bad]) + "\n", encoding="utf-8")
    first, second = read_rows(path)
    assert CaseInput.model_validate(first).borrower.email == ADDRESS
    with pytest.raises(ValidationError) as err:
        CaseInput.model_validate(second)
    described = describe_errors(err.value)
    assert described.startswith("borrower.email: must be an e-mail address")
    assert "li@@" not in described
