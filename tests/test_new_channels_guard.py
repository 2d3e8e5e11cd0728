"""The guard on the e-mail and letter channels, pure: ceases (`email`, `letter`, `all`)
and hard stops skip them, the contact window defers them, they count toward no cap,
and an attempt in flight is withdrawn by a hold; and the sandbox records both."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from schemas.channels import CHANNELS
from schemas.events import CollectionPaused, ContactCeased, HardStopped
from tests.factories import case_input
from tests.test_compliance_workflow import _policy
from workflows import compliance, delivery
from workflows.decide import Effect
from workflows.evolve import evolve
from workflows.state import CaseState

NOW = datetime(2026, 12, 3, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai, a working day
OP = {"operator": "op-7", "reason": "asked"}


def _state(**borrower: object) -> CaseState:
    from schemas.events import CaseOpened

    policy = _policy(
        "cn",
        [
            {"channel": "email", "template": "email_reminder", "every_days": 1},
            {"channel": "letter", "template": "letter_pre_legal", "at_days": [0]},
            {"channel": "sms", "template": "reminder", "every_days": 1},
        ],
    )
    case = case_input(
        "L-guard-new",
        borrower={"timezone": "Asia/Shanghai", "email": "w@example.cn", **borrower},
    )
    return evolve(None, CaseOpened(at=NOW, case=case, policy=policy, rules=3))


@pytest.mark.parametrize(
    ("ceased", "stopped"),
    [
        ("email", {"email"}),
        ("letter", {"letter"}),
        ("all", {"email", "letter", "sms"}),
        ("sms", {"sms"}),
    ],
)
def test_a_cease_stops_its_channel_and_no_other(ceased: str, stopped: set[str]) -> None:
    state = evolve(_state(), ContactCeased(at=NOW, channel=ceased, **OP))  # type: ignore[arg-type]
    for channel in ("email", "letter", "sms"):
        block = compliance.check(state, channel, NOW)
        if channel in stopped:
            assert block is not None and block.rule == "cease_contact", channel
        else:
            assert block is None, (channel, block)


def test_a_hard_stop_skips_both_and_the_window_defers_both() -> None:
    stopped = evolve(_state(), HardStopped(at=NOW, kind="represented", **OP))
    for channel in ("email", "letter"):
        block = compliance.check(stopped, channel, NOW)
        assert block is not None and block.rule == "hard_stop"
        night = NOW + timedelta(hours=12)  # 23:00 in Shanghai
        deferred = compliance.check(_state(), channel, night)
        assert deferred is not None and deferred.rule == "contact_window" and deferred.until


def test_neither_counts_toward_the_call_caps() -> None:
    assert not CHANNELS["email"].capped and not CHANNELS["letter"].capped
    assert CHANNELS["email"].guarded and CHANNELS["letter"].guarded


def test_a_pause_withdraws_an_email_or_a_letter_in_flight() -> None:
    paused = evolve(_state(), CollectionPaused(at=NOW, **OP))
    for channel in ("email", "letter"):
        effect = Effect(
            channel=channel,  # type: ignore[arg-type]
            stage="reminder",
            action_index=0,
            occurrence=0,
            template="x",
            idempotency_key="k",
        )
        assert delivery.withdrawal(_state(), effect) is None
        block = delivery.withdrawal(paused, effect)
        assert block is not None and block.rule == "paused"


async def test_the_sandbox_records_emails_and_letters_in_the_outbox_once(pool: object) -> None:
    import hashlib
    import json
    import uuid

    from activities.providers.base import Content
    from activities.providers.sandbox import SandboxProvider
    from schemas.activity_io import OutboundRequest

    sandbox = SandboxProvider(pool)  # type: ignore[arg-type]
    case_id = f"case-L-sandbox-{uuid.uuid4().hex[:8]}"

    def request(channel: str, key: str, recipient: str) -> OutboundRequest:
        return OutboundRequest(
            case_id=case_id,
            idempotency_key=f"{case_id}:{key}",
            channel=channel,  # type: ignore[arg-type]
            stage="reminder",
            recipient=recipient,
            language="en",
            template="t",
        )

    mail = await sandbox.deliver(
        request("email", "2.0.0", "w@example.cn"), Content(text="Subject: s\nbody")
    )
    assert (mail.outcome, mail.document_sha256) == ("delivered", None)
    pdf = b"%PDF-1.4 not really"
    letter = request("letter", "2.1.0", "1 Elm St")
    first = await sandbox.deliver(letter, Content(text="t", document=pdf, media_type="x/pdf"))
    again = await sandbox.deliver(letter, Content(text="t", document=pdf, media_type="x/pdf"))
    digest = hashlib.sha256(pdf).hexdigest()
    assert first.outcome == "accepted" and first.document_sha256 == digest
    assert again.duplicate and again.document_sha256 == digest
    rows = await pool.fetch(  # type: ignore[attr-defined]
        "SELECT channel, recipient, body, payload FROM outbox WHERE case_id = $1 ORDER BY id",
        case_id,
    )
    assert [(r["channel"], r["recipient"]) for r in rows] == [
        ("email", "w@example.cn"),
        ("letter", "1 Elm St"),
    ]
    assert rows[0]["body"] == "Subject: s\nbody"
    assert json.loads(rows[1]["payload"])["document_sha256"] == digest
