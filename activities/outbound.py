"""Outbound activities: SMS, calls, field visits and the legal handoff."""

from __future__ import annotations

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.providers.base import Dialer, FieldAgency, LegalPartner, SmsGateway
from dunning.templates import TemplateError, render
from schemas.activity_io import OutboundRequest, ProviderReceipt

log = structlog.get_logger("dunning.activities")


class OutboundActivities:
    def __init__(
        self, sms: SmsGateway, dialer: Dialer, field: FieldAgency, legal: LegalPartner
    ) -> None:
        self._sms = sms
        self._dialer = dialer
        self._field = field
        self._legal = legal

    @activity.defn(name="send_sms")
    async def send_sms(self, request: OutboundRequest) -> ProviderReceipt:
        if request.template is None:
            raise ApplicationError("sms request without a template", non_retryable=True)
        try:
            body = render(request.template, request.language, request.variables)
        except TemplateError as exc:
            raise ApplicationError(str(exc), non_retryable=True) from exc
        return self._logged(request, await self._sms.send_sms(request, body))

    @activity.defn(name="place_call")
    async def place_call(self, request: OutboundRequest) -> ProviderReceipt:
        return self._logged(request, await self._dialer.place_call(request))

    @activity.defn(name="schedule_field_visit")
    async def schedule_field_visit(self, request: OutboundRequest) -> ProviderReceipt:
        return self._logged(request, await self._field.schedule_visit(request))

    @activity.defn(name="hand_to_legal")
    async def hand_to_legal(self, request: OutboundRequest) -> ProviderReceipt:
        return self._logged(request, await self._legal.hand_over(request))

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

    def all(self) -> list[object]:
        return [self.send_sms, self.place_call, self.schedule_field_visit, self.hand_to_legal]
