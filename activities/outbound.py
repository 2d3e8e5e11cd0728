"""Outbound activities: one per channel's activity in `schemas/channels.py`, made from
the table.

Each renders the channel's template (if it has one) as the channel says (`rendering`:
the text itself, or a document made of it), hands the attempt to its partner's
provider and heartbeats while the provider answers, so a withdrawal (the workflow
cancelling the attempt) reaches it. A request the provider is already handling is let
finish: if the provider accepts it, that is the truth the case records; if not, the
attempt ends as withdrawn. A channel a person performs (`person`: a call task) waits for
the person, so a withdrawal stops the wait itself (the task leaves the queue unless it
was completed meanwhile: `activities/providers/call_queue.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.letters import render_pdf
from activities.providers.base import NOTHING, Content, Provider
from activities.templates import TemplateError, Templates
from schemas.activity_io import OutboundRequest, ProviderReceipt
from schemas.channels import ACTIVITIES, CHANNELS, Partner, Rendering

log = structlog.get_logger("dunning.activities")

# Heartbeat this often while a provider answers (the workflow's heartbeat timeout is
# 10 s; the SDK throttles what it sends).
HEARTBEAT_EVERY_S = 1.0


def _as_text(text: str, request: OutboundRequest) -> Content:
    return Content(text=text)


# How a rendered template becomes what the partner is handed, per `Rendering`.
RENDERERS: dict[Rendering, Callable[[str, OutboundRequest], Content]] = {
    "text": _as_text,
    "pdf": render_pdf,
}


async def delivering(call: Awaitable[ProviderReceipt], waits: bool = False) -> ProviderReceipt:
    """Await a provider call, heartbeating; on cancellation, let a call in flight end
    and return its receipt if the provider accepted, else end as cancelled. `waits`: the
    call waits for a person; cancellation is passed to it (it answers with a receipt if
    the person finished first)."""
    task = asyncio.ensure_future(call)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_S)
            if done:
                return task.result()
            activity.heartbeat()
    except asyncio.CancelledError:
        if waits:
            task.cancel()
        try:
            receipt = await task
        except Exception:  # the provider did not take it: withdrawn
            raise asyncio.CancelledError() from None
        log.info("accepted before the withdrawal reached it", outcome=receipt.outcome)
        return receipt


class OutboundActivities:
    """The outbound activities, each handing its channels' attempts to the provider of
    their partner (`providers`: one per partner of the table)."""

    def __init__(self, providers: Mapping[Partner, Provider], templates: Templates) -> None:
        missing = {spec.partner for spec in CHANNELS.values()} - set(providers)
        if missing:
            raise ValueError(f"no provider for partner(s) {', '.join(sorted(missing))}")
        self._providers = dict(providers)
        self._templates = templates

    async def perform(self, request: OutboundRequest) -> ProviderReceipt:
        """Render, deliver, log: what every outbound activity does."""
        spec = CHANNELS[request.channel]
        content = self._content(request)
        provider = self._providers[spec.partner]
        receipt = await delivering(provider.deliver(request, content), waits=spec.person)
        return self._logged(request, receipt)

    def _content(self, request: OutboundRequest) -> Content:
        spec = CHANNELS[request.channel]
        if spec.template is None:
            return NOTHING
        if request.template is None:
            raise ApplicationError(
                f"{request.channel} request without a template",
                type="NoTemplate",
                non_retryable=True,
            )
        try:
            text = self._templates.render(request.template, request.language, request.variables)
            return RENDERERS[spec.rendering](text, request)
        except TemplateError as exc:
            raise ApplicationError(str(exc), type="TemplateError", non_retryable=True) from exc
        except ApplicationError:
            raise
        except Exception as exc:  # jinja2: an undefined variable, a syntax error, ...
            raise ApplicationError(
                f"template {request.template!r} ({request.language}) did not render: "
                f"{type(exc).__name__}",
                type="TemplateError",
                non_retryable=True,
            ) from exc

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

    def activity(self, name: str) -> Callable[..., Any]:
        """The activity `name` of the channel table, bound to these providers."""
        if name not in ACTIVITIES:
            raise KeyError(f"no channel performs activity {name!r}")

        async def run(request: OutboundRequest) -> ProviderReceipt:
            return await self.perform(request)

        run.__name__ = run.__qualname__ = name
        return activity.defn(name=name)(run)

    def all(self) -> list[Callable[..., Any]]:
        return [self.activity(name) for name in sorted(ACTIVITIES)]
