"""A worker's runtime: the sandbox, the providers, the activities, `LoanCollection`.

`worker.py` and `dunning worker` run `serve`; the demo and tests run a worker in their
own process with `running_worker`, replayers use `workflow_runner`. Scale out by
running more workers on the same task queue; Temporal spreads the cases.

A worker is a group: the cases' worker on the task queue (workflows, audit appends,
agreements) and one worker per partner of the channel table on that partner's queue
(`schemas.channels.partner_queue`), holding the outbound activities with the
partner's limits from the settings, so a throttled SMS gateway paces only SMS.
"""

from __future__ import annotations

import asyncio
import compileall
import dataclasses
import functools
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg
import phonenumbers
import structlog
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows
from activities.agreements import AgreementActivities
from activities.audit import AuditActivities
from activities.outbound import OutboundActivities
from activities.pacing import paced_rate, paced_slots
from activities.providers.base import Provider
from activities.providers.call_queue import CallQueueProvider
from activities.providers.sandbox import SandboxProvider
from activities.providers.smtp import SmtpConfig, SmtpProvider
from activities.providers.webhook import WebhookProvider, WebhookUrls, url_setting
from dunning import templates
from dunning.db import checkpoints
from dunning.settings import Settings, get_settings
from dunning.temporal_client import connect
from schemas.channels import CHANNELS, PARTNERS, Partner, partner_queue
from schemas.compliance import PROFILES
from workflows.compliance import preload_holidays
from workflows.loan_collection import LoanCollection

log = structlog.get_logger("dunning.worker")


# Libraries the schemas call while validating a workflow's input inside the sandbox.
# They load data lazily (phonenumbers' per-region metadata behind a threading lock,
# babel's locale files): re-imported per sandbox, two workflows can block each other
# on that lock and trip the deadlock detector. Passed through, they load once.
PASSTHROUGH = (
    "phonenumbers",
    "babel",
    "pydantic",
    "pydantic_core",
    "holidays",
    "email_validator",
    "idna",
)


@functools.cache
def compile_workflow_modules() -> bool:
    """Write the bytecode of the `workflows` package where Python looks for it, if it is
    missing or stale. The sandbox imports the workflow's module afresh for every case it
    instantiates (a case it runs or replays without its cache: every timer of a case
    evicted from the cache, the whole morning burst); without bytecode each of them
    compiles the source again, about a quarter of the instance's CPU (docs/benchmarks.md,
    "Sandbox start"). An install compiles it once (pip does), but not an editable one
    with PYTHONDONTWRITEBYTECODE set (our Dockerfile, many CI images). False, logged, if
    the folder is read-only: the worker runs, each instance compiles."""
    folder = Path(workflows.__file__).parent
    ok = bool(compileall.compile_dir(folder, maxlevels=0, quiet=2))
    if not ok:
        log.warning("workflow bytecode not written: the sandbox compiles it per case", path=folder)
    return ok


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox every worker and replayer uses. `holidays` names its holidays through
    gettext, which calls `locale.normalize` (a pure table lookup) on a fixed language."""
    compile_workflow_modules()
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    return SandboxedWorkflowRunner(
        restrictions=dataclasses.replace(
            restrictions,
            invalid_module_members=restrictions.invalid_module_members.with_child_unrestricted(
                "locale", "normalize"
            ),
        )
    )


def preload_reference_data() -> None:
    """Load phone metadata and the profiles' public holidays up front, outside any
    workflow, so no workflow task pays for them."""
    phonenumbers.PhoneMetadata.load_all()
    countries = tuple(sorted({p.holidays for p in PROFILES.values() if p.holidays}))
    preload_holidays(countries, range(2020, 2061))


class ProviderSettingsError(ValueError):
    """`provider = "webhook"` without a URL per required partner or without the secret."""


# The partners a webhook deployment must have a URL for before the worker starts (the
# ones every shipped policy uses); another partner's URL is optional: while it is
# unset, that partner's attempts are refused for good, naming the setting.
REQUIRED_PARTNERS: frozenset[Partner] = frozenset({"sms", "dialer", "field", "legal"})


def build_provider(settings: Settings, pool: asyncpg.Pool) -> SandboxProvider | WebhookProvider:
    if settings.provider == "sandbox":
        return SandboxProvider(pool)
    urls: dict[Partner, str | None] = {
        partner: getattr(settings, url_setting(partner), None) for partner in sorted(PARTNERS)
    }
    missing = [p for p in sorted(REQUIRED_PARTNERS) if not urls.get(p)]
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else ""
    if missing or not secret:
        needed = [f"{name} url" for name in missing] + ([] if secret else ["webhook_secret"])
        raise ProviderSettingsError(f"provider webhook needs: {', '.join(needed)}")
    return WebhookProvider(
        WebhookUrls({partner: str(url) for partner, url in urls.items() if url}),
        secret.encode("utf-8"),
        timeout_s=settings.webhook_timeout_s,
    )


def providers_by_partner(
    settings: Settings, provider: Provider, pool: asyncpg.Pool
) -> dict[Partner, Provider]:
    """The provider of each partner of the channel table: `provider` for all but the
    e-mail, which goes over SMTP when a server is set (or the provider is not the
    sandbox: then an unset server refuses e-mails, naming the setting), and the
    collectors, who are people: their team's queue in PostgreSQL."""
    providers: dict[Partner, Provider] = {partner: provider for partner in PARTNERS}
    providers["collectors"] = CallQueueProvider(pool)
    if settings.smtp_host or not isinstance(provider, SandboxProvider):
        providers["email"] = SmtpProvider(smtp_config(settings), pool)
    return providers


def smtp_config(settings: Settings) -> SmtpConfig:
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    return SmtpConfig(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        security=settings.smtp_security,
        username=settings.smtp_username,
        password=password,
        unsubscribe=settings.smtp_unsubscribe,
        timeout_s=settings.smtp_timeout_s,
    )


class WorkerGroup:
    """The cases' worker and the partners' workers, started and stopped together.
    `async with` gives the cases' worker."""

    def __init__(self, cases: Worker, partners: Sequence[Worker]) -> None:
        self.cases = cases
        self.partners = tuple(partners)
        self._stack: AsyncExitStack | None = None

    async def __aenter__(self) -> Worker:
        async with AsyncExitStack() as stack:
            for worker in (*self.partners, self.cases):
                await stack.enter_async_context(worker)
            self._stack = stack.pop_all()
        return self.cases

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.__aexit__(exc_type, exc, traceback)


def partner_worker(
    client: Client,
    task_queue: str,
    partner: Partner,
    activities: Sequence[Callable[..., Any]],
    settings: Settings,
) -> Worker:
    """The worker of `partner`'s queue. With a rate (`partner_rates`), the server
    dispatches at most that many of the queue's tasks per second, counted across every
    worker polling it; the worker also keeps to it itself, with one poll at a time, so
    the server's token bucket cannot release its burst at once, at the pacer's rate (the
    outbound activities' pacer spaces the calls themselves: activities/pacing.py), so
    the attempts wait in the server's queue, not the worker's (docs/providers.md,
    Pacing); it holds at most `paced_slots(rate)` attempts at once, three seconds of
    its rate, so that the backlog waits there too. With lines (`partner_lines`), this
    worker carries at most that many attempts at once."""
    rate = settings.partner_rates.get(partner)
    slots = paced_slots(rate) if rate else settings.activity_slots
    return Worker(
        client,
        task_queue=partner_queue(task_queue, partner),
        activities=list(activities),
        max_concurrent_activities=settings.partner_lines.get(partner, slots),
        max_task_queue_activities_per_second=rate,
        max_activities_per_second=paced_rate(rate) if rate else None,
        activity_task_poller_behavior=PollerBehaviorSimpleMaximum(1 if rate else 5),
    )


def build_worker(
    client: Client,
    pool: asyncpg.Pool,
    task_queue: str,
    settings: Settings | None = None,
    provider: SandboxProvider | WebhookProvider | None = None,
) -> WorkerGroup:
    settings = settings or get_settings()
    preload_reference_data()
    provider = provider or build_provider(settings, pool)
    messages = templates.current()
    # Every append is anchored by a signed checkpoint: no key, no worker.
    audit = AuditActivities(pool, checkpoints.signer(settings))
    outbound = OutboundActivities(
        providers_by_partner(settings, provider, pool),
        messages,
        rates=settings.partner_rates,
        append_audit=audit.append,
    )
    agreements = AgreementActivities(pool, sms_gateway=provider, templates=messages)
    cases = Worker(
        client,
        task_queue=task_queue,
        workflows=[LoanCollection],
        workflow_runner=workflow_runner(),
        activities=[
            # Attempts scheduled on the cases' queue before the partners' queues existed
            # (and the recorded rules 1-2 path) still run here, unpaced.
            *outbound.all(),
            audit.append_audit,
            agreements.store_agreement,
            agreements.record_agreement,
        ],
        max_concurrent_workflow_tasks=settings.workflow_task_slots,
        max_concurrent_activities=settings.activity_slots,
    )
    partners = [
        partner_worker(
            client,
            task_queue,
            partner,
            [
                outbound.activity(name)
                for name in sorted({s.activity for s in CHANNELS.values() if s.partner == partner})
            ],
            settings,
        )
        for partner in sorted(PARTNERS)
    ]
    return WorkerGroup(cases, partners)


@asynccontextmanager
async def running_worker(settings: Settings, client: Client | None = None) -> AsyncIterator[Worker]:
    """A worker running in this process until the block exits (used by the demo and tests)."""
    client = client or await connect(settings)
    async with asyncpg.create_pool(settings.database_url, min_size=1, max_size=10) as pool:
        provider = build_provider(settings, pool)
        try:
            async with build_worker(
                client, pool, settings.task_queue, settings, provider
            ) as worker:
                yield worker
        finally:
            if isinstance(provider, WebhookProvider):
                await provider.aclose()


async def serve(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with running_worker(settings) as worker:
        # The identity Temporal records for this process's tasks in every history
        # (the SDK's `pid@host`): which of several workers ran what.
        log.info(
            "worker running",
            temporal=settings.temporal_address,
            namespace=settings.temporal_namespace,
            task_queue=settings.task_queue,
            identity=worker.client.identity,
        )
        await stop.wait()
    log.info("worker stopped")
