"""Outbound activities: one per channel's activity in `schemas/channels.py`, made from
the table.

Each renders the channel's template (if it has one) as the channel says (`rendering`:
the text itself, or a document made of it), hands the attempt to its partner's
provider and heartbeats while the provider answers, so a withdrawal (the workflow
cancelling the attempt) reaches it. A request the provider is already handling is let
finish: if the provider accepts it, that is the truth the case records; if not, the
attempt ends as withdrawn. A channel a person performs (`person`: a call task) waits for
the person, so a withdrawal stops the wait itself (the task leaves the queue unless it
was completed meanwhile: `activities/providers/call_queue.py`). A paced partner's call
first waits for its turn (`rates`: activities/pacing.py), heartbeating; a withdrawal
then ends the wait and nothing is sent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.letters import render_pdf
from activities.pacing import Pacer
from activities.providers.base import NOTHING, Content, Provider
from activities.templates import TemplateError, Templates
from schemas.activity_io import (
    AUDIT_REFUSED,
    AuditAppended,
    AuditBatch,
    OutboundRequest,
    ProviderReceipt,
)
from schemas.channels import ACTIVITIES, CHANNELS, Partner, Rendering

log = structlog.get_logger("dunning.activities")

# Heartbeat this often while a provider answers (the workflow's heartbeat timeout is
# 10 s; the SDK throttles what it sends).
HEARTBEAT_EVERY_S = 1.0
T = TypeVar("T")
# Appends a batch to the audit log, safe to repeat (`AuditActivities.append`).
AppendAudit = Callable[[AuditBatch], Awaitable[AuditAppended]]


def _as_text(text: str, request: OutboundRequest) -> Content:
    return Content(text=text)


# How a rendered template becomes what the partner is handed, per `Rendering`.
RENDERERS: dict[Rendering, Callable[[str, OutboundRequest], Content]] = {
    "text": _as_text,
    "pdf": render_pdf,
}


async def _beating(task: asyncio.Future[T]) -> T:
    """`task`'s result, heartbeating every HEARTBEAT_EVERY_S until it is done."""
    while True:
        done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_EVERY_S)
        if done:
            return task.result()
        activity.heartbeat()


async def heartbeating(wait: Awaitable[None]) -> None:
    """Await `wait` (nothing sent yet), heartbeating so a withdrawal reaches it; on
    cancellation, stop waiting and end as cancelled."""
    task = asyncio.ensure_future(wait)
    try:
        return await _beating(task)
    except asyncio.CancelledError:
        task.cancel()
        raise


async def _take_turn(pacer: Pacer) -> None:
    """Wait for the partner's turn, heartbeating; a turn given just as the attempt is
    withdrawn is handed on."""
    turn = asyncio.ensure_future(pacer.turn())
    try:
        await heartbeating(turn)
    except BaseException:
        if turn.done() and not turn.cancelled() and turn.exception() is None:
            pacer.passed()
        raise


def time_left(info: activity.Info, since: float) -> tuple[float | None, float | None]:
    """Seconds before the server ends this try (its start-to-close timeout) and before
    it ends the attempt (its deadline: the schedule-to-close), None where unbounded.
    `since`: the monotonic clock when the activity began. Each is counted twice and the
    smaller kept: from the server's start time by this host's clock (which counts a
    stall before the activity ran), and from `since` (which a test server's skipped
    clock cannot fool)."""
    elapsed = max(time.monotonic() - since, (datetime.now(UTC) - info.started_time).total_seconds())
    try_left = deadline_left = None
    if info.start_to_close_timeout:
        try_left = info.start_to_close_timeout.total_seconds() - elapsed
    if info.schedule_to_close_timeout:
        ends = info.scheduled_time + info.schedule_to_close_timeout
        deadline_left = (ends - info.started_time).total_seconds() - elapsed
    return try_left, deadline_left


async def delivering(call: Awaitable[ProviderReceipt], waits: bool = False) -> ProviderReceipt:
    """Await a provider call, heartbeating; on cancellation, let a call in flight end
    and return its receipt if the provider accepted, else end as cancelled. `waits`: the
    call waits for a person; cancellation is passed to it (it answers with a receipt if
    the person finished first)."""
    task = asyncio.ensure_future(call)
    try:
        return await _beating(task)
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

    def __init__(
        self,
        providers: Mapping[Partner, Provider],
        templates: Templates,
        rates: Mapping[Partner, float] | None = None,
        append_audit: AppendAudit | None = None,
    ) -> None:
        missing = {spec.partner for spec in CHANNELS.values()} - set(providers)
        if missing:
            raise ValueError(f"no provider for partner(s) {', '.join(sorted(missing))}")
        self._providers = dict(providers)
        self._templates = templates
        # One pacer per paced partner, shared by every activity of this process that
        # calls it (activities/pacing.py).
        self._pacers = {partner: Pacer(rate) for partner, rate in (rates or {}).items()}
        self._append_audit = append_audit

    async def perform(self, request: OutboundRequest) -> ProviderReceipt:
        """Append what the attempt carries, render, deliver, log: what every outbound
        activity does. The carried events are in the audit log before the provider is
        asked (nothing is sent that the log does not hold); the provider is handed the
        request without them."""
        appended = await self._append_carried(request.audit)
        request = request.model_copy(update={"audit": None})
        spec = CHANNELS[request.channel]
        content = self._content(request)
        provider = self._providers[spec.partner]
        pacer = self._pacers.get(spec.partner)
        if pacer is not None:
            since = time.monotonic()
            await _take_turn(pacer)
            try:
                self._check_time_left(provider, since)
            except BaseException:
                pacer.passed()
                raise
            pacer.began()
        receipt = await delivering(provider.deliver(request, content), waits=spec.person)
        if appended is not None:
            receipt = receipt.model_copy(update={"audit": appended})
        return self._logged(request, receipt)

    async def _append_carried(self, batch: AuditBatch | None) -> AuditAppended | None:
        if batch is None or not batch.records:
            return None
        if self._append_audit is None:
            raise ApplicationError(
                "this worker's outbound activities cannot append to the audit log: "
                "the attempt's events were not written and nothing was sent",
                type=AUDIT_REFUSED,
                non_retryable=True,
            )
        return await self._append_audit(batch)

    @staticmethod
    def _check_time_left(provider: Provider, since: float) -> None:
        """After waiting for its turn, a call is begun only if the provider can answer
        before the server ends the try: a try the server timed out meanwhile would be
        delivered yet recorded as expired, or sent again by the next try. Too little
        left before the deadline: a failure whose retry is past it, so the server gives
        up (the case records `contact_expired` and decides it again at the next
        opening); before the try's own timeout: a failure retried as any other."""
        try_left, deadline_left = time_left(activity.info(), since)
        needed = provider.call_timeout_s
        if deadline_left is not None and deadline_left < needed:
            raise ApplicationError(
                f"{deadline_left:.1f} s left before the attempt's deadline after waiting "
                f"for the partner's rate, under the provider's {needed:g} s: not sent",
                type="NoTimeForCall",
                next_retry_delay=timedelta(seconds=max(deadline_left, 0.0) + 1.0),
            )
        if try_left is not None and try_left < needed:
            raise ApplicationError(
                f"{try_left:.1f} s left of this try after waiting for the partner's "
                f"rate, under the provider's {needed:g} s: not sent, tried again",
                type="NoTimeForCall",
            )

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
