"""Provider interfaces. Each call carries an idempotency key; a provider that has
seen the key already must answer with the original receipt and do nothing else."""

from __future__ import annotations

from typing import Protocol

from schemas.activity_io import OutboundRequest, ProviderReceipt


class SmsGateway(Protocol):
    async def send_sms(self, request: OutboundRequest, body: str) -> ProviderReceipt: ...


class Dialer(Protocol):
    async def place_call(self, request: OutboundRequest) -> ProviderReceipt: ...


class FieldAgency(Protocol):
    async def schedule_visit(self, request: OutboundRequest) -> ProviderReceipt: ...


class LegalPartner(Protocol):
    async def hand_over(self, request: OutboundRequest) -> ProviderReceipt: ...
