"""Provider interfaces. Each call carries an idempotency key; a provider that has
seen the key already must answer with the original receipt and do nothing else.

Every partner of `schemas/channels.py` is a `Provider`: the outbound activities hand
it the request and what the channel's template rendered (`Content`). The named
methods (`send_sms`, `place_call`, ...) are the same call under the names the
agreements and older code use."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Protocol

from schemas.activity_io import OutboundRequest, ProviderReceipt


@dataclass(frozen=True)
class Content:
    """What goes out with an attempt: the rendered text (an SMS, an e-mail), or a
    document made of it (a letter's PDF: `document`, with the text it was made of)."""

    text: str | None = None
    document: bytes | None = None
    media_type: str | None = None  # of `document`

    @property
    def document_sha256(self) -> str | None:
        return hashlib.sha256(self.document).hexdigest() if self.document is not None else None


NOTHING = Content()


class Provider(Protocol):
    # The longest a call may take before the provider gives up on it (its client's
    # timeout): a paced call is begun only with this much of its attempt left.
    call_timeout_s: float

    async def deliver(self, request: OutboundRequest, content: Content) -> ProviderReceipt: ...


class SmsGateway(Protocol):
    async def send_sms(self, request: OutboundRequest, body: str) -> ProviderReceipt: ...
