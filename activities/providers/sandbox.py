"""The default provider: records each outbound message in the PostgreSQL outbox
instead of sending it, once per idempotency key."""

from __future__ import annotations

import base64
import json
from typing import Any

import asyncpg

from activities.providers.base import NOTHING, Content
from schemas.activity_io import OutboundRequest, ProviderReceipt
from schemas.channels import CHANNELS

INSERT = """
INSERT INTO outbox (idempotency_key, case_id, channel, recipient, template, body, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id
"""
EXISTING = "SELECT id, case_id, channel, payload FROM outbox WHERE idempotency_key = $1"


class SandboxProvider:
    """Every partner of the channel table in one: all write the outbox. A partner that
    must say how an attempt went (a dialer) answers `call_outcome`; the others their
    channel's `default_outcome`. A document (a letter's PDF) is kept in the row's
    payload (base64) with its SHA-256."""

    call_timeout_s = 1.0  # one write to PostgreSQL

    def __init__(self, pool: asyncpg.Pool, call_outcome: str = "no_answer") -> None:
        self._pool = pool
        self._call_outcome = call_outcome

    async def deliver(self, request: OutboundRequest, content: Content) -> ProviderReceipt:
        outcome = CHANNELS[request.channel].default_outcome
        if outcome == "unknown":
            outcome = self._call_outcome
        return await self._record(request, content.text, outcome=outcome, content=content)

    async def send_sms(self, request: OutboundRequest, body: str) -> ProviderReceipt:
        return await self.deliver(request, Content(text=body))

    async def place_call(self, request: OutboundRequest) -> ProviderReceipt:
        return await self.deliver(request, NOTHING)

    async def schedule_visit(self, request: OutboundRequest) -> ProviderReceipt:
        return await self.deliver(request, NOTHING)

    async def hand_over(self, request: OutboundRequest) -> ProviderReceipt:
        return await self.deliver(request, NOTHING)

    async def _record(
        self,
        request: OutboundRequest,
        body: str | None,
        *,
        outcome: str,
        content: Content = NOTHING,
    ) -> ProviderReceipt:
        document: dict[str, Any] = {"stage": request.stage, "language": request.language}
        if content.document is not None:
            document |= {
                "document": base64.b64encode(content.document).decode("ascii"),
                "document_sha256": content.document_sha256,
                "media_type": content.media_type,
            }
        async with self._pool.acquire() as conn:
            row_id = await conn.fetchval(
                INSERT,
                request.idempotency_key,
                request.case_id,
                request.channel,
                request.recipient,
                request.template,
                body,
                json.dumps(document),
            )
            duplicate = row_id is None
            digest = content.document_sha256
            if duplicate:
                existing = await conn.fetchrow(EXISTING, request.idempotency_key)
                if existing["case_id"] != request.case_id or existing["channel"] != request.channel:
                    raise ValueError("idempotency key reused for a different message")
                row_id = existing["id"]
                digest = json.loads(existing["payload"]).get("document_sha256")
        return ProviderReceipt(
            provider_ref=f"sandbox-{row_id}",
            outcome=outcome,
            duplicate=duplicate,
            document_sha256=digest,
        )
