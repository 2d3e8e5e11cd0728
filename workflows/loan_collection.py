"""`LoanCollection`: the thin Temporal shell around the pure decider.

The main loop asks `decide` what to do, runs it (events now, an activity, or a
durable timer interruptible by messages), folds results in with `evolve`, and
flushes new events to the audit log before every wait.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from schemas.activity_io import AuditBatch, OutboundRequest, ProviderReceipt
    from schemas.commands import Pause, Payment, Resume
    from schemas.events import (
        AuditRecord,
        CaseOpened,
        CollectionPaused,
        CollectionResumed,
        Event,
        PaymentReceived,
    )
    from schemas.status import CaseStatus
    from workflows.decide import Decision, Effect, decide
    from workflows.effects import ACTIVITY_FOR_CHANNEL, event_for
    from workflows.evolve import allocate, evolve
    from workflows.inputs import LoanCollectionInput
    from workflows.search import attributes_for, updates
    from workflows.state import CaseState
    from workflows.status_view import case_status

# Providers and the audit store are retried until they answer: a case never skips a
# step because a dependency was down; idempotency keys make the retries harmless.
# The timeouts are short because they are also how long an attempt that died with its
# worker (SIGKILL, lost host) waits before another worker takes it over.
PROVIDER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
)
PROVIDER_TIMEOUT = timedelta(seconds=10)
AUDIT_TIMEOUT = timedelta(seconds=10)


@workflow.defn(name="LoanCollection")
class LoanCollection:
    @workflow.init
    def __init__(self, params: LoanCollectionInput) -> None:
        self._params = params
        self._pending: list[AuditRecord] = []
        self._events_this_run = 0
        self._published: dict[str, str | int] = {}
        state = params.carried
        if state is None:
            opened = CaseOpened(at=workflow.now(), case=params.case, policy=params.policy)
            state = evolve(None, opened)
            self._pending.append(AuditRecord(case_id=state.case_id, seq=1, event=opened))
        self._state: CaseState = state

    @workflow.run
    async def run(self, params: LoanCollectionInput) -> CaseStatus:
        while True:
            now = workflow.now()
            decision = decide(self._state, now)
            if decision.events:
                for event in decision.events:
                    self._record(event)
                continue
            if decision.effect is not None:
                self._record(await self._perform(decision.effect))
                continue
            await self._flush()
            if self._state.is_closed:
                break
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._flush()
                workflow.continue_as_new(self._params.model_copy(update={"carried": self._state}))
            await self._sleep(decision)
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush()
        return case_status(self._state, workflow.now())

    # --- messages -------------------------------------------------------------------

    @workflow.signal
    def payment(self, payment: Payment) -> None:
        state = self._state
        if state.is_closed:
            self._log("payment ignored: case closed", reference=payment.reference)
            return
        if payment.reference in state.payment_refs:
            self._log("payment ignored: duplicate reference", reference=payment.reference)
            return
        split = allocate(state.balance, payment.amount)
        self._record(
            PaymentReceived(
                at=workflow.now(),
                actor=f"service:{payment.source}",
                amount=payment.amount,
                reference=payment.reference,
                applied_penalty=split["penalty"],
                applied_fees=split["fees"],
                applied_interest=split["interest"],
                applied_principal=split["principal"],
                overpaid=split["overpaid"],
                balance_after=state.balance.total - (payment.amount - split["overpaid"]),
            )
        )

    @workflow.signal
    def pause(self, command: Pause) -> None:
        if self._state.is_closed or self._state.paused is not None:
            self._log("pause ignored: case closed or already paused")
            return
        self._record(
            CollectionPaused(
                at=workflow.now(),
                actor=f"operator:{command.operator}",
                reason=command.reason,
                operator=command.operator,
            )
        )

    @workflow.signal
    def resume(self, command: Resume) -> None:
        paused = self._state.paused
        if self._state.is_closed or paused is None:
            self._log("resume ignored: case not paused")
            return
        now = workflow.now()
        self._record(
            CollectionResumed(
                at=now,
                actor=f"operator:{command.operator}",
                reason=command.reason,
                operator=command.operator,
                paused_for=now - paused.since,
            )
        )

    @workflow.query
    def status(self) -> CaseStatus:
        return case_status(self._state, workflow.now())

    # --- internals ------------------------------------------------------------------

    def _record(self, event: Event) -> None:
        self._state = evolve(self._state, event)
        self._events_this_run += 1
        self._pending.append(
            AuditRecord(case_id=self._state.case_id, seq=self._state.seq, event=event)
        )
        self._log(event.type, seq=self._state.seq)

    async def _perform(self, effect: Effect) -> Event:
        state = self._state
        borrower = state.case.borrower
        loan = state.case.loan
        request = OutboundRequest(
            case_id=state.case_id,
            idempotency_key=effect.idempotency_key,
            channel=effect.channel,
            stage=effect.stage,
            recipient=borrower.phones[0] if effect.channel in ("sms", "call") else borrower.id,
            language=borrower.language,
            template=effect.template,
            variables={
                "name": borrower.name,
                "loan_id": loan.id,
                "amount": str(state.balance.total),
                "currency": loan.currency,
                "days_past_due": str(state.days_past_due(workflow.now())),
            },
        )
        receipt: ProviderReceipt = await workflow.execute_activity(
            ACTIVITY_FOR_CHANNEL[effect.channel],
            request,
            result_type=ProviderReceipt,
            start_to_close_timeout=PROVIDER_TIMEOUT,
            retry_policy=PROVIDER_RETRY,
            summary=f"{effect.channel} in {effect.stage}",
        )
        return event_for(effect, receipt, workflow.now())

    async def _flush(self) -> None:
        """Write pending events to the audit log and publish the search attributes."""
        self._publish()
        while self._pending:
            batch, self._pending = self._pending, []
            info = workflow.info()
            await workflow.execute_activity(
                "append_audit",
                AuditBatch(workflow_id=info.workflow_id, run_id=info.run_id, records=batch),
                start_to_close_timeout=AUDIT_TIMEOUT,
                retry_policy=PROVIDER_RETRY,
                summary=f"audit {batch[0].seq}..{batch[-1].seq}",
            )

    def _publish(self) -> None:
        values = attributes_for(self._state, self._state.days_past_due(workflow.now()))
        if values != self._published:
            workflow.upsert_search_attributes(updates(values))
            self._published = values

    async def _sleep(self, decision: Decision) -> None:
        seen = self._state.seq
        timeout = None
        if decision.wake_at is not None:
            timeout = max(decision.wake_at - workflow.now(), timedelta(milliseconds=1))
        try:
            await workflow.wait_condition(
                lambda: self._state.seq != seen,
                timeout=timeout,
                timeout_summary=decision.next_what,
            )
        except TimeoutError:
            pass

    def _should_continue_as_new(self) -> bool:
        limit = self._params.max_events_per_run
        if limit is not None and self._events_this_run >= limit:
            return True
        return workflow.info().is_continue_as_new_suggested()

    def _log(self, message: str, **fields: object) -> None:
        stage = self._state.stage
        workflow.logger.info(
            message,
            extra={
                "case_id": self._state.case_id,
                "stage": stage.name if stage is not None else None,
                **fields,
            },
        )
