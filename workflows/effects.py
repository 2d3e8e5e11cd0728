"""What crosses to a provider and back, pure: the request an effect becomes, and the
event its receipt becomes. Both read the channel table (`schemas/channels.py`)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from schemas.activity_io import (
    CallTaskFacts,
    OutboundRequest,
    ProviderReceipt,
    agreement_reference,
)
from schemas.call_tasks import DEFAULT_TEAM
from schemas.channels import CHANNELS, ON_BORROWER, TEMPLATE_VARIABLES
from schemas.events import (
    ContactAttempted,
    Event,
    FieldVisitScheduled,
    HandedToLegal,
    PromiseEnded,
    PromiseMade,
)
from schemas.money import minor_units
from workflows.decide import Effect
from workflows.delivery import deadline
from workflows.state import CaseState

# A letter asks for an answer within the validation period: 30 days from a receipt
# presumed 5 days after mailing (Reg F §1006.34(b)(5)).
LETTER_RESPONSE_DAYS = timedelta(days=35)

# The variables of an agreement's confirmation SMS (template `agreement_confirmation`).
CONFIRMATION_VARIABLES = frozenset(
    {"name", "loan_id", "amount", "currency", "pay_by", "kind", "reference"}
)


def outbound_request(state: CaseState, effect: Effect, now: datetime) -> OutboundRequest:
    """The provider request of `effect`: its recipient by the channel's addressing, and
    exactly the variables its kind of template is given."""
    spec = CHANNELS[effect.channel]
    borrower = state.case.borrower
    if spec.address == "phone":
        recipient = borrower.phones[effect.phone_index]
    elif spec.address == "third_party_phone":
        if effect.third_party is None:
            raise ValueError(f"a {effect.channel} effect names no emergency contact")
        recipient = borrower.emergency_contacts[effect.third_party].phone
    else:
        value = getattr(borrower, ON_BORROWER[spec.address].field)
        if value is None:  # the guard skips it first (`compliance.stopped`)
            raise ValueError(f"a {effect.channel} effect for a borrower without {spec.address}")
        recipient = str(value)
    return OutboundRequest(
        case_id=state.case_id,
        idempotency_key=effect.idempotency_key,
        channel=effect.channel,
        stage=effect.stage,
        recipient=recipient,
        language=borrower.language,
        template=effect.template,
        variables=template_variables(state, effect, now),
        task=call_task_facts(state, effect, now) if spec.person else None,
    )


def call_task_facts(state: CaseState, effect: Effect, now: datetime) -> CallTaskFacts:
    """What a task of the collectors' queue is ordered by (schemas.call_tasks.PRIORITY),
    its team (the action's, else the default) and when it expires: the attempt's
    deadline, as the workflow bounds the attempt by it."""
    ends = deadline(state, effect, now)
    if ends is None:
        raise ValueError(f"{effect.channel}: a person's attempt needs a deadline")
    stage = state.stage
    action = stage.actions[effect.action_index] if stage is not None else None
    return CallTaskFacts(
        team=(action.team if action is not None else None) or DEFAULT_TEAM,
        stage_rank=max(state.stage_index, 0),
        balance=state.balance.total,
        currency=state.case.loan.currency,
        promise_due=broken_promise_due(state),
        phone_index=effect.phone_index,
        expires_at=ends,
    )


def broken_promise_due(state: CaseState) -> date | None:
    """The pay-by date of the last promise among the recent events that ended unkept."""
    made: date | None = None
    broken: date | None = None
    for _, event in state.recent:
        if isinstance(event, PromiseMade):
            made = event.pay_by
        elif isinstance(event, PromiseEnded) and not event.kept and made is not None:
            broken = made
    return broken


def template_variables(state: CaseState, effect: Effect, now: datetime) -> dict[str, str]:
    borrower, loan = state.case.borrower, state.case.loan
    if effect.agreement_seq is not None:
        return _confirmation(state, effect.agreement_seq)
    kind = CHANNELS[effect.channel].template
    if kind is None:
        return {}
    if kind == "third_party":
        # Nothing about the debt reaches a third party: the borrower's name only.
        values = {"borrower_name": borrower.name}
    elif kind == "letter":
        balance = state.balance
        today = now.astimezone(ZoneInfo(borrower.timezone)).date()
        places = minor_units(loan.currency)

        def money(amount: Decimal) -> str:  # every amount of the itemisation alike: 0.00
            return f"{amount:.{places}f}"

        values = {
            "name": borrower.name,
            "address": borrower.address or "",
            "loan_id": loan.id,
            "currency": loan.currency,
            "principal": money(balance.principal),
            "interest": money(balance.interest),
            "fees": money(balance.fees),
            "penalty": money(balance.penalty),
            "amount": money(balance.total),
            "days_past_due": str(state.days_past_due(now)),
            "due_date": loan.due_date.isoformat(),
            "date": today.isoformat(),
            "respond_by": (today + LETTER_RESPONSE_DAYS).isoformat(),
        }
    else:
        values = {
            "name": borrower.name,
            "loan_id": loan.id,
            "amount": str(state.balance.total),
            "currency": loan.currency,
            "days_past_due": str(state.days_past_due(now)),
        }
    assert set(values) == TEMPLATE_VARIABLES[kind]
    return values


def _confirmation(state: CaseState, agreement_seq: int) -> dict[str, str]:
    agreement = state.agreement
    if agreement is None or agreement.seq != agreement_seq:
        raise ValueError(f"no agreement #{agreement_seq} in force to confirm")
    kind = (
        "promise"
        if agreement is state.promise
        else "plan"
        if agreement is state.plan
        else "settlement"
    )
    values = {
        "name": state.case.borrower.name,
        "loan_id": state.case.loan.id,
        "currency": state.case.loan.currency,
        "kind": kind,
        "reference": agreement_reference(state.case_id, agreement_seq),
    }
    if state.promise is not None:
        values |= {"amount": str(state.promise.amount), "pay_by": str(state.promise.pay_by)}
    elif state.settlement is not None:
        values |= {
            "amount": str(state.settlement.amount),
            "pay_by": str(state.settlement.pay_by),
        }
    elif state.plan is not None:
        values["amount"] = str(sum(i.amount for i in state.plan.instalments))
    assert set(values) <= CONFIRMATION_VARIABLES
    return values


def event_for(effect: Effect, receipt: ProviderReceipt, now: datetime) -> Event:
    """The event a provider's receipt for `effect` becomes."""
    made = CHANNELS[effect.channel].attempt_event
    if made == "field_visit_scheduled":
        return FieldVisitScheduled(
            at=now,
            stage=effect.stage,
            action_index=effect.action_index,
            occurrence=effect.occurrence,
            idempotency_key=effect.idempotency_key,
            provider_ref=receipt.provider_ref,
        )
    if made == "handed_to_legal":
        return HandedToLegal(
            at=now,
            stage=effect.stage,
            action_index=effect.action_index,
            idempotency_key=effect.idempotency_key,
            provider_ref=receipt.provider_ref,
        )
    return ContactAttempted(
        at=now,
        channel=effect.channel,
        stage=effect.stage,
        action_index=effect.action_index,
        occurrence=effect.occurrence,
        phone_index=effect.phone_index,
        third_party=effect.third_party,
        template=effect.template,
        idempotency_key=effect.idempotency_key,
        provider_ref=receipt.provider_ref,
        outcome=receipt.outcome,
        agreement_seq=effect.agreement_seq,
        document_sha256=receipt.document_sha256,
    )
