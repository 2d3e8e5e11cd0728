"""The webhook provider: each provider call is a signed JSON POST to a partner's URL.

The contract (body, headers, signature, answers, retries) is in docs/providers.md.
Errors are sorted for the Temporal retry policy: a 4xx other than 408/429 is the
request's fault and fails the activity for good (`ApplicationError(non_retryable=True)`);
a 5xx, 408, 429, timeout or connection error is the partner's and is raised as a
retryable error, so the activity backs off and asks again with the same
`Idempotency-Key`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

from schemas.activity_io import OutboundRequest, ProviderReceipt

SIGNATURE_HEADER = "X-Dunning-Signature"
TIMESTAMP_HEADER = "X-Dunning-Timestamp"
KEY_HEADER = "Idempotency-Key"
RETRYABLE_4XX = frozenset({408, 429})
MAX_RETRY_AFTER_S = 60.0

# What a 2xx answer without an `outcome` means, per channel. Calls have none: a dialer
# must say how the call went, else the outcome is recorded as "unknown".
DEFAULT_OUTCOME = {
    "sms": "delivered",
    "third_party_sms": "delivered",
    "field_visit": "requested",
    "legal_handoff": "accepted",
}


@dataclass(frozen=True)
class WebhookUrls:
    sms: str
    call: str
    field_visit: str
    legal_handoff: str

    def for_channel(self, channel: str) -> str:
        # A message to an emergency contact is an SMS: the gateway tells it by `channel`.
        url: str = getattr(self, "sms" if channel == "third_party_sms" else channel)
        return url


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>." + raw body)."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver runs (constant-time comparison); see docs/providers.md."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def request_body(request: OutboundRequest, text: str | None) -> bytes:
    document: dict[str, Any] = {
        "idempotency_key": request.idempotency_key,
        "case_id": request.case_id,
        "channel": request.channel,
        "stage": request.stage,
        "recipient": request.recipient,
        "language": request.language,
        "template": request.template,
        "body": text,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WebhookProvider:
    """SMS gateway, dialer, field agency and legal partner behind four URLs."""

    def __init__(
        self,
        urls: WebhookUrls,
        secret: bytes,
        timeout_s: float = 5.0,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        if not secret:
            raise ValueError("the webhook provider needs a shared secret")
        self._urls = urls
        self._secret = secret
        self._client = client or httpx.AsyncClient(timeout=timeout_s)

    async def __aenter__(self) -> WebhookProvider:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def send_sms(self, request: OutboundRequest, body: str) -> ProviderReceipt:
        return await self._post(request, body)

    async def place_call(self, request: OutboundRequest) -> ProviderReceipt:
        return await self._post(request, None)

    async def schedule_visit(self, request: OutboundRequest) -> ProviderReceipt:
        return await self._post(request, None)

    async def hand_over(self, request: OutboundRequest) -> ProviderReceipt:
        return await self._post(request, None)

    async def _post(self, request: OutboundRequest, text: str | None) -> ProviderReceipt:
        channel = request.channel
        body = request_body(request, text)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            KEY_HEADER: request.idempotency_key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        try:
            response = await self._client.post(
                self._urls.for_channel(channel), content=body, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise ApplicationError(
                f"{channel} webhook timed out", type="ProviderUnavailable"
            ) from exc
        except httpx.TransportError as exc:
            raise ApplicationError(
                f"{channel} webhook unreachable: {type(exc).__name__}", type="ProviderUnavailable"
            ) from exc
        return _receipt(channel, response)


def _receipt(channel: str, response: httpx.Response) -> ProviderReceipt:
    status = response.status_code
    if 200 <= status < 300:
        try:
            answer = response.json()
            return ProviderReceipt(
                provider_ref=str(answer["provider_ref"]),
                outcome=str(answer.get("outcome") or DEFAULT_OUTCOME.get(channel, "unknown")),
                duplicate=bool(answer.get("duplicate", False)),
            )
        except (ValueError, KeyError, TypeError) as exc:
            # The partner acted but answered badly; asking again with the same key is safe
            # (it dedupes) and gives it the chance to answer properly.
            raise ApplicationError(
                f"{channel} webhook answered {status} without a JSON provider_ref",
                type="ProviderBadAnswer",
            ) from exc
    if 400 <= status < 500 and status not in RETRYABLE_4XX:
        raise ApplicationError(
            f"{channel} webhook refused the request: HTTP {status}",
            type="ProviderRejected",
            non_retryable=True,
        )
    raise ApplicationError(
        f"{channel} webhook failed: HTTP {status}",
        type="ProviderUnavailable",
        next_retry_delay=_retry_after(response),
    )


def _retry_after(response: httpx.Response) -> timedelta | None:
    """Honour `Retry-After: <seconds>` on 429/503 (capped), else the policy's backoff."""
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return timedelta(seconds=min(max(seconds, 0.0), MAX_RETRY_AFTER_S))
