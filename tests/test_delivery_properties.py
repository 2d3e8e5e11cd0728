"""Property tests of deliveries, not only decisions: the delivery seam.

The fold below drives the real `decide`, `evolve`, action rules and the seam's pure
parts (`workflows.delivery.withdrawal` and `deadline`, `workflows.effects.event_for`)
the way `LoanCollection._attempt` does: an effect becomes an attempt in flight; the
provider is down for random stretches and slow for random seconds; operator actions
(holds, stops, ceases, payments, promises) land at random instants, mid-attempt too,
and after each the attempt is withdrawn if the case no longer allows it; an attempt
still undelivered at its deadline expires. Then, at the instant a provider *accepts*
an attempt, nothing about the case may forbid it: no delivery during a hold, after a
stop or a cease, past a cap, or outside the window (at least 2,000 examples).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.activity_io import ProviderReceipt
from schemas.commands import Payment, PromiseToPay
from schemas.compliance import CONNECTED_OUTCOMES, PROFILES
from schemas.events import (
    CaseOpened,
    ContactAttempted,
    ContactExpired,
    ContactWithdrawn,
    Event,
)
from schemas.policy import Policy
from tests.factories import case_input
from tests.test_compliance_properties import (
    CONTACTS,
    OP,
    OUTCOMES,
    ZONES,
    Poke,
    _command,
    _third_party_violations,
    opened_ats,
    pokes,
    policies,
)
from workflows import actions, compliance, delivery
from workflows.decide import Effect, decide
from workflows.effects import event_for
from workflows.evolve import evolve
from workflows.state import CaseState


@dataclass(frozen=True)
class Outage:
    after: timedelta  # from the previous outage's end (or the opening)
    lasts: timedelta


outages = st.lists(
    st.builds(
        Outage,
        after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=3)),
        lasts=st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(hours=30)),
    ),
    max_size=4,
)
latencies = st.lists(
    st.sampled_from([timedelta(seconds=1), timedelta(seconds=5), timedelta(minutes=3)]),
    min_size=1,
    max_size=4,
)
# Pokes of the seam's own: promises (agreements and their confirmations) and full payments.
SEAM_KINDS = ["promise", "pay_all"]
seam_pokes = st.lists(
    st.builds(
        Poke,
        after=st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=6)),
        kind=st.sampled_from(SEAM_KINDS),
        arg=st.just(""),
    ),
    max_size=2,
)


@dataclass
class Flight:
    effect: Effect
    started: datetime
    accepts_at: datetime
    deadline: datetime | None


def _down_until(windows: list[tuple[datetime, datetime]], at: datetime) -> datetime:
    """When the provider is up again at or after `at`."""
    for start, end in windows:
        if start <= at < end:
            at = end
    return at


def _seam_command(state: CaseState, poke: Poke, n: int, now: datetime) -> tuple[Any, Any]:
    if poke.kind == "promise":
        pay_by = now.astimezone(ZoneInfo(state.case.borrower.timezone)).date() + timedelta(days=3)
        return actions.promise, PromiseToPay(amount=Decimal("100.00"), pay_by=pay_by, **OP)
    if poke.kind == "pay_all":
        return actions.payment, Payment(amount=state.balance.total, reference=f"ALL-{n}")
    return _command(state, poke, n)


def _forbidden(state: CaseState, effect: Effect, at: datetime, log: list[Event]) -> list[str]:
    """Every rule a delivery at `at` would break, recomputed from the state and the log."""
    found: list[str] = []
    if state.is_closed or state.balance.total <= 0:
        found.append("after the case closed or was paid")
    if state.paused is not None or state.dispute is not None:
        found.append("during a pause or a dispute")
    if effect.agreement_seq is None and state.agreement is not None:
        found.append("during an agreement")
    if state.hard_stops:
        found.append("after a hard stop")
    ceased = set(state.ceased)
    if "all" in ceased or effect.channel in ceased:
        found.append("after a cease")
    zone = ZoneInfo(state.case.borrower.timezone)
    law = PROFILES[state.policy.compliance or "cn"]
    local = at.astimezone(zone)
    own = state.policy.contact_window
    start = max([law.window.start] + ([own.start] if own else []))
    end = min([law.window.end] + ([own.end] if own else []))
    if not start <= local.time() < end:
        found.append(f"outside the window at {local:%Y-%m-%d %H:%M:%S}")
    if compliance.quiet_day(state, local.date()) is not None:
        found.append(f"on a quiet day {local.date()}")
    if effect.channel == "third_party_sms":
        found += _third_party_violations(state, effect, log)
    if effect.channel == "call":
        found += _caps(state, effect, local, log)
    return found


def _caps(state: CaseState, effect: Effect, local: datetime, log: list[Event]) -> list[str]:
    zone, law = ZoneInfo(state.case.borrower.timezone), PROFILES[state.policy.compliance or "cn"]
    calls = [
        (e.at.astimezone(zone).date(), e.outcome in CONNECTED_OUTCOMES, e.phone_index)
        for e in log
        if isinstance(e, ContactAttempted) and e.channel == "call"
    ]
    today, found = local.date(), []
    if law.connected_calls_per_day is not None:
        if sum(1 for d, c, _ in calls if d == today and c) >= law.connected_calls_per_day:
            found.append("over the connected-calls cap")
    if law.unanswered_dials_per_number_per_day is not None:
        dials = sum(1 for d, c, p in calls if d == today and not c and p == effect.phone_index)
        if dials >= law.unanswered_dials_per_number_per_day:
            found.append("over the unanswered-dials cap of that number")
    if law.call_attempts_per_7_days is not None:
        if sum(1 for d, _, _ in calls if (today - d).days < 7) >= law.call_attempts_per_7_days:
            found.append("over the 7-day attempts cap")
    if law.no_call_days_after_conversation is not None:
        if any(c and (today - d).days < law.no_call_days_after_conversation for d, c, _ in calls):
            found.append("within 7 days of a conversation")
    return found


def fold(
    policy: Policy,
    zone: str,
    opened_at: datetime,
    script: list[Poke],
    down: list[Outage],
    slow: list[timedelta],
    outcomes: list[str],
    contacts: list[dict[str, str]],
    horizon: timedelta = timedelta(days=21),
) -> tuple[list[Event], list[str], int]:
    """(the log, what a delivery broke, how many attempts were withdrawn or expired)."""
    case = case_input(borrower={"timezone": zone, "emergency_contacts": contacts})
    opened = CaseOpened(at=opened_at, case=case, policy=policy, rules=3)
    state = evolve(None, opened)
    log: list[Event] = [opened]
    windows, at = [], opened_at
    for outage in down:
        at += outage.after
        windows.append((at, at + outage.lasts))
        at += outage.lasts
    due, at = [], opened_at
    for poke in script:
        at += poke.after
        due.append((at, poke))
    due.sort(key=lambda item: item[0])
    broken: list[str] = []
    undelivered = attempts = 0
    now, end = opened_at, opened_at + horizon
    flight: Flight | None = None

    def record(event: Event) -> None:
        nonlocal state
        state = evolve(state, event)
        log.append(event)

    for step in range(20_000):
        if state.is_closed or now > end:
            break
        poke_at = due[0][0] if due else None
        if flight is not None:
            ends = [t for t in (flight.accepts_at, flight.deadline, poke_at) if t is not None]
            now = min(ends)
            if poke_at is not None and now == poke_at and now < flight.accepts_at:
                _, poke = due.pop(0)
                _apply(state, poke, step, now, record)
                why = delivery.withdrawal(state, flight.effect)
                if why is not None:
                    record(_not_sent(ContactWithdrawn, flight, now, rule=why.rule))
                    flight, undelivered = None, undelivered + 1
                continue
            if flight.deadline is not None and flight.deadline < flight.accepts_at:
                now = flight.deadline
                retry = delivery.retry_at(state, now)
                record(_not_sent(ContactExpired, flight, now, deadline=now, retry_at=retry))
                flight, undelivered = None, undelivered + 1
                continue
            broken += [
                f"{flight.effect.channel} accepted at {now}: {why}"
                for why in _forbidden(state, flight.effect, now, log)
            ]
            outcome = outcomes[attempts % len(outcomes)] if outcomes else "no_answer"
            receipt = ProviderReceipt(provider_ref="sim", outcome=outcome)
            record(event_for(flight.effect, receipt, now))
            flight, attempts = None, attempts + 1
            continue
        decision = decide(state, now)
        if decision.events:
            for event in decision.events:
                record(event)
            continue
        if decision.effect is not None:
            up = _down_until(windows, now)
            latency = slow[step % len(slow)]
            flight = Flight(
                decision.effect, now, up + latency, delivery.deadline(state, decision.effect, now)
            )
            continue
        wake = decision.wake_at
        if poke_at is not None and (wake is None or poke_at <= wake):
            now, poke = due.pop(0)
            _apply(state, poke, step, now, record)
            continue
        if wake is None:
            break
        now = wake
    else:
        raise AssertionError("the fold did not settle")
    return log, broken, undelivered


def _apply(state: CaseState, poke: Poke, n: int, now: datetime, record: Any) -> None:
    rule, command = _seam_command(state, poke, n, now)
    try:
        events = rule(state, command, now)
    except actions.Rejected:
        return
    for event in events:
        record(event)


def _not_sent(kind: Any, flight: Flight, now: datetime, **extra: Any) -> Event:
    effect = flight.effect
    event: Event = kind(
        at=now,
        channel=effect.channel,
        stage=effect.stage,
        action_index=effect.action_index,
        occurrence=effect.occurrence,
        idempotency_key=effect.idempotency_key,
        agreement_seq=effect.agreement_seq,
        **extra,
    )
    return event


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=policies(),
    zone=st.sampled_from(ZONES),
    opened_at=opened_ats,
    script=st.tuples(pokes, seam_pokes).map(lambda both: [*both[0], *both[1]]),
    down=outages,
    slow=latencies,
    outcomes=st.lists(st.sampled_from(OUTCOMES), max_size=6),
    contacts=st.sampled_from([[], CONTACTS[:1], CONTACTS]),
)
def test_no_delivery_breaks_a_rule_whatever_lands_while_it_is_in_flight(
    policy: Policy,
    zone: str,
    opened_at: datetime,
    script: list[Poke],
    down: list[Outage],
    slow: list[timedelta],
    outcomes: list[str],
    contacts: list[dict[str, str]],
) -> None:
    _, broken, _ = fold(policy, zone, opened_at, script, down, slow, outcomes, contacts)
    assert broken == []


def test_the_fold_does_withdraw_and_expire_attempts() -> None:
    """The property is only worth something if attempts really are in flight when holds
    land and when windows close: pin down one of each."""
    from schemas.policy import ActionSpec, Stage

    sms = ActionSpec(channel="sms", template="reminder", every_days=1)
    policy = Policy(name="p", version=1, stages=(Stage(name="s", from_dpd=1, actions=(sms,)),))
    opened = datetime(2026, 11, 2, 2, 0, tzinfo=ZoneInfo("UTC"))  # 10:00 in Shanghai
    # The gateway is down for 30 hours: today's SMS expires at the window's close.
    log, broken, undelivered = fold(
        policy,
        "Asia/Shanghai",
        opened,
        [Poke(timedelta(days=2, hours=1), "pause", "")],
        [Outage(timedelta(0), timedelta(hours=30))],
        [timedelta(seconds=5)],
        [],
        [],
        horizon=timedelta(days=3),
    )
    assert broken == []
    expired = [e for e in log if e.type == "contact_expired"]
    assert expired and all(
        e.at.astimezone(ZoneInfo("Asia/Shanghai")).hour == 21 for e in expired
    ), expired
    sent = [e for e in log if e.type == "contact_attempted"]
    assert sent, "delivered once the gateway is back, at the next opening"
    assert undelivered >= 1
