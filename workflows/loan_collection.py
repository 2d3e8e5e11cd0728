"""`LoanCollection`: the thin Temporal shell around the pure decider.

The main loop asks `decide` what to do, runs it (events now, an activity, or a
durable timer interruptible by messages), folds results in with `evolve`, and
flushes new events to the audit log before every wait.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    import workflows.actions as actions
    from schemas.activity_io import (
        AgreementReceipt,
        AgreementRequest,
        AuditBatch,
        OutboundRequest,
        ProviderReceipt,
    )
    from schemas.commands import (
        CeaseContact,
        DisputeOpen,
        DisputeResolve,
        HardStop,
        MigratePolicy,
        OperatorAction,
        Pause,
        Payment,
        PromiseToPay,
        RepaymentPlan,
        Resume,
        Settlement,
        ThirdPartyOptOut,
        VisitBooking,
        VisitReport,
        WriteOff,
    )
    from schemas.events import AgreementRecorded, AuditRecord, CaseOpened, Event
    from schemas.status import CaseStatus
    from workflows.decide import Decision, Effect, decide
    from workflows.effects import ACTIVITY_FOR_CHANNEL, event_for
    from workflows.evolve import evolve
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

# Patch ids (`workflow.patched`): each names a change to the commands the workflow
# issues, so runs recorded before it still replay. Never reuse or rename one.
PUBLISH_AFTER_AUDIT = "publish-search-attributes-after-audit"
WAKE_ON_EVENTS_DURING_FLUSH = "wake-on-events-during-flush"
# Not a command change by itself: it pins new cases to decision rules 2 (the
# compliance guard), while replaying a run recorded before it recreates rules 1.
COMPLIANCE_GUARD = "compliance-guard-v2"

AGREEMENT_KINDS: dict[str, Literal["promise", "plan", "settlement"]] = {
    "promise_made": "promise",
    "plan_agreed": "plan",
    "settlement_agreed": "settlement",
}


@workflow.defn(name="LoanCollection")
class LoanCollection:
    @workflow.init
    def __init__(self, params: LoanCollectionInput) -> None:
        self._params = params
        self._pending: list[AuditRecord] = []
        self._events_this_run = 0
        self._published: dict[str, str | int] = {}
        self._lock = asyncio.Lock()
        state = params.carried
        if state is None:
            # The guard applies to policies that name a compliance profile.
            guarded = params.policy.compliance is not None
            rules = 2 if guarded and workflow.patched(COMPLIANCE_GUARD) else 1
            opened = CaseOpened(
                at=workflow.now(),
                case=params.case,
                policy=params.policy,
                rules=rules,
                assignment=params.assignment,
            )
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
                # Under the case's lock: an operator action waits for a provider call in
                # flight, and one that got in first (a dispute, a write-off) is seen here.
                async with self._lock:
                    decision = decide(self._state, workflow.now())
                    if decision.effect is not None:
                        self._record(await self._perform(decision.effect))
                continue
            decided_at_seq = self._state.seq
            await self._flush()
            if self._state.is_closed:
                break
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._flush()
                workflow.continue_as_new(self._params.model_copy(update={"carried": self._state}))
            # A message that lands while the flush is in flight makes the decision stale:
            # wake at once instead of sleeping on it (a hold could otherwise wait forever).
            # Runs recorded before this fix slept on the state after the flush.
            seen = decided_at_seq if workflow.patched(WAKE_ON_EVENTS_DURING_FLUSH) else None
            await self._sleep(decision, seen)
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush()
        return case_status(self._state, workflow.now())

    # --- messages -------------------------------------------------------------------
    #
    # Operator actions are Updates: the validator checks the action against the case
    # (a rejection leaves no trace in history), the handler records it under the case's
    # lock so concurrent actions apply one after another, and the caller gets the new
    # status back. The payment/pause/resume signals stay for fire-and-forget callers.

    @workflow.signal
    def payment(self, payment: Payment) -> None:
        self._apply_quietly("payment", actions.payment, payment)

    @workflow.signal
    def pause(self, command: Pause) -> None:
        self._apply_quietly("pause", actions.pause, command)

    @workflow.signal
    def resume(self, command: Resume) -> None:
        self._apply_quietly("resume", actions.resume, command)

    @workflow.update
    async def record_payment(self, command: Payment) -> CaseStatus:
        return await self._act(actions.payment, command)

    @record_payment.validator
    def _check_payment(self, command: Payment) -> None:
        self._check(actions.payment, command)

    @workflow.update
    async def pause_case(self, command: Pause) -> CaseStatus:
        return await self._act(actions.pause, command)

    @pause_case.validator
    def _check_pause(self, command: Pause) -> None:
        self._check(actions.pause, command)

    @workflow.update
    async def resume_case(self, command: Resume) -> CaseStatus:
        return await self._act(actions.resume, command)

    @resume_case.validator
    def _check_resume(self, command: Resume) -> None:
        self._check(actions.resume, command)

    @workflow.update
    async def cease_contact(self, command: CeaseContact) -> CaseStatus:
        return await self._act(actions.cease_contact, command)

    @cease_contact.validator
    def _check_cease_contact(self, command: CeaseContact) -> None:
        self._check(actions.cease_contact, command)

    @workflow.update
    async def hard_stop(self, command: HardStop) -> CaseStatus:
        return await self._act(actions.hard_stop, command)

    @hard_stop.validator
    def _check_hard_stop(self, command: HardStop) -> None:
        self._check(actions.hard_stop, command)

    @workflow.update
    async def third_party_opt_out(self, command: ThirdPartyOptOut) -> CaseStatus:
        return await self._act(actions.third_party_opt_out, command)

    @third_party_opt_out.validator
    def _check_third_party_opt_out(self, command: ThirdPartyOptOut) -> None:
        self._check(actions.third_party_opt_out, command)

    @workflow.update
    async def migrate_policy(self, command: MigratePolicy) -> CaseStatus:
        return await self._act(actions.migrate_policy, command)

    @migrate_policy.validator
    def _check_migrate_policy(self, command: MigratePolicy) -> None:
        self._check(actions.migrate_policy, command)

    @workflow.update
    async def promise_to_pay(self, command: PromiseToPay) -> CaseStatus:
        return await self._act(actions.promise, command)

    @promise_to_pay.validator
    def _check_promise(self, command: PromiseToPay) -> None:
        self._check(actions.promise, command)

    @workflow.update
    async def agree_plan(self, command: RepaymentPlan) -> CaseStatus:
        return await self._act(actions.plan, command)

    @agree_plan.validator
    def _check_plan(self, command: RepaymentPlan) -> None:
        self._check(actions.plan, command)

    @workflow.update
    async def offer_settlement(self, command: Settlement) -> CaseStatus:
        return await self._act(actions.settlement, command)

    @offer_settlement.validator
    def _check_settlement(self, command: Settlement) -> None:
        self._check(actions.settlement, command)

    @workflow.update
    async def open_dispute(self, command: DisputeOpen) -> CaseStatus:
        return await self._act(actions.open_dispute, command)

    @open_dispute.validator
    def _check_open_dispute(self, command: DisputeOpen) -> None:
        self._check(actions.open_dispute, command)

    @workflow.update
    async def resolve_dispute(self, command: DisputeResolve) -> CaseStatus:
        return await self._act(actions.resolve_dispute, command)

    @resolve_dispute.validator
    def _check_resolve_dispute(self, command: DisputeResolve) -> None:
        self._check(actions.resolve_dispute, command)

    @workflow.update
    async def book_visit(self, command: VisitBooking) -> CaseStatus:
        return await self._act(actions.book_visit, command)

    @book_visit.validator
    def _check_book_visit(self, command: VisitBooking) -> None:
        self._check(actions.book_visit, command)

    @workflow.update
    async def report_visit(self, command: VisitReport) -> CaseStatus:
        return await self._act(actions.report_visit, command)

    @report_visit.validator
    def _check_report_visit(self, command: VisitReport) -> None:
        self._check(actions.report_visit, command)

    @workflow.update
    async def escalate(self, command: OperatorAction) -> CaseStatus:
        return await self._act(actions.escalate, command)

    @escalate.validator
    def _check_escalate(self, command: OperatorAction) -> None:
        self._check(actions.escalate, command)

    @workflow.update
    async def deescalate(self, command: OperatorAction) -> CaseStatus:
        return await self._act(actions.deescalate, command)

    @deescalate.validator
    def _check_deescalate(self, command: OperatorAction) -> None:
        self._check(actions.deescalate, command)

    @workflow.update
    async def write_off(self, command: WriteOff) -> CaseStatus:
        return await self._act(actions.write_off, command)

    @write_off.validator
    def _check_write_off(self, command: WriteOff) -> None:
        self._check(actions.write_off, command)

    @workflow.update
    async def close_case(self, command: OperatorAction) -> CaseStatus:
        return await self._act(actions.close, command)

    @close_case.validator
    def _check_close(self, command: OperatorAction) -> None:
        self._check(actions.close, command)

    def _check(self, rule: actions.Rule, command: Any) -> None:
        """Validator: reject (no trace in history) unless the rule accepts the command."""
        rule(self._state, command, workflow.now())

    async def _act(self, rule: actions.Rule, command: Any) -> CaseStatus:
        async with self._lock:
            try:
                events = rule(self._state, command, workflow.now())
            except actions.Rejected as exc:
                # The case moved between validation and handling (another action won).
                raise ApplicationError(str(exc), type="Rejected", non_retryable=True) from exc
            for event in events:
                self._record(event)
                if event.type in AGREEMENT_KINDS:
                    await self._record_agreement(event, self._state.seq)
            return case_status(self._state, workflow.now())

    def _apply_quietly(self, name: str, rule: actions.Rule, command: Any) -> None:
        """Signals cannot answer: a rejected one is logged and leaves the case as it was."""
        try:
            events = rule(self._state, command, workflow.now())
        except actions.Rejected as exc:
            self._log(f"{name} signal ignored: {exc}")
            return
        for event in events:
            self._record(event)

    async def _record_agreement(self, agreed: Event, seq: int) -> None:
        """Render, send and store the agreement document; the audit event references it."""
        state = self._state
        borrower, loan = state.case.borrower, state.case.loan
        kind = AGREEMENT_KINDS[agreed.type]
        terms = agreed.model_dump(mode="json")
        variables = {
            "name": borrower.name,
            "loan_id": loan.id,
            "currency": loan.currency,
            "balance": str(state.balance.total),
            "amount": str(terms.get("amount", state.balance.total)),
            "pay_by": str(terms.get("pay_by", "")),
            "waiver": str(terms.get("waiver", "0")),
            "operator": str(terms.get("operator", "")),
        }
        schedule = [(str(i["due"]), str(i["amount"])) for i in terms.get("instalments", [])]
        receipt: AgreementReceipt = await workflow.execute_activity(
            "record_agreement",
            AgreementRequest(
                case_id=state.case_id,
                idempotency_key=f"{state.case_id}:agreement:{seq}",
                kind=kind,
                agreement_seq=seq,
                recipient=borrower.phones[state.phone() or 0],
                language=borrower.language,
                variables=variables,
                schedule=schedule,
            ),
            result_type=AgreementReceipt,
            start_to_close_timeout=PROVIDER_TIMEOUT,
            retry_policy=PROVIDER_RETRY,
            summary=f"{kind} agreement",
        )
        self._record(
            AgreementRecorded(
                at=workflow.now(),
                kind=kind,
                agreement_seq=seq,
                document_id=receipt.document_id,
                sha256=receipt.sha256,
                provider_ref=receipt.provider_ref,
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
        phone = borrower.phones[effect.phone_index]
        recipient = phone if effect.channel in ("sms", "call") else borrower.id
        variables = {
            "name": borrower.name,
            "loan_id": loan.id,
            "amount": str(state.balance.total),
            "currency": loan.currency,
            "days_past_due": str(state.days_past_due(workflow.now())),
        }
        if effect.third_party is not None:
            # Nothing about the debt reaches a third party: the borrower's name only.
            recipient = borrower.emergency_contacts[effect.third_party].phone
            variables = {"borrower_name": borrower.name}
        request = OutboundRequest(
            case_id=state.case_id,
            idempotency_key=effect.idempotency_key,
            channel=effect.channel,
            stage=effect.stage,
            recipient=recipient,
            language=borrower.language,
            template=effect.template,
            variables=variables,
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
        """Write pending events to the audit log, then publish the search attributes.

        Publishing second means `dunning cases` never lists a stage or state the audit
        log does not hold yet. Cases started before this order was introduced published
        first; `workflow.patched` keeps their histories replaying (see "Determinism" in
        docs/architecture.md).
        """
        after = workflow.patched(PUBLISH_AFTER_AUDIT)
        if not after:
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
        if after:
            self._publish()

    def _publish(self) -> None:
        values = attributes_for(self._state, self._state.days_past_due(workflow.now()))
        if values != self._published:
            workflow.upsert_search_attributes(updates(values))
            self._published = values

    async def _sleep(self, decision: Decision, seen: int | None = None) -> None:
        """Wait until the decision's time, or until an event after sequence `seen`."""
        if seen is None:
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
