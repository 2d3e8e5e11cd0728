"""The guard on the e-mail and letter channels, pure: ceases (`email`, `letter`, `all`)
and hard stops skip them, the contact window defers them, they count toward no cap,
and an attempt in flight is withdrawn by a hold."""

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
