"""`decide(state, now) -> Decision`: what the case should do next. Pure.

Everything is scheduled on the case's *active* clock (time since opening, less
pauses), so a pause delays the cadence and the escalation alike, and the same
events always produce the same decisions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.channels import CHANNELS, Channel
from schemas.events import (
    ApprovalExpired,
    CaseClosed,
    CollectionResumed,
    ContactDeferred,
    ContactSkipped,
    Event,
    PlanBroken,
    PromiseEnded,
    PromiseKept,
    SettlementLapsed,
    StageChanged,
    StageEntered,
)
from schemas.policy import ActionSpec
from workflows import compliance
from workflows.calendar import end_of_day
from workflows.contact_window import next_opening
from workflows.state import CaseState


@dataclass(frozen=True)
class Effect:
    """A side effect to run as an activity; its result becomes an event."""

    channel: Channel
    stage: str
    action_index: int
    occurrence: int
    template: str | None
    idempotency_key: str
    third_party: int | None = None
    phone_index: int = 0
    agreement_seq: int | None = None  # an agreement's confirmation, not a cadence contact


@dataclass(frozen=True)
class Decision:
    """Exactly one of: events to apply now, an effect to run now, or a time to wake up."""

    events: list[Event] = field(default_factory=list)
    effect: Effect | None = None
    wake_at: datetime | None = None
    next_what: str | None = None


@dataclass(frozen=True)
class _Due:
    offset: timedelta
    action_index: int
    action: ActionSpec
    occurrence: int


# Rules 3: occurrences of a channel that piled up (a long deferral, a pause that aged
# the case) are coalesced to one contact per channel and opening.
COALESCE_RULES = 3
# Rules 3 name an attempt by its place in the cadence, so a retry after an expiry asks
# the provider with the same key.
OCCURRENCE_KEY_RULES = 3
CONFIRMATION_TEMPLATE = "agreement_confirmation"


def decide(state: CaseState, now: datetime) -> Decision:
    if state.is_closed:
        return Decision()
    if state.balance.total <= 0:
        return Decision(events=[CaseClosed(at=now, reason="paid")])
    if state.handed_to_legal:
        return Decision(events=[CaseClosed(at=now, reason="transferred_to_legal")])
    expired = [
        ApprovalExpired(at=now, request=p.seq, kind=p.kind)
        for p in state.approvals
        if p.expires_at <= now
    ]
    if expired:
        return Decision(events=list[Event](expired))
    wakes = [(p.expires_at, f"approval #{p.seq} expires") for p in state.approvals]
    if state.confirmations:
        confirmation = confirm(state, now)
        if confirmation.events or confirmation.effect is not None:
            return confirmation
        if confirmation.wake_at is not None:
            wakes.append((confirmation.wake_at, confirmation.next_what or "confirmation"))
    decision = _held(state, now) if state.is_frozen else _collect(state, now)
    return _sooner(decision, wakes)


def _sooner(decision: Decision, wakes: list[tuple[datetime, str]]) -> Decision:
    """A wait that ends at the earliest of the decision's own wake and `wakes`."""
    if decision.events or decision.effect is not None or not wakes:
        return decision
    at, what = min(wakes)
    if decision.wake_at is not None and decision.wake_at <= at:
        return decision
    return Decision(wake_at=at, next_what=what)


def confirm(state: CaseState, now: datetime) -> Decision:
    """Rules 3: an agreement's confirmation SMS goes through the guard like any contact:
    a hard stop or a cease skips it, as does no valid number; outside the window or on a
    quiet day it is deferred; a pause or a dispute holds it."""
    seq = state.confirmations[0]
    stage = state.stage.name if state.stage is not None else "opening"
    agreement = state.agreement
    if agreement is None or agreement.seq != seq:
        return Decision(events=[_unconfirmed(state, seq, now, "agreement_ended", "")])
    if state.paused is not None or state.dispute is not None:
        return Decision()
    block = compliance.stopped(state, "sms")
    if block is not None:
        return Decision(events=[_unconfirmed(state, seq, now, block.rule, block.detail)])
    until = state.confirmation_deferred.get(seq)
    if until is not None and until > now:
        return Decision(wake_at=until, next_what="agreement confirmation")
    opening, rule, detail = compliance.next_allowed(state, now)
    if opening > now:
        deferred = ContactDeferred(
            at=now,
            rule=rule,
            detail=detail,
            until=opening,
            channel="sms",
            stage=stage,
            action_index=-1,
            occurrence=0,
            agreement_seq=seq,
        )
        return Decision(events=[deferred])
    return Decision(
        effect=Effect(
            channel="sms",
            stage=stage,
            action_index=-1,
            occurrence=0,
            template=CONFIRMATION_TEMPLATE,
            idempotency_key=f"{state.case_id}:agreement:{seq}",
            phone_index=state.phone() or 0,
            agreement_seq=seq,
        ),
        next_what="agreement confirmation",
    )


def _unconfirmed(state: CaseState, seq: int, now: datetime, rule: str, detail: str) -> Event:
    return ContactSkipped(
        at=now,
        rule=rule,
        detail=detail,
        channel="sms",
        stage=state.stage.name if state.stage is not None else "opening",
        action_index=-1,
        occurrence=0,
        agreement_seq=seq,
    )


def _collect(state: CaseState, now: datetime) -> Decision:
    """No hold: the stage's next contact, or the next stage."""
    active = state.active_elapsed(now)
    due = _next_action(state)
    stage_index, stage_offset = _next_stage(state)

    if due is not None and (stage_offset is None or due.offset < stage_offset):
        at = now + (due.offset - active) if due.offset > active else now
        what = f"{due.action.channel} ({state.policy.stages[state.stage_index].name})"
        guarded = due.action.channel in compliance.GUARDED_CHANNELS
        # Third-party messages came with the guard: they always go through it.
        if guarded and (state.rules >= 2 or due.action.channel == "third_party_sms"):
            return _guarded(state, due, at, now, what)
        window = state.policy.contact_window
        if window is not None and CHANNELS[due.action.channel].guarded:
            at = next_opening(at, window, state.case.borrower.timezone)
        if at > now:
            return Decision(wake_at=at, next_what=what)
        stop = compliance.stopped(state, due.action.channel) if guarded else None
        if stop is not None:
            return Decision(events=[_skipped(state, due, now, stop)], next_what=what)
        return Decision(effect=_effect(state, due), next_what=what)

    if stage_offset is not None and stage_index is not None:
        if stage_offset > active:
            name = state.policy.stages[stage_index].name
            return Decision(wake_at=now + (stage_offset - active), next_what=f"enter {name}")
        return Decision(events=[_enter(state, now, active)])

    return Decision(next_what="nothing scheduled")


def _guarded(state: CaseState, due: _Due, at: datetime, now: datetime, what: str) -> Decision:
    """Rules 2: the compliance guard decides whether the due contact goes out now."""
    if at > now:
        return Decision(wake_at=at, next_what=what)
    waits = state.deferred.get(due.action_index)
    if state.rules >= COALESCE_RULES and waits is not None and waits > now:
        return Decision(wake_at=waits, next_what=f"{what}, deferred")  # expired: next opening
    if state.rules >= COALESCE_RULES and _superseded(state, due, now):
        coalesced = compliance.Block(
            "coalesced", f"a later {due.action.channel} is due at the same opening"
        )
        return Decision(events=[_skipped(state, due, now, coalesced)], next_what=what)
    block = compliance.check(state, due.action.channel, now)
    if block is None:
        return Decision(effect=_effect(state, due), next_what=what)
    if block.until is None:
        return Decision(events=[_skipped(state, due, now, block)], next_what=what)
    # Deferred: record it once for every contact due now (a later one that is due too
    # waits as well), then sleep until the opening.
    events: list[Event] = [
        ContactDeferred(
            at=now,
            rule=block.rule,
            detail=block.detail,
            until=block.until,
            channel=other.action.channel,
            stage=state.policy.stages[state.stage_index].name,
            action_index=other.action_index,
            occurrence=other.occurrence,
        )
        for other in _due_now(state, now)
        if other.action.channel in compliance.GUARDED_CHANNELS
        and state.deferred.get(other.action_index, now) <= now
    ]
    if events:
        return Decision(events=events, next_what=what)
    until = state.deferred.get(due.action_index, block.until)
    return Decision(wake_at=until, next_what=f"{what}, deferred: {block.rule}")


def _superseded(state: CaseState, due: _Due, now: datetime) -> bool:
    """Another occurrence of the same channel is due now too and was due later (this
    action's next occurrence, or another action's): this one has piled up. Actions of
    one channel due at the same instant are the policy's choice and all go (the caps
    still apply)."""
    active = state.active_elapsed(now)
    _, stage_end = _next_stage(state)
    day = due.action.occurrence_day(due.occurrence + 1)
    if day is not None:
        offset = state.stage_offset + day * state.policy.day_length
        if offset <= active and (stage_end is None or offset < stage_end):
            return True
    return any(
        other.action.channel == due.action.channel and other.offset > due.offset
        for other in _due_now(state, now)
    )


def _skipped(state: CaseState, due: _Due, now: datetime, block: compliance.Block) -> Event:
    return ContactSkipped(
        at=now,
        rule=block.rule,
        detail=block.detail,
        channel=due.action.channel,
        stage=state.policy.stages[state.stage_index].name,
        action_index=due.action_index,
        occurrence=due.occurrence,
    )


def _held(state: CaseState, now: datetime) -> Decision:
    """Collection stands still; say what ends the hold, or when to look again."""
    wakes: list[tuple[datetime, str]] = []
    paused = state.paused
    if paused is not None and paused.until is not None:
        if now >= paused.until:
            return Decision(
                events=[
                    CollectionResumed(
                        at=now,
                        reason="pause ended as scheduled",
                        operator="system",
                        paused_for=now - paused.since,
                    )
                ]
            )
        wakes.append((paused.until, "resume (pause ends)"))
    promise, plan, settlement = state.promise, state.plan, state.settlement
    if promise is not None:
        if not promise.kept and promise.paid >= promise.amount:
            return Decision(events=[PromiseKept(at=now, paid=promise.paid)])
        # Kept: contact stays suppressed until the promised date is over; unkept: until
        # its grace is over too, and then the promise is broken.
        ends = promise.hold_until
        if promise.kept:
            ends = end_of_day(promise.pay_by, state.case.borrower.timezone, 0, timedelta(0))
        if now >= ends:
            return Decision(
                events=[
                    PromiseEnded(at=now, kept=promise.kept, paid=promise.paid),
                    *_resume_stage(state, now, broken=not promise.kept, why="promise broken"),
                ]
            )
        wakes.append((ends, "promise " + ("ends" if promise.kept else "due")))
    if plan is not None:
        pending = plan.next_deadline()
        if pending is not None:
            index, required, deadline = pending
            if now >= deadline:
                return Decision(
                    events=[
                        PlanBroken(
                            at=now, missed_instalment=index + 1, required=required, paid=plan.paid
                        ),
                        *_resume_stage(state, now, broken=True, why="plan broken"),
                    ]
                )
            wakes.append((deadline, f"instalment {index + 1} due"))
    if settlement is not None:
        if settlement.paid >= settlement.amount:
            return Decision(
                events=[CaseClosed(at=now, reason="settled", waived=state.balance.total)]
            )
        if now >= settlement.deadline:
            return Decision(
                events=[
                    SettlementLapsed(at=now, paid=settlement.paid),
                    *_resume_stage(state, now, broken=True, why="settlement lapsed"),
                ]
            )
        wakes.append((settlement.deadline, "settlement due"))
    if not wakes:
        what = "dispute resolution" if state.dispute is not None else "resume (paused)"
        return Decision(next_what=what)
    at, what = min(wakes)
    return Decision(wake_at=at, next_what=what)


def _resume_stage(state: CaseState, now: datetime, *, broken: bool, why: str) -> list[Event]:
    """After a broken agreement the policy may require at least a given stage."""
    target_name = state.policy.agreements.resume_stage_after_broken
    if not broken or target_name is None:
        return []
    target = state.policy.stage_index(target_name)
    if target <= state.stage_index:
        return []
    return [stage_change(state, now, target, operator="system", reason=why)]


def stage_change(
    state: CaseState, now: datetime, target: int, *, operator: str, reason: str
) -> StageChanged:
    """Move the case to stage `target`, shifting the escalation clock to that stage's start
    (or, going down, to the lower stage's start) so the policy's thresholds stay coherent."""
    active = state.active_elapsed(now)
    start = state.stage_start_offset(target)
    gap = start - active
    shift = max(gap, timedelta(0)) if target > state.stage_index else min(gap, timedelta(0))
    return StageChanged(
        at=now,
        actor=f"operator:{operator}" if operator != "system" else "system",
        operator=operator,
        reason=reason,
        stage=state.policy.stages[target].name,
        stage_index=target,
        active_offset=active + shift,
        shift=shift,
    )


def _pending(state: CaseState) -> list[_Due]:
    """The next occurrence of each of the current stage's actions, before the stage ends."""
    stage = state.stage
    if stage is None:
        return []
    _, stage_end = _next_stage(state)
    found: list[_Due] = []
    for index, action in enumerate(stage.actions):
        occurrence = state.done.get(index, 0)
        day = action.occurrence_day(occurrence)
        if day is None:
            continue
        offset = state.stage_offset + day * state.policy.day_length
        if stage_end is None or offset < stage_end:
            found.append(_Due(offset, index, action, occurrence))
    return found


def _next_action(state: CaseState) -> _Due | None:
    """The earliest pending occurrence of the current stage's actions."""
    stage = state.stage
    if stage is None:
        return None
    best: _Due | None = None
    for index, action in enumerate(stage.actions):
        occurrence = state.done.get(index, 0)
        day = action.occurrence_day(occurrence)
        if day is None:
            continue
        offset = state.stage_offset + day * state.policy.day_length
        if best is None or offset < best.offset:
            best = _Due(offset, index, action, occurrence)
    if best is None:
        return None
    _, stage_end = _next_stage(state)
    if stage_end is not None and best.offset >= stage_end:
        return None
    return best


def _due_now(state: CaseState, now: datetime) -> list[_Due]:
    active = state.active_elapsed(now)
    return [due for due in _pending(state) if due.offset <= active]


def _next_stage(state: CaseState) -> tuple[int | None, timedelta | None]:
    following = state.stage_index + 1
    if following >= len(state.policy.stages):
        return None, None
    return following, state.stage_start_offset(following)


def _enter(state: CaseState, now: datetime, active: timedelta) -> StageEntered:
    """Enter the furthest stage already reached; stages jumped over are named, not run."""
    target = state.stage_index + 1
    while target + 1 < len(state.policy.stages) and state.stage_start_offset(target + 1) <= active:
        target += 1
    skipped = tuple(s.name for s in state.policy.stages[state.stage_index + 1 : target])
    if state.stage_index == -1:
        skipped = ()  # opening late is not skipping: earlier stages never applied
    return StageEntered(
        at=now,
        stage=state.policy.stages[target].name,
        stage_index=target,
        days_past_due=state.days_past_due(now),
        active_offset=state.stage_start_offset(target),
        skipped=skipped,
    )


def _effect(state: CaseState, due: _Due) -> Effect:
    stage = state.policy.stages[state.stage_index]
    return Effect(
        channel=due.action.channel,
        stage=stage.name,
        action_index=due.action_index,
        occurrence=due.occurrence,
        template=due.action.template,
        third_party=state.third_party() if due.action.channel == "third_party_sms" else None,
        phone_index=(state.phone() or 0) if state.rules >= 2 else 0,
        idempotency_key=_key(state, due),
    )


def _key(state: CaseState, due: _Due) -> str:
    """The idempotency key the provider dedupes on: stable across the activity's retries.
    Rules 3 name the occurrence (the cadence it belongs to, the action, the occurrence),
    so an attempt that expired in an outage and is decided again at the next opening
    asks with the same key: a message that did reach the provider goes out once. Before,
    the sequence number the case had reached (every effect was followed by its event)."""
    if state.rules >= OCCURRENCE_KEY_RULES:
        return f"{state.case_id}:{state.cadence_seq}.{due.action_index}.{due.occurrence}"
    return f"{state.case_id}:{state.seq + 1}"
