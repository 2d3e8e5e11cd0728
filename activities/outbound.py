"""Outbound activities: one per channel's activity in `schemas/channels.py`.

Each hands an attempt to its provider and heartbeats while the provider answers, so a
withdrawal (the workflow cancelling the attempt) reaches it. A request the provider is
already handling is let finish: if the provider accepts it, that is the truth the
case records; if not, the attempt ends as withdrawn.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.providers.base import Dialer, FieldAgency, LegalPartner, SmsGateway
from activities.templates import TemplateError, Templates
from schemas.activity_io import OutboundRequest, ProviderReceipt
from schemas.channels import CHANNELS

log = structlog.get_logger("dunning.activities")

# Heartbeat this often while a provider answers (the workflow's heartbeat timeout is
# 10 s; the SDK throttles what it sends).
HEARTBEAT_EVERY_S = 1.0


async def delivering(call: Awaitable[ProviderReceipt]) -> ProviderReceipt:
    """Await a provider call, heartbeating; on cancellation, let a call in flight end
    and return its receipt if the provider accepted, else end as cancelled."""
    task = asyncio.ensure_future(call)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_S)
            if done:
                return task.result()
            activity.heartbeat()
    except asyncio.CancelledError:
        try:
            receipt = await task
        except Exception:  # the provider did not take it: withdrawn
            raise asyncio.CancelledError() from None
        log.info("accepted before the withdrawal reached it", outcome=receipt.outcome)
        return receipt


class OutboundActivities:
    def __init__(
        self,
        sms: SmsGateway,
        dialer: Dialer,
        field: FieldAgency,
        legal: LegalPartner,
        templates: Templates,
    ) -> None:
        self._templates = templates
        self._sms = sms
        self._dialer = dialer
        self._field = field
        self._legal = legal

    @activity.defn(name=CHANNELS["sms"].activity)
    async def send_sms(self, request: OutboundRequest) -> ProviderReceipt:
        if request.template is None:
            raise ApplicationError(
                "sms request without a template", type="NoTemplate", non_retryable=True
            )
        try:
            body = self._templates.render(request.template, request.language, request.variables)
        except TemplateError as exc:
            raise ApplicationError(str(exc), type="TemplateError", non_retryable=True) from exc
        except Exception as exc:  # jinja2: an undefined variable, a syntax error, ...
            raise ApplicationError(
                f"template {request.template!r} ({request.language}) did not render: "
                f"{type(exc).__name__}",
                type="TemplateError",
                non_retryable=True,
            ) from exc
        return self._logged(request, await delivering(self._sms.send_sms(request, body)))

    @activity.defn(name=CHANNELS["call"].activity)
    async def place_call(self, request: OutboundRequest) -> ProviderReceipt:
        return self._logged(request, await delivering(self._dialer.place_call(request)))

    @activity.defn(name=CHANNELS["field_visit"].activity)
    async def schedule_field_visit(self, request: OutboundRequest) -> ProviderReceipt:
        return self._logged(request, await delivering(self._field.schedule_visit(request)))

    @activity.defn(name=CHANNELS["legal_handoff"].activity)
    async def hand_to_legal(self, request: OutboundRequest) -> ProviderReceipt:
        return self._logged(request, await delivering(self._legal.hand_over(request)))

    def _logged(self, request: OutboundRequest, receipt: ProviderReceipt) -> ProviderReceipt:
        info = activity.info()
        log.info(
            "outbound",
            case_id=request.case_id,
            workflow_id=info.workflow_id,
            stage=request.stage,
            channel=request.channel,
            idempotency_key=request.idempotency_key,
            outcome=receipt.outcome,
            duplicate=receipt.duplicate,
            attempt=info.attempt,
        )
        return receipt

    def all(self) -> list[Callable[..., Any]]:
        return [self.send_sms, self.place_call, self.schedule_field_visit, self.hand_to_legal]
