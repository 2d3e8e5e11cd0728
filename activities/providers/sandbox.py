"""The default provider: records each outbound message in the PostgreSQL outbox
instead of sending it, once per idempotency key."""

from __future__ import annotations

import json

import asyncpg

from schemas.activity_io import OutboundRequest, ProviderReceipt

INSERT = """
INSERT INTO outbox (idempotency_key, case_id, channel, recipient, template, body, payload)
VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)
ON CONFLICT (idempotency_key) DO NOTHING
RETURNING id
"""
EXISTING = "SELECT id, case_id, channel FROM outbox WHERE idempotency_key = $1"


class SandboxProvider:
    """SMS gateway, dialer, field agency and legal partner in one: all write the outbox."""

    def __init__(self, pool: asyncpg.Pool, call_outcome: str = "no_answer") -> None:
        self._pool = pool
        self._call_outcome = call_outcome

    async def send_sms(self, request: OutboundRequest, body: str) -> ProviderReceipt:
        return await self._record(request, body, outcome="delivered")

    async def place_call(self, request: OutboundRequest) -> ProviderReceipt:
        return await self._record(request, None, outcome=self._call_outcome)

    async def schedule_visit(self, request: OutboundRequest) -> ProviderReceipt:
        return await self._record(request, None, outcome="requested")

    async def hand_over(self, request: OutboundRequest) -> ProviderReceipt:
        return await self._record(request, None, outcome="accepted")

    async def _record(
        self, request: OutboundRequest, body: str | None, *, outcome: str
    ) -> ProviderReceipt:
        payload = json.dumps({"stage": request.stage, "language": request.language})
        async with self._pool.acquire() as conn:
            row_id = await conn.fetchval(
                INSERT,
                request.idempotency_key,
                request.case_id,
                request.channel,
                request.recipient,
                request.template,
                body,
                payload,
            )
            duplicate = row_id is None
            if duplicate:
                existing = await conn.fetchrow(EXISTING, request.idempotency_key)
                if existing["case_id"] != request.case_id or existing["channel"] != request.channel:
                    raise ValueError("idempotency key reused for a different message")
                row_id = existing["id"]
        return ProviderReceipt(
            provider_ref=f"sandbox-{row_id}", outcome=outcome, duplicate=duplicate
        )
