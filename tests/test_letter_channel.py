"""The `letter` channel: a template rendered to a PDF (fpdf2) and handed to the
print-and-mail house through the webhook provider (a real HTTP partner on loopback);
the PDF opens and shows the itemised debt, and the SHA-256 in the audit row is the
hash of the very bytes the partner received."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pypdf
import pytest
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.letters import letter_font, render_pdf
from activities.providers.base import Content
from activities.providers.webhook import WebhookProvider, WebhookUrls
from dunning.policies import PolicyError, load_file
from dunning.runtime import build_worker
from dunning.settings import Settings
from dunning.templates import current
from schemas.activity_io import OutboundRequest
from schemas.events import CaseOpened, ContactSkipped
from tests.factories import case_input
from tests.test_compliance_workflow import NEW_YORK, _policy, _skip_to
from tests.timeskip import skip
from tests.webhook_gateway import Gateway, running_gateway
from workflows.decide import decide
from workflows.effects import template_variables
from workflows.evolve import evolve
from workflows.inputs import LoanCollectionInput
from workflows.loan_collection import LoanCollection

SECRET = b"letters-test-secret"
ADDRESS = "12 Elm Street, Springfield, NY 10001"


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    with running_gateway(SECRET) as gw:
        yield gw


def _text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


async def test_a_validation_notice_reaches_the_mail_house_as_a_pdf_whose_hash_is_audited(
    ts_env: WorkflowEnvironment,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
    gateway: Gateway,
) -> None:
    policy = _policy(
        "us", [{"channel": "letter", "template": "letter_validation_notice", "at_days": [0]}]
    )
    case = case_input(
        f"L-letter-{uuid.uuid4().hex[:8]}",
        borrower={
            "timezone": NEW_YORK.key,
            "language": "en",
            "address": ADDRESS,
        },
        loan={"currency": "USD", "fees": "20.00", "interest": "50.00", "principal": "1000.00"},
    )
    async with WebhookProvider(gateway.urls(), SECRET, timeout_s=2) as provider:
        async with build_worker(ts_env.client, pool, task_queue, stack_settings, provider=provider):
            await _skip_to(ts_env, NEW_YORK, "US", hour=10, minute=0)
            handle: WorkflowHandle[Any, Any] = await ts_env.client.start_workflow(
                LoanCollection.run,
                LoanCollectionInput(case=case, policy=policy),
                id=case.case_id,
                task_queue=task_queue,
            )
            await skip(ts_env, timedelta(minutes=10))
            await handle.terminate("test over")

    [key] = gateway.delivered_keys(case.case_id, "letter")
    received = gateway.delivered[key]
    assert received["path"] == "/mail"
    body = received["body"]
    assert body["recipient"] == ADDRESS and body["media_type"] == "application/pdf"
    assert body["body"] is None, "the partner gets the document, not the text again"
    pdf = base64.b64decode(body["document"])
    assert pdf.startswith(b"%PDF-")
    digest = hashlib.sha256(pdf).hexdigest()
    assert body["document_sha256"] == digest

    rows = await pool.fetch(
        "SELECT payload FROM audit_events WHERE case_id = $1 AND event_type = $2",
        case.case_id,
        "contact_attempted",
    )
    [row] = rows
    audited = json.loads(row["payload"])
    assert audited["channel"] == "letter" and audited["outcome"] == "accepted"
    assert audited["document_sha256"] == digest, "the audit row holds the hash of what was sent"

    text = _text(pdf)
    for line in (
        "Principal: 1000.00 USD",
        "Interest: 50.00 USD",
        "Fees: 20.00 USD",
        "Penalty: 0.00 USD",
        "Total amount of the debt now: 1070.00 USD",
        "Wang Xiaoming",
        "Springfield",
    ):
        assert line in text, line
    today = datetime.now(UTC).astimezone(NEW_YORK).date()
    assert "dispute" in text and str(today.year) in text


def test_a_chinese_pre_legal_notice_itemises_the_debt_in_a_cjk_font() -> None:
    if letter_font() is None:
        pytest.skip("no CJK font on this machine (fonts-wqy-microhei)")
    policy = _policy("cn", [{"channel": "letter", "template": "letter_pre_legal", "at_days": [0]}])
    case = case_input("L-prelegal", borrower={"timezone": "Asia/Shanghai"})
    now = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
    state = evolve(None, CaseOpened(at=now, case=case, policy=policy, rules=3))
    [entered] = decide(state, now).events
    state = evolve(state, entered)
    effect = decide(state, now).effect
    assert effect is not None and effect.channel == "letter"
    variables = template_variables(state, effect, now)
    text = current().render("letter_pre_legal", "zh-CN", variables)
    request = OutboundRequest(
        case_id=case.case_id,
        idempotency_key=effect.idempotency_key,
        channel="letter",
        stage=effect.stage,
        recipient=case.borrower.address or "",
        language="zh-CN",
        template="letter_pre_legal",
        variables=variables,
    )
    letter = render_pdf(text, request)
    assert letter.document is not None
    assert render_pdf(text, request).document == letter.document, "the same bytes every time"
    pdf_text = _text(letter.document)
    colon = "\N{FULLWIDTH COLON}"
    for label, amount in (
        ("本金", "1000.00"),
        ("利息", "50.00"),
        ("费用", "20.00"),
        ("合计", "1070.00"),
    ):
        assert f"{label}{colon}{amount} CNY" in pdf_text, label
    assert (variables["date"], variables["respond_by"]) == ("2026-12-03", "2027-01-07")


def test_a_borrower_without_a_postal_address_is_skipped_recorded() -> None:
    policy = _policy("cn", [{"channel": "letter", "template": "letter_pre_legal", "at_days": [0]}])
    case = case_input("L-noaddress", borrower={"timezone": "Asia/Shanghai", "address": None})
    now = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)
    state = evolve(None, CaseOpened(at=now, case=case, policy=policy, rules=3))
    for _ in range(5):
        decision = decide(state, now)
        assert decision.effect is None, "no letter without an address"
        for event in decision.events:
            state = evolve(state, event)
            if isinstance(event, ContactSkipped):
                assert (event.rule, event.channel) == ("no_postal_address", "letter")
                return
    raise AssertionError("the letter was not skipped")


async def test_without_the_mail_url_a_letter_is_refused_naming_the_setting(
    gateway: Gateway,
) -> None:
    urls = {k: v for k, v in gateway.urls().by_partner.items() if k != "mail"}
    request = OutboundRequest(
        case_id="case-L-1",
        idempotency_key="case-L-1:2.0.0",
        channel="letter",
        stage="legal",
        recipient=ADDRESS,
        language="en",
        template="letter_pre_legal",
    )
    async with WebhookProvider(WebhookUrls(urls), SECRET, timeout_s=2) as provider:
        with pytest.raises(ApplicationError, match="DUNNING_WEBHOOK_MAIL_URL") as err:
            await provider.deliver(request, Content(text="x", document=b"%PDF-"))
    assert err.value.non_retryable and ADDRESS not in str(err.value)
    assert not gateway.requests


def test_policy_check_accepts_letters_once_with_the_letter_variables(tmp_path: Path) -> None:
    toml = """name = "letters"
version = 1
compliance = "us"
[[stages]]
name = "reminder"
from_dpd = 1
actions = [{ channel = "letter", template = "TEMPLATE", CADENCE }]
"""
    path = tmp_path / "letters.toml"

    def write(template: str, cadence: str = "at_days = [0]") -> Path:
        path.write_text(
            toml.replace("TEMPLATE", template).replace("CADENCE", cadence), encoding="utf-8"
        )
        return path

    for template in ("letter_validation_notice", "letter_pre_legal"):
        assert load_file(write(template)).stages[0].actions[0].channel == "letter"
    with pytest.raises(PolicyError, match="every_days"):
        load_file(write("letter_pre_legal", "every_days = 3"))
    with pytest.raises(PolicyError, match="unknown variable"):
        load_file(write("agreement_confirmation"))


def test_a_contact_without_a_document_keeps_the_shape_it_had_before_letters() -> None:
    from schemas.events import ContactAttempted

    sent = ContactAttempted(
        at=datetime(2026, 12, 3, tzinfo=UTC),
        channel="sms",
        stage="reminder",
        action_index=0,
        occurrence=0,
        idempotency_key="case-L-1:2.0.0",
        provider_ref="p-1",
        outcome="delivered",
    )
    assert "document_sha256" not in sent.model_dump(mode="json")
    with_pdf = sent.model_copy(update={"channel": "letter", "document_sha256": "ab" * 32})
    assert with_pdf.model_dump(mode="json")["document_sha256"] == "ab" * 32


def test_the_shipped_us_example_checks_with_the_validation_notice_on_day_one() -> None:
    import subprocess
    import sys

    from dunning.policies import SHIPPED, load

    dunning = str(Path(sys.executable).parent / "dunning")
    done = subprocess.run(
        [dunning, "policy", "check", str(SHIPPED / "us-letters.toml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and done.stdout.startswith("ok: us-letters@1"), done.stderr
    policy = load("us-letters")
    assert policy.compliance == "us"
    first = policy.stages[0].actions
    [notice] = [a for a in first if a.channel == "letter"]
    assert notice.template == "letter_validation_notice" and notice.at_days == (0,)
    assert any(a.channel == "email" for a in first)
