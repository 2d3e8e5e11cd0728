"""A simulated borrower: answers contacts as the response model says, and responds
through the same rules operators and backends use (`workflows.actions`), so a promise
past the policy's limit or a payment on a closed case is refused exactly as it would
be in production.

Every draw comes from the case's own random stream, `random.Random("<seed>:<loan
id>")`, in the order of the case's events: a case's fate does not depend on the rest
of the portfolio, and the same seed gives the same result on every run.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Any

from pydantic import BaseModel

import workflows.actions as actions
from dunning.sim.fold import Interrupt
from dunning.sim.responses import RESPONDING_CHANNELS, ResponseModel
from schemas.channels import CHANNELS
from schemas.commands import Approve, DisputeOpen, DisputeResolve, Payment, PromiseToPay
from schemas.events import (
    ApprovalRequested,
    ContactAttempted,
    DisputeOpened,
    Event,
    FieldVisitScheduled,
    PromiseMade,
)
from schemas.money import minor_units
from workflows.decide import Effect
from workflows.evolve import evolve
from workflows.loan_collection import LoanCollection
from workflows.state import CaseState

ACTOR = "sim"
Rule = Callable[[CaseState, Any, datetime], list[Event]]


def _update(method: Any) -> str:
    """The name of one of the workflow's Update methods (Temporal's update name)."""
    return str(method.__name__)


# The workflow Update that carries each response, and the rule it runs.
PAY = _update(LoanCollection.record_payment)
PROMISE = _update(LoanCollection.promise_to_pay)
DISPUTE = _update(LoanCollection.open_dispute)
RESOLVE = _update(LoanCollection.resolve_dispute)
APPROVE = _update(LoanCollection.approve)
RULES: dict[str, Rule] = {
    PAY: actions.payment,
    PROMISE: actions.promise,
    DISPUTE: actions.open_dispute,
    RESOLVE: actions.resolve_dispute,
    APPROVE: actions.approve,
}
SUPERVISOR = "sim-supervisor"


@dataclass(frozen=True)
class BorrowerAction:
    """One response as sent to the case: when, through which Update, and its answer."""

    at: datetime
    update: str
    command: BaseModel
    accepted: bool
    refusal: str | None = None


@dataclass
class Borrower:
    model: ResponseModel
    segment: str
    rng: random.Random
    day: timedelta = timedelta(days=1)  # the policy's day: the model's times scale with it
    actions: list[BorrowerAction] = field(default_factory=list)
    refused: Counter[str] = field(default_factory=Counter)
    _reached: bool = False
    _keep_next_promise: bool = False
    _payments: int = 0

    @classmethod
    def for_case(
        cls,
        model: ResponseModel,
        segment: str,
        seed: int,
        loan_id: str,
        day: timedelta = timedelta(days=1),
    ) -> Borrower:
        rng = random.Random(f"{seed}:{loan_id}")
        return cls(model=model, segment=segment, rng=rng, day=day)

    def outcome(self, effect: Effect, now: datetime) -> str:
        """The provider's answer: whether the contact reached the borrower is drawn here."""
        rule = self.model.response(self.segment, effect.stage, effect.channel)
        draw = self.rng.random()
        self._reached = effect.channel in RESPONDING_CHANNELS and draw < rule.answer
        if CHANNELS[effect.channel].capped:  # a call, the dialer's or a collector's
            return "answered" if self._reached else "no_answer"
        # What the sandbox-like providers answer: the channel's default outcome.
        return CHANNELS[effect.channel].default_outcome

    def react(
        self, state: CaseState, event: Event, now: datetime
    ) -> list[tuple[datetime, Interrupt]]:
        """Responses to schedule after an event of the case."""
        if isinstance(event, ContactAttempted | FieldVisitScheduled):
            reached, self._reached = self._reached, False
            if reached:
                return self._respond(event, now)
        elif isinstance(event, PromiseMade) and event.operator == ACTOR:
            if self._keep_next_promise:
                later = now + self.model.promise_days * self.day
                return [(later, self._keep_promise)]
        elif isinstance(event, DisputeOpened) and event.operator == ACTOR:
            for_borrower = self.rng.random() < self.model.dispute_for_borrower
            later = now + self.model.dispute_days * self.day
            return [(later, self._resolve(for_borrower))]
        return []

    def _respond(
        self, event: ContactAttempted | FieldVisitScheduled, now: datetime
    ) -> list[tuple[datetime, Interrupt]]:
        channel = event.channel if isinstance(event, ContactAttempted) else "field_visit"
        rule = self.model.response(self.segment, event.stage, channel)
        draw = self.rng.random()
        keep = self.rng.random() < rule.keep
        at = now + self.day * (self.model.respond_after_hours / 24)
        edge = rule.dispute
        if draw < edge:
            return [(at, self._dispute)]
        edge += rule.promise
        if draw < edge:
            return [(at, self._promise(keep))]
        edge += rule.pay_full
        if draw < edge:
            return [(at, self._pay(None))]
        edge += rule.pay_part
        if draw < edge:
            return [(at, self._pay(rule.part_share))]
        return []

    # --- responses, each through the case's own rules -----------------------------

    def _send(
        self, state: CaseState, now: datetime, update: str, command: BaseModel
    ) -> list[Event]:
        if state.is_closed:
            return []  # nothing to respond to any more
        try:
            events = RULES[update](state, command, now)
        except actions.Rejected as exc:
            self.actions.append(BorrowerAction(now, update, command, False, str(exc)))
            self.refused[update] += 1
            return []
        self.actions.append(BorrowerAction(now, update, command, True))
        return events

    def _payment(self, amount: Decimal) -> Payment:
        self._payments += 1
        return Payment(amount=amount, reference=f"{ACTOR}-{self._payments}", source=ACTOR)

    def _pay(self, share: float | None) -> Interrupt:
        def pay(state: CaseState, now: datetime) -> list[Event]:
            balance = state.balance.total
            amount = balance if share is None else _part(balance, share, state)
            if amount <= 0 or state.is_closed:
                return []
            return self._send(state, now, PAY, self._payment(amount))

        return pay

    def _promise(self, keep: bool) -> Interrupt:
        def promise(state: CaseState, now: datetime) -> list[Event]:
            self._keep_next_promise = keep
            day = actions.local_today(state, now + self.model.promise_days * self.day)
            command = PromiseToPay(
                operator=ACTOR,
                reason="the borrower promised to pay",
                amount=state.balance.total,
                pay_by=day,
            )
            return self._send(state, now, PROMISE, command)

        return promise

    def _keep_promise(self, state: CaseState, now: datetime) -> list[Event]:
        promise = state.promise
        if promise is None or promise.kept or state.is_closed:
            return []
        owed = min(promise.amount - promise.paid, state.balance.total)
        return self._send(state, now, PAY, self._payment(owed)) if owed > 0 else []

    def _dispute(self, state: CaseState, now: datetime) -> list[Event]:
        command = DisputeOpen(operator=ACTOR, reason="the borrower disputes the debt")
        return self._send(state, now, DISPUTE, command)

    def _resolve(self, for_borrower: bool) -> Interrupt:
        def resolve(state: CaseState, now: datetime) -> list[Event]:
            if state.dispute is None or state.is_closed:
                return []
            command = DisputeResolve(
                operator=ACTOR,
                reason="dispute reviewed",
                outcome="for_borrower" if for_borrower else "for_lender",
            )
            events = self._send(state, now, RESOLVE, command)
            requests = [e for e in events if isinstance(e, ApprovalRequested)]
            if not requests:
                return events
            # It cancels the debt: the back office's supervisor approves (four eyes).
            asked = state
            for event in events:
                asked = evolve(asked, event)
            approval = Approve(operator=SUPERVISOR, reason="dispute upheld", request=asked.seq)
            return events + self._send(asked, now, APPROVE, approval)

        return resolve


def _part(balance: Decimal, share: float, state: CaseState) -> Decimal:
    unit = Decimal(1).scaleb(-minor_units(state.case.loan.currency))
    return (balance * Decimal(str(share))).quantize(unit, rounding=ROUND_DOWN)
