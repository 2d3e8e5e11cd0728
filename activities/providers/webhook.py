"""The webhook provider: each provider call is a signed JSON POST to a partner's URL.

The contract (body, headers, signature, answers, retries) is in docs/providers.md.
Errors are sorted for the Temporal retry policy: a 4xx other than 408/429 is the
request's fault and fails the activity for good (`ApplicationError(non_retryable=True)`);
a 5xx, 408, 429, timeout or connection error is the partner's and is raised as a
retryable error, so the activity backs off and asks again with the same
`Idempotency-Key`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any

import httpx
from temporalio.exceptions import ApplicationError

from activities.providers.base import NOTHING, Content
from schemas.activity_io import OutboundRequest, ProviderReceipt
from schemas.channels import CHANNELS, Partner

SIGNATURE_HEADER = "X-Dunning-Signature"
TIMESTAMP_HEADER = "X-Dunning-Timestamp"
KEY_HEADER = "Idempotency-Key"
RETRYABLE_4XX = frozenset({408, 429})
MAX_RETRY_AFTER_S = 60.0

# What a 2xx answer without an `outcome` means is the channel's `default_outcome`
# (schemas/channels.py). Calls have none: a dialer must say how the call went, else the
# outcome is recorded as "unknown".


def url_setting(partner: Partner) -> str:
    """The setting that holds a partner's URL (`DUNNING_WEBHOOK_<PARTNER>_URL`)."""
    return f"webhook_{partner}_url"


class WebhookUrls:
    """One URL per partner of the channel table; every channel of a partner goes to its
    URL (a message to an emergency contact is an SMS: the gateway tells it by `channel`)."""

    def __init__(self, urls: Mapping[Partner, str]) -> None:
        self.by_partner: dict[Partner, str] = dict(urls)

    def for_channel(self, channel: str) -> str:
        partner = CHANNELS[channel].partner  # type: ignore[index]
        url = self.by_partner.get(partner)
        if not url:
            raise ApplicationError(
                f"{channel}: no URL for partner {partner} "
                f"(set DUNNING_{url_setting(partner).upper()})",
                type="ProviderNotConfigured",
                non_retryable=True,
            )
        return url


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>." + raw body)."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver runs (constant-time comparison); see docs/providers.md."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def request_body(request: OutboundRequest, content: Content) -> bytes:
    """The JSON a partner gets (docs/providers.md). A document goes as base64 with its
    SHA-256 and media type, instead of the text it was made of."""
    text = content.text if content.document is None else None
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
    if content.document is not None:
        document |= {
            "document": base64.b64encode(content.document).decode("ascii"),
            "document_sha256": content.document_sha256,
            "media_type": content.media_type,
        }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WebhookProvider:
    """Every partner of the channel table behind its own URL."""

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
        # httpx applies the timeout to each phase (connect, write, read): a call that
        # trickles can take longer; this is the usual bound.
        self.call_timeout_s = timeout_s
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
        return await self.deliver(request, Content(text=body))

    async def place_call(self, request: OutboundRequest) -> ProviderReceipt:
        return await self.deliver(request, NOTHING)

    async def schedule_visit(self, request: OutboundRequest) -> ProviderReceipt:
        return await self.deliver(request, NOTHING)

    async def hand_over(self, request: OutboundRequest) -> ProviderReceipt:
        return await self.deliver(request, NOTHING)

    async def deliver(self, request: OutboundRequest, content: Content) -> ProviderReceipt:
        channel = request.channel
        url = self._urls.for_channel(channel)
        body = request_body(request, content)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            KEY_HEADER: request.idempotency_key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self._secret, timestamp, body),
        }
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise ApplicationError(
                f"{channel} webhook timed out", type="ProviderUnavailable"
            ) from exc
        except httpx.TransportError as exc:
            raise ApplicationError(
                f"{channel} webhook unreachable: {type(exc).__name__}", type="ProviderUnavailable"
            ) from exc
        return _receipt(channel, response, content.document_sha256)


def _receipt(channel: str, response: httpx.Response, sha256: str | None) -> ProviderReceipt:
    status = response.status_code
    if 200 <= status < 300:
        try:
            answer = response.json()
            return ProviderReceipt(
                provider_ref=str(answer["provider_ref"]),
                outcome=str(answer.get("outcome") or CHANNELS[channel].default_outcome),  # type: ignore[index]
                duplicate=bool(answer.get("duplicate", False)),
                document_sha256=sha256,
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
