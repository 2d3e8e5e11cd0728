"""`LoanCollection`: the thin Temporal shell around the pure decider.

The main loop asks `decide` what to do, runs it (events now, an attempt through a
provider, or a durable timer interruptible by messages), folds results in with
`evolve`, and flushes new events to the audit log before every wait.

Since decision rules 3 a provider attempt runs beside the case, not under its lock:
operator actions are answered at once whatever a provider is doing, and an attempt
the case no longer allows is withdrawn (see "The delivery seam" in
docs/architecture.md). Cases on older rules replay as recorded and move to rules 3,
recorded, the first time a worker runs them live.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
)
from temporalio.exceptions import TimeoutError as ActivityTimeout

with workflow.unsafe.imports_passed_through():
    import workflows.actions as actions
    import workflows.delivery as delivery
    from schemas.activity_io import (
        APPEND_AUDIT,
        AUDIT_FAILURES,
        AgreementReceipt,
        AgreementRequest,
        AuditBatch,
        ProviderReceipt,
    )
    from schemas.call_tasks import ClaimAnswer, ClaimCheck
    from schemas.channels import CHANNELS, partner_queue
    from schemas.commands import (
        Approve,
        CeaseContact,
        Close,
        Decline,
        Deescalate,
        DisputeOpen,
        DisputeResolve,
        Escalate,
        HardStop,
        MigratePolicy,
        Note,
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
    from schemas.events import (
        AgreementRecorded,
        AuditRecord,
        CaseOpened,
        ContactExpired,
        ContactFailed,
        ContactWithdrawn,
        Event,
        RulesUpgraded,
    )
    from schemas.refusals import Refusal
    from schemas.status import ActionResult, CaseStatus, InFlightView
    from workflows.compliance import Block
    from workflows.decide import Decision, Effect, decide
    from workflows.effects import event_for, outbound_request
    from workflows.evolve import evolve
    from workflows.inputs import LoanCollectionInput
    from workflows.search import attributes_for, updates
    from workflows.state import CURRENT_RULES, CaseState
    from workflows.status_view import case_status, event_lines

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
# An attempt heartbeats while its provider answers, so a withdrawal reaches it.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
AUDIT_TIMEOUT = timedelta(seconds=10)
# Storing an agreement's document is part of answering the operator: bounded.
AGREEMENT_STORE_DEADLINE = timedelta(seconds=30)
# While the audit store refuses the case's events, try again this often.
AUDIT_RETRY = timedelta(minutes=10)

# Patch ids (`workflow.patched`): each names a change to the commands the workflow
# issues, so runs recorded before it still replay. Never reuse or rename one.
PUBLISH_AFTER_AUDIT = "publish-search-attributes-after-audit"
WAKE_ON_EVENTS_DURING_FLUSH = "wake-on-events-during-flush"
# Not a command change by itself: it pins new cases to decision rules 2 (the
# compliance guard), while replaying a run recorded before it recreates rules 1.
COMPLIANCE_GUARD = "compliance-guard-v2"
# Rules 3: the delivery seam, four eyes, confirmations through the guard, coalesced
# bursts, per-number caps, amounts in minor units. New cases open on it; a case on
# older rules moves to it with a `rules_upgraded` event the first time it runs live,
# under the patch id `decision-rules-3@<seq>` of the point where it did (see
# "Determinism" in docs/architecture.md for why the id carries the sequence number).
RULES_3 = "decision-rules-3"
# An attempt carries the events recorded since the last append, and its activity
# appends them before it asks the provider, where runs recorded before it flushed them
# in an append of their own first (one activity task and workflow task fewer per
# attempt: "The delivery seam" in docs/architecture.md).
CARRY_AUDIT = "audit-carried-by-the-attempt"

AGREEMENT_KINDS: dict[str, Literal["promise", "plan", "settlement"]] = {
    "promise_made": "promise",
    "plan_agreed": "plan",
    "settlement_agreed": "settlement",
}


@dataclass
class _InFlight:
    effect: Effect
    since: datetime
    deadline: datetime | None
    withdrawn: Block | None = None
    carried_upto: int = 0  # the last seq the attempt carries to the audit log


@workflow.defn(name="LoanCollection")
class LoanCollection:
    @workflow.init
    def __init__(self, params: LoanCollectionInput) -> None:
        self._params = params
        self._pending: list[AuditRecord] = []
        self._events_this_run = 0
        self._published: dict[str, str | int] = {}
        self._lock = asyncio.Lock()
        self._inbox: list[tuple[str, BaseModel]] = []
        self._in_flight: _InFlight | None = None
        self._audit_blocked: str | None = None
        state = params.carried
        if state is None:
            # The guard applies to policies that name a compliance profile.
            guarded = params.policy.compliance is not None
            if guarded and workflow.patched(RULES_3):
                rules = CURRENT_RULES
            elif guarded and workflow.patched(COMPLIANCE_GUARD):
                rules = 2
            else:
                rules = 1
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
            if self._audit_blocked is not None:
                await self._retry_audit()
                continue
            self._upgrade()
            seam = self._state.rules >= CURRENT_RULES
            decision = decide(self._state, workflow.now())
            if decision.events:
                decided_at_seq = self._state.seq
                async with self._recording(seam):
                    # An action that held the lock (storing a document) may have moved
                    # the case meanwhile: what was decided before it is stale, decide again.
                    if self._state.seq == decided_at_seq:
                        for event in decision.events:
                            self._record(event)
                continue
            if decision.effect is not None:
                if not seam:
                    await self._perform_holding_the_lock()
                elif self._pending and not workflow.patched(CARRY_AUDIT):
                    # Nothing is sent that the log cannot hold: what led to the contact
                    # is in the audit log before the provider is asked (since
                    # CARRY_AUDIT the attempt carries it and its activity appends it).
                    await self._flush()
                else:
                    await self._attempt(decision.effect)
                continue
            decided_at_seq = self._state.seq
            await self._flush()
            if self._audit_blocked is not None:
                continue
            if self._state.is_closed:
                break
            if self._should_continue_as_new():
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._flush_all()
                workflow.continue_as_new(self._params.model_copy(update={"carried": self._state}))
            # A message that lands while the flush is in flight makes the decision stale:
            # wake at once instead of sleeping on it (a hold could otherwise wait forever).
            # Runs recorded before this fix slept on the state after the flush.
            seen = decided_at_seq if workflow.patched(WAKE_ON_EVENTS_DURING_FLUSH) else None
            await self._sleep(decision, seen)
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._flush_all()
        return self._status()

    # --- messages -------------------------------------------------------------------
    #
    # Operator actions are Updates: the validator checks the action against the case
    # (a rejection leaves no trace in history), the handler records it under the case's
    # lock so concurrent actions apply one after another, and the caller gets what was
    # recorded and the new status back. Each update runs the one rule registered for
    # its command type (`workflows.actions.RULES`); `dunning/actions_table.py` lists
    # them for the CLI, the API and the console. The payment/pause/resume signals stay
    # for fire-and-forget callers.

    @workflow.signal
    def payment(self, payment: Payment) -> None:
        self._apply_quietly("payment", payment)

    @workflow.signal
    def pause(self, command: Pause) -> None:
        self._apply_quietly("pause", command)

    @workflow.signal
    def resume(self, command: Resume) -> None:
        self._apply_quietly("resume", command)

    @workflow.update
    async def record_payment(self, command: Payment) -> ActionResult:
        return await self._act(command)

    @record_payment.validator
    def _check_payment(self, command: Payment) -> None:
        self._check(command)

    @workflow.update
    async def pause_case(self, command: Pause) -> ActionResult:
        return await self._act(command)

    @pause_case.validator
    def _check_pause(self, command: Pause) -> None:
        self._check(command)

    @workflow.update
    async def resume_case(self, command: Resume) -> ActionResult:
        return await self._act(command)

    @resume_case.validator
    def _check_resume(self, command: Resume) -> None:
        self._check(command)

    @workflow.update
    async def cease_contact(self, command: CeaseContact) -> ActionResult:
        return await self._act(command)

    @cease_contact.validator
    def _check_cease_contact(self, command: CeaseContact) -> None:
        self._check(command)

    @workflow.update
    async def hard_stop(self, command: HardStop) -> ActionResult:
        return await self._act(command)

    @hard_stop.validator
    def _check_hard_stop(self, command: HardStop) -> None:
        self._check(command)

    @workflow.update
    async def third_party_opt_out(self, command: ThirdPartyOptOut) -> ActionResult:
        return await self._act(command)

    @third_party_opt_out.validator
    def _check_third_party_opt_out(self, command: ThirdPartyOptOut) -> None:
        self._check(command)

    @workflow.update
    async def migrate_policy(self, command: MigratePolicy) -> ActionResult:
        return await self._act(command)

    @migrate_policy.validator
    def _check_migrate_policy(self, command: MigratePolicy) -> None:
        self._check(command)

    @workflow.update
    async def promise_to_pay(self, command: PromiseToPay) -> ActionResult:
        return await self._act(command)

    @promise_to_pay.validator
    def _check_promise(self, command: PromiseToPay) -> None:
        self._check(command)

    @workflow.update
    async def agree_plan(self, command: RepaymentPlan) -> ActionResult:
        return await self._act(command)

    @agree_plan.validator
    def _check_plan(self, command: RepaymentPlan) -> None:
        self._check(command)

    @workflow.update
    async def offer_settlement(self, command: Settlement) -> ActionResult:
        return await self._act(command)

    @offer_settlement.validator
    def _check_settlement(self, command: Settlement) -> None:
        self._check(command)

    @workflow.update
    async def open_dispute(self, command: DisputeOpen) -> ActionResult:
        return await self._act(command)

    @open_dispute.validator
    def _check_open_dispute(self, command: DisputeOpen) -> None:
        self._check(command)

    @workflow.update
    async def resolve_dispute(self, command: DisputeResolve) -> ActionResult:
        return await self._act(command)

    @resolve_dispute.validator
    def _check_resolve_dispute(self, command: DisputeResolve) -> None:
        self._check(command)

    @workflow.update
    async def book_visit(self, command: VisitBooking) -> ActionResult:
        return await self._act(command)

    @book_visit.validator
    def _check_book_visit(self, command: VisitBooking) -> None:
        self._check(command)

    @workflow.update
    async def report_visit(self, command: VisitReport) -> ActionResult:
        return await self._act(command)

    @report_visit.validator
    def _check_report_visit(self, command: VisitReport) -> None:
        self._check(command)

    @workflow.update
    async def escalate(self, command: Escalate) -> ActionResult:
        return await self._act(command)

    @escalate.validator
    def _check_escalate(self, command: Escalate) -> None:
        self._check(command)

    @workflow.update
    async def deescalate(self, command: Deescalate) -> ActionResult:
        return await self._act(command)

    @deescalate.validator
    def _check_deescalate(self, command: Deescalate) -> None:
        self._check(command)

    @workflow.update
    async def write_off(self, command: WriteOff) -> ActionResult:
        return await self._act(command)

    @write_off.validator
    def _check_write_off(self, command: WriteOff) -> None:
        self._check(command)

    @workflow.update
    async def close_case(self, command: Close) -> ActionResult:
        return await self._act(command)

    @close_case.validator
    def _check_close(self, command: Close) -> None:
        self._check(command)

    @workflow.update
    async def approve(self, command: Approve) -> ActionResult:
        return await self._act(command)

    @approve.validator
    def _check_approve(self, command: Approve) -> None:
        self._check(command)

    @workflow.update
    async def decline(self, command: Decline) -> ActionResult:
        return await self._act(command)

    @decline.validator
    def _check_decline(self, command: Decline) -> None:
        self._check(command)

    @workflow.update
    async def add_note(self, command: Note) -> ActionResult:
        return await self._act(command)

    @add_note.validator
    def _check_note(self, command: Note) -> None:
        self._check(command)

    @workflow.query
    def status(self) -> CaseStatus:
        return self._status()

    @workflow.query
    def attempt_check(self, question: ClaimCheck) -> ClaimAnswer:
        """A collector claims the call task of the attempt in flight: the guard again,
        at the claim's time (`delivery.claim_check`)."""
        flight = self._in_flight
        if flight is None or flight.effect.idempotency_key != question.idempotency_key:
            return ClaimAnswer(
                allowed=False, rule="not_in_flight", detail="the case no longer waits for it"
            )
        block = flight.withdrawn or delivery.claim_check(self._state, flight.effect, question.at)
        if block is None:
            return ClaimAnswer(allowed=True)
        return ClaimAnswer(allowed=False, rule=block.rule, detail=block.detail)

    def _check(self, command: BaseModel) -> None:
        """Validator: reject (no trace in history) unless the rule accepts the command.
        Validators run live only, never on replay: a case about to move to the current
        rules is checked under them."""
        state = self._state
        if state.rules < CURRENT_RULES and not state.is_closed:
            state = state.model_copy(update={"rules": CURRENT_RULES})
        try:
            actions.events_for(state, command, workflow.now())
        except actions.Rejected as exc:
            raise _refusal(exc) from None

    async def _act(self, command: BaseModel) -> ActionResult:
        async with self._lock:
            try:
                self._upgrade()
                before = self._state.seq
                try:
                    events = actions.events_for(self._state, command, workflow.now())
                except actions.Rejected as exc:
                    # The case moved between validation and handling (another action won).
                    raise _refusal(exc) from None
                if self._state.rules >= CURRENT_RULES:
                    await self._record_with_documents(events)
                else:
                    await self._record_as_recorded(events)
                recorded = [(seq, e) for seq, e in self._state.recent if seq > before]
                return ActionResult(recorded=event_lines(recorded), status=self._status())
            finally:
                self._drain_inbox()

    def _apply_quietly(self, name: str, command: BaseModel) -> None:
        """Signals cannot answer: a rejected one is logged and leaves the case as it was.
        One that lands while an action holds the case's lock (storing an agreement's
        document) waits for it, so the action's events keep the numbers it reserved."""
        if self._lock.locked() and self._state.rules >= CURRENT_RULES:
            self._inbox.append((name, command))
            return
        try:
            events = actions.events_for(self._state, command, workflow.now())
        except actions.Rejected as exc:
            self._log(f"{name} signal ignored: {exc.code}", refusal=exc.code.value)
            return
        for event in events:
            self._record(event)

    def _drain_inbox(self) -> None:
        inbox, self._inbox = self._inbox, []
        for name, command in inbox:
            self._apply_quietly(name, command)

    async def _record_with_documents(self, events: list[Event]) -> None:
        """Rules 3: an agreement is recorded with its document or not at all. The
        document is stored first (the case's lock keeps the sequence numbers still), then
        the agreeing event and its `agreement_recorded` are recorded together; the
        confirmation SMS is a contact of its own, decided through the guard."""
        documents: dict[int, AgreementReceipt] = {}
        seq = self._state.seq
        for offset, event in enumerate(events, start=1):
            if event.type in AGREEMENT_KINDS:
                documents[seq + offset] = await self._store_agreement(event, seq + offset)
        for event in events:
            self._record(event)
            receipt = documents.get(self._state.seq)
            if receipt is not None:
                kind = AGREEMENT_KINDS[event.type]
                self._record(
                    AgreementRecorded(
                        at=workflow.now(),
                        kind=kind,
                        agreement_seq=self._state.seq,
                        document_id=receipt.document_id,
                        sha256=receipt.sha256,
                    )
                )

    async def _store_agreement(self, agreed: Event, seq: int) -> AgreementReceipt:
        request = self._agreement_request(agreed, seq, recipient="")
        update = workflow.current_update_info()
        key = f"{request.idempotency_key}:{update.id}" if update is not None else None
        try:
            receipt: AgreementReceipt = await workflow.execute_activity(
                "store_agreement",
                request.model_copy(update={"idempotency_key": key or request.idempotency_key}),
                result_type=AgreementReceipt,
                start_to_close_timeout=PROVIDER_TIMEOUT,
                schedule_to_close_timeout=AGREEMENT_STORE_DEADLINE,
                retry_policy=PROVIDER_RETRY,
                summary=f"store {request.kind} agreement",
            )
        except ActivityError as exc:
            reason = _failure_reason(exc)
            raise ApplicationError(
                f"the agreement's document could not be stored ({reason}); nothing was "
                "recorded: try again",
                Refusal.agreement_not_stored.value,
                type="Rejected",
                non_retryable=True,
            ) from None
        return receipt

    async def _record_as_recorded(self, events: list[Event]) -> None:
        """Rules 1-2, as their histories were recorded: the agreement's document and its
        confirmation SMS in one activity, inside the update."""
        for event in events:
            self._record(event)
            if event.type in AGREEMENT_KINDS:
                await self._record_agreement(event, self._state.seq)

    def _agreement_request(self, agreed: Event, seq: int, recipient: str) -> AgreementRequest:
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
        return AgreementRequest(
            case_id=state.case_id,
            idempotency_key=f"{state.case_id}:agreement:{seq}",
            kind=kind,
            agreement_seq=seq,
            recipient=recipient,
            language=borrower.language,
            variables=variables,
            schedule=schedule,
        )

    async def _record_agreement(self, agreed: Event, seq: int) -> None:
        """Render, send and store the agreement document; the audit event references it."""
        state = self._state
        request = self._agreement_request(
            agreed, seq, recipient=state.case.borrower.phones[state.phone() or 0]
        )
        receipt: AgreementReceipt = await workflow.execute_activity(
            "record_agreement",
            request,
            result_type=AgreementReceipt,
            start_to_close_timeout=PROVIDER_TIMEOUT,
            retry_policy=PROVIDER_RETRY,
            summary=f"{request.kind} agreement",
        )
        self._record(
            AgreementRecorded(
                at=workflow.now(),
                kind=request.kind,
                agreement_seq=seq,
                document_id=receipt.document_id,
                sha256=receipt.sha256,
                provider_ref=receipt.provider_ref,
            )
        )

    # --- the delivery seam ------------------------------------------------------------

    async def _attempt(self, effect: Effect) -> None:
        """Rules 3: hand `effect` to its provider beside the case, not under its lock.
        After every event the case records meanwhile, ask whether the attempt is still
        allowed; if not, cancel it (a provider that already accepted it wins: that is
        recorded as sent). The attempt stops at its deadline, the window's close."""
        state, now = self._state, workflow.now()
        ends = delivery.deadline(state, effect, now)
        spec = CHANNELS[effect.channel]
        # A person's attempt (a call task) lasts until they finish it: its deadline
        # bounds it, heartbeats tell a dead worker; a provider's try is short.
        person = spec.person
        request, carried = outbound_request(state, effect, now), self._carried()
        if carried is not None:
            request = request.model_copy(update={"audit": carried})
        handle = workflow.start_activity(
            spec.activity,
            request,
            # The partner's own queue, where its limits pace it (and nothing else); the
            # wait there counts toward the deadline, so what the limits cannot send
            # before the window closes expires and is decided again at the next opening.
            task_queue=partner_queue(workflow.info().task_queue, spec.partner),
            result_type=ProviderReceipt,
            start_to_close_timeout=None if person else PROVIDER_TIMEOUT,
            schedule_to_close_timeout=ends - now if ends is not None else None,
            heartbeat_timeout=HEARTBEAT_TIMEOUT,
            retry_policy=PROVIDER_RETRY,
            cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            summary=f"{effect.channel} in {effect.stage}",
        )
        flight = self._in_flight = _InFlight(
            effect,
            since=now,
            deadline=ends,
            carried_upto=carried.records[-1].seq if carried is not None else 0,
        )
        seen = state.seq
        while not handle.done():
            await workflow.wait_condition(
                lambda seen=seen: handle.done() or self._state.seq != seen  # type: ignore[misc]
            )
            if handle.done():
                break
            seen = self._state.seq
            if flight.withdrawn is None:
                flight.withdrawn = delivery.withdrawal(self._state, effect)
                if flight.withdrawn is not None:
                    handle.cancel()
            # What happened meanwhile reaches the audit log and `dunning cases` now,
            # not when the provider answers.
            await self._flush()
        outcome: Event | None = None
        try:
            receipt = await handle
            if carried is not None and receipt.audit is not None:
                self._appended(carried)
            outcome = event_for(effect, receipt, workflow.now())
        except ActivityError as exc:
            if _audit_failure(exc):
                # The store refused the carried events: nothing was sent; the case
                # stands still, visibly, until it takes them (as after a flush).
                self._block_audit(exc)
            else:
                outcome = self._undelivered(flight, exc)
        self._in_flight = None
        async with self._lock:
            if outcome is not None:
                self._record(outcome)
            self._drain_inbox()

    def _carried(self) -> AuditBatch | None:
        """What an attempt carries to the audit log: every event not appended yet. They
        stay pending until its receipt says they were appended: a flush meanwhile (an
        event recorded while it waits for its turn), or after an attempt that never
        ran, appends them again, which the store takes as already there."""
        if not self._pending:
            return None
        info = workflow.info()
        return AuditBatch(
            workflow_id=info.workflow_id, run_id=info.run_id, records=list(self._pending)
        )

    def _appended(self, batch: AuditBatch) -> None:
        """`batch` is in the audit log (an attempt's activity appended it): no longer
        pending, and the listing may show what it holds."""
        upto = batch.records[-1].seq
        self._pending = [record for record in self._pending if record.seq > upto]
        if not self._pending:  # the listing never shows what the log does not hold
            self._publish()

    def _undelivered(self, flight: _InFlight, exc: ActivityError) -> Event:
        effect, now = flight.effect, workflow.now()
        where: dict[str, Any] = {
            "at": now,
            "channel": effect.channel,
            "stage": effect.stage,
            "action_index": effect.action_index,
            "occurrence": effect.occurrence,
            "idempotency_key": effect.idempotency_key,
            "agreement_seq": effect.agreement_seq,
        }
        if flight.withdrawn is not None and not _refused(exc):
            return ContactWithdrawn(
                rule=flight.withdrawn.rule, detail=flight.withdrawn.detail, **where
            )
        cause = exc.cause
        if isinstance(cause, CancelledError):  # cancelled by someone else (a reset, ...)
            return ContactWithdrawn(rule="cancelled", detail="the attempt was cancelled", **where)
        if not _refused(exc) and flight.deadline is not None:
            # The deadline came, or no retry fits before it (the server gives up with the
            # last failure): undelivered, decided again at the next opening.
            ended = flight.deadline
            retry = delivery.retry_at(self._state, ended)
            return ContactExpired(deadline=ended, retry_at=retry, **where)
        self._log("contact failed", channel=effect.channel, reason=_failure_reason(exc))
        return ContactFailed(reason=_failure_reason(exc), **where)

    async def _perform_holding_the_lock(self) -> None:
        """Rules 1-2, as their histories were recorded: the provider call under the case's
        lock, so an action waits for it; the case fails if the provider refuses."""
        async with self._lock:
            decision = decide(self._state, workflow.now())
            if decision.effect is not None:
                self._record(await self._perform(decision.effect))

    async def _perform(self, effect: Effect) -> Event:
        receipt: ProviderReceipt = await workflow.execute_activity(
            CHANNELS[effect.channel].activity,
            outbound_request(self._state, effect, workflow.now()),
            result_type=ProviderReceipt,
            start_to_close_timeout=PROVIDER_TIMEOUT,
            retry_policy=PROVIDER_RETRY,
            summary=f"{effect.channel} in {effect.stage}",
        )
        return event_for(effect, receipt, workflow.now())

    # --- internals ------------------------------------------------------------------

    def _upgrade(self) -> None:
        """Move a case on older decision rules to the current ones, once, recorded. The
        patch id carries the sequence number: replaying a history recorded before this
        code, every call is at a point with no marker (False, memoised per id only), and
        the first call made live records the marker where the upgrade happened."""
        state = self._state
        if state.rules >= CURRENT_RULES or state.is_closed:
            return
        if not workflow.patched(f"{RULES_3}@{state.seq}"):
            return
        upgraded = RulesUpgraded(at=workflow.now(), previous=state.rules, rules=CURRENT_RULES)
        self._record(upgraded)

    def _recording(self, seam: bool) -> asyncio.Lock | _NoLock:
        """Rules 3 record under the lock an action holds while it stores a document."""
        return self._lock if seam else _NoLock()

    def _status(self) -> CaseStatus:
        flight = self._in_flight
        return case_status(
            self._state,
            workflow.now(),
            in_flight=InFlightView(
                channel=flight.effect.channel,
                stage=flight.effect.stage,
                since=flight.since,
                deadline=flight.deadline,
                withdrawing=flight.withdrawn.rule if flight.withdrawn else None,
                carried=sum(1 for r in self._pending if r.seq <= flight.carried_upto),
            )
            if flight is not None
            else None,
            audit_blocked=self._audit_blocked,
        )

    def _record(self, event: Event) -> None:
        self._state = evolve(self._state, event)
        self._events_this_run += 1
        self._pending.append(
            AuditRecord(case_id=self._state.case_id, seq=self._state.seq, event=event)
        )
        self._log(event.type, seq=self._state.seq)

    async def _flush(self) -> None:
        """Write pending events to the audit log, then publish the search attributes.

        Publishing second means `dunning cases` never lists a stage or state the audit
        log does not hold yet. Cases started before this order was introduced published
        first; `workflow.patched` keeps their histories replaying (see "Determinism" in
        docs/architecture.md). An append the store refuses for good (not a passing
        outage: those are retried) blocks the case visibly instead of retrying forever.
        """
        after = workflow.patched(PUBLISH_AFTER_AUDIT)
        if not after:
            self._publish()
        while self._pending:
            batch, self._pending = self._pending, []
            info = workflow.info()
            try:
                await self._append(
                    AuditBatch(workflow_id=info.workflow_id, run_id=info.run_id, records=batch)
                )
            except ActivityError as exc:
                self._pending = batch + self._pending
                self._block_audit(exc)
                return
        self._audit_blocked = None
        if after:
            self._publish()

    def _block_audit(self, exc: ActivityError) -> None:
        self._audit_blocked = _failure_reason(exc)
        workflow.logger.error(
            "audit append refused; the case stops until the store accepts it",
            extra={"case_id": self._state.case_id, "reason": self._audit_blocked},
        )
        self._publish()

    async def _append(self, batch: AuditBatch) -> None:
        summary = f"audit {batch.records[0].seq}..{batch.records[-1].seq}"
        await workflow.execute_activity(
            APPEND_AUDIT,
            batch,
            start_to_close_timeout=AUDIT_TIMEOUT,
            retry_policy=PROVIDER_RETRY,
            summary=summary,
        )

    async def _flush_all(self) -> None:
        """Flush before the run ends: no event is left behind, even while the store
        refuses them (the run waits, visibly, until it takes them)."""
        await self._flush()
        while self._audit_blocked is not None:
            await self._retry_audit()

    async def _retry_audit(self) -> None:
        """The audit store refused the case's events: contact stands still (nothing is
        sent that the log cannot hold); try again after a while or on any message."""
        seen = self._state.seq
        try:
            await workflow.wait_condition(
                lambda: self._state.seq != seen,
                timeout=AUDIT_RETRY,
                timeout_summary="retry the audit append",
            )
        except TimeoutError:
            pass
        await self._flush()

    def _publish(self) -> None:
        values = attributes_for(
            self._state,
            self._state.days_past_due(workflow.now()),
            audit_blocked=self._audit_blocked is not None,
        )
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


class _NoLock:
    """Rules 1-2 recorded decisions without taking the lock."""

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_: object) -> None:
        return None


def _refusal(exc: actions.Rejected) -> ApplicationError:
    """A refusal as the caller receives it: the reason for people, the code in details."""
    return ApplicationError(exc.reason, exc.code.value, type="Rejected", non_retryable=True)


def _refused(exc: ActivityError) -> bool:
    """The provider refused for good (a non-retryable application error)."""
    cause = exc.cause
    return isinstance(cause, ApplicationError) and cause.non_retryable


def _audit_failure(exc: ActivityError) -> bool:
    """The audit store refused the events an attempt carried (nothing was sent)."""
    cause = exc.cause
    return isinstance(cause, ApplicationError) and cause.type in AUDIT_FAILURES


def _failure_reason(exc: ActivityError) -> str:
    """What went wrong, without personal data: the error's type and message (provider
    and store errors name fields and statuses, never values)."""
    cause = exc.cause
    while isinstance(cause, ActivityError | ActivityTimeout) and cause.cause is not None:
        cause = cause.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type or 'error'}: {cause.message}"[:500]
    if isinstance(cause, ActivityTimeout):
        return f"timeout ({cause.type.name.lower() if cause.type else 'unknown'})"
    return type(cause).__name__ if cause is not None else "unknown"
