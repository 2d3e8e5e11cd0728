"""The webhook provider against a real local HTTP partner: signed, keyed, idempotent,
and its errors sorted for Temporal's retry policy."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError

from activities.providers.webhook import WebhookProvider, sign, verify
from schemas.activity_io import OutboundRequest
from tests.webhook_gateway import Gateway, running_gateway

SECRET = b"test-secret"


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    with running_gateway(SECRET) as gw:
        yield gw


def _request(key: str = "case-L-1:3", channel: str = "sms") -> OutboundRequest:
    return OutboundRequest(
        case_id="case-L-1",
        idempotency_key=key,
        channel=channel,
        stage="reminder",
        recipient="+8613800138000",
        language="zh-CN",
        template={"sms": "reminder", "third_party_sms": "third_party"}.get(channel),
    )


def test_signature_covers_timestamp_and_body() -> None:
    signature = sign(SECRET, "1700000000", b'{"a":1}')
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify(SECRET, "1700000000", b'{"a":1}', signature)
    assert not verify(SECRET, "1700000001", b'{"a":1}', signature)
    assert not verify(SECRET, "1700000000", b'{"a":2}', signature)
    assert not verify(b"other", "1700000000", b'{"a":1}', signature)


async def test_delivers_signed_and_answers_the_receipt(gateway: Gateway) -> None:
    async with WebhookProvider(gateway.urls(), SECRET, timeout_s=2) as provider:
        receipt = await provider.send_sms(_request(), "hello")
        call = await provider.place_call(_request("case-L-1:4", "call"))
        visit = await provider.schedule_visit(_request("case-L-1:5", "field_visit"))
        legal = await provider.hand_over(_request("case-L-1:6", "legal_handoff"))
        third = await provider.send_sms(_request("case-L-1:7", "third_party_sms"), "hi")
    assert (receipt.provider_ref, receipt.outcome, receipt.duplicate) == (
        "gw-1",
        "delivered",
        False,
    )
    assert call.outcome == "no_answer"
    assert (visit.outcome, legal.outcome, third.outcome) == ("requested", "accepted", "delivered")
    assert [r.path for r in gateway.requests] == ["/sms", "/call", "/field", "/legal", "/sms"]
    assert gateway.requests[4].body["channel"] == "third_party_sms"
    assert all(r.signed for r in gateway.requests)
    assert gateway.requests[0].body["body"] == "hello"
    assert gateway.requests[0].body["idempotency_key"] == "case-L-1:3"


async def test_wrong_secret_is_refused_for_good(gateway: Gateway) -> None:
    async with WebhookProvider(gateway.urls(), b"wrong", timeout_s=2) as provider:
        with pytest.raises(ApplicationError) as err:
            await provider.send_sms(_request(), "hello")
    assert err.value.non_retryable and "401" in str(err.value)
    assert not gateway.delivered


@pytest.mark.parametrize("status", [500, 503, 429, 408])
async def test_server_errors_are_retryable_and_the_retry_is_deduped(
    gateway: Gateway, status: int
) -> None:
    async with WebhookProvider(gateway.urls(), SECRET, timeout_s=2) as provider:
        gateway.fail_status = status
        with pytest.raises(ApplicationError) as err:
            await provider.send_sms(_request(), "hello")
        assert not err.value.non_retryable and str(status) in str(err.value)
        gateway.fail_status = None
        first = await provider.send_sms(_request(), "hello")
        again = await provider.send_sms(_request(), "hello")
    assert first.provider_ref == again.provider_ref and again.duplicate
    assert gateway.received_keys() == {"case-L-1:3": 3}
    assert list(gateway.delivered) == ["case-L-1:3"]


async def test_timeout_is_retryable_and_the_same_key_is_sent_again(gateway: Gateway) -> None:
    async with WebhookProvider(gateway.urls(), SECRET, timeout_s=0.3) as provider:
        gateway.delay_s = 1.0
        with pytest.raises(ApplicationError) as err:
            await provider.send_sms(_request(), "hello")
        assert not err.value.non_retryable and "timed out" in str(err.value)
        gateway.delay_s = 0
        receipt = await provider.send_sms(_request(), "hello")
    assert receipt.duplicate  # the first attempt went out; the retry did not send again
    assert gateway.received_keys() == {"case-L-1:3": 2}
    assert len(gateway.delivered) == 1


async def test_unreachable_partner_is_retryable(gateway: Gateway) -> None:
    urls = gateway.urls()
    dead = type(urls)({k: "http://127.0.0.1:9/x" for k in urls.by_partner})
    async with WebhookProvider(dead, SECRET, timeout_s=1) as provider:
        with pytest.raises(ApplicationError) as err:
            await provider.send_sms(_request(), "hello")
    assert not err.value.non_retryable


@pytest.mark.parametrize("status", [400, 404, 409, 422])
async def test_client_errors_are_not_retryable(status: int) -> None:
    with running_gateway(SECRET) as gw:
        gw.fail_status = status
        async with WebhookProvider(gw.urls(), SECRET, timeout_s=2) as provider:
            with pytest.raises(ApplicationError) as err:
                await provider.hand_over(_request("k", "legal_handoff"))
    assert err.value.non_retryable and f"HTTP {status}" in str(err.value)


async def test_worker_picks_the_provider_from_settings() -> None:
    from pydantic import SecretStr

    from activities.providers.sandbox import SandboxProvider
    from dunning.runtime import ProviderSettingsError, build_provider
    from dunning.settings import Settings

    pool: Any = object()  # neither provider touches the pool when built
    assert isinstance(build_provider(Settings(), pool), SandboxProvider)
    with pytest.raises(ProviderSettingsError, match="webhook_secret"):
        build_provider(Settings(provider="webhook", webhook_sms_url="http://x/sms"), pool)
    urls = {
        f"webhook_{name}_url": f"http://127.0.0.1:1/{name}"
        for name in ("sms", "dialer", "field", "legal")
    }
    settings = Settings(provider="webhook", webhook_secret=SecretStr("s"), **urls)
    provider = build_provider(settings, pool)
    assert isinstance(provider, WebhookProvider)
    await provider.aclose()
