"""Property tests of the compliance guard: random policies, time zones (DST ones among
them), operator actions, call outcomes and clock jumps, folded with evolve/decide as the
workflow folds them. Whatever happens, no contact effect is decided outside the window,
on a quiet day, over a cap, inside the US week after a conversation, during a hold,
after a hard stop or a cease, or to a third party before the borrower is unreachable
or after that third party opted out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.activity_io import ProviderReceipt
from schemas.commands import (
    CeaseContact,
    DisputeOpen,
    DisputeResolve,
    HardStop,
    Pause,
    Payment,
    Resume,
    ThirdPartyOptOut,
)
from schemas.compliance import (
    CONNECTED_OUTCOMES,
    INVALID_NUMBER_OUTCOMES,
    PROFILES,
    UNREACHABLE_AFTER_FAILED_CALLS,
)
from schemas.events import CaseOpened, ContactAttempted, Event
from schemas.policy import ActionSpec, Policy, Stage
from tests.factories import case_input
from workflows import actions, compliance
from workflows.decide import Effect, decide
from workflows.effects import event_for
from workflows.evolve import evolve
from workflows.state import CaseState

ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "Asia/Shanghai"]
OUTCOMES = [
    "no_answer",
    "answered",
    "wrong_number",
    "promise",
    "busy",
    "voicemail",
    "invalid_number",
]
CONTACTS = [
    {"name": "Li Na", "phone": "+86 137 0013 7000", "relation": "sibling"},
    {"name": "Zhang Wei", "phone": "+86 136 0013 6000", "relation": "friend"},
]
OP = {"operator": "op-1", "reason": "property test"}
KINDS = ["pay", "pause", "resume", "dispute", "resolve", "cease", "hard_stop", "opt_out"]


@st.composite
def actions_specs(draw: st.DrawFn) -> ActionSpec:
    channel = draw(st.sampled_from(["sms", "call", "call", "third_party_sms"]))
    template = {"sms": "reminder", "third_party_sms": "third_party"}.get(channel)
    if draw(st.booleans()):
        return ActionSpec(
            channel=channel,
            template=template,
            every_days=draw(st.integers(1, 4)),
            start_day=draw(st.integers(0, 3)),
        )
    days = draw(st.lists(st.integers(0, 12), min_size=1, max_size=4, unique=True))
    return ActionSpec(channel=channel, template=template, at_days=tuple(sorted(days)))


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    count = draw(st.integers(1, 3))
    starts = sorted(draw(st.lists(st.integers(1, 40), min_size=count, max_size=count, unique=True)))
    stages = tuple(
        Stage(
            name=f"s{i}",
            from_dpd=start,
            actions=tuple(draw(st.lists(actions_specs(), min_size=1, max_size=4))),
        )
        for i, start in enumerate(starts)
    )
    window = draw(st.sampled_from([None, {"start": "09:00:00", "end": "20:00:00"}]))
    return Policy.model_validate(
        {
            "name": "prop",
            "version": 1,
            "stages": stages,
            "contact_window": window,
            "compliance": draw(st.sampled_from(["cn", "us"])),
        }
    )


@dataclass(frozen=True)
class Poke:
    after: timedelta
    kind: str
    arg: str


pokes = st.lists(
    st.builds(
        Poke,
        after=st.timedeltas(min_value=timedelta(minutes=1), max_value=timedelta(days=6)),
        kind=st.sampled_from(KINDS),
        arg=st.sampled_from(
            ["sms", "call", "all", "bankruptcy", "deceased", "represented", "0", "1"]
        ),
    ),
    max_size=8,
)


def _command(state: CaseState, poke: Poke, n: int) -> tuple[Any, Any]:
    now_rules: dict[str, Any] = {
        "pay": (actions.payment, lambda: Payment(amount=Decimal("10.00"), reference=f"P-{n}")),
        "pause": (actions.pause, lambda: Pause(**OP)),
        "resume": (actions.resume, lambda: Resume(**OP)),
        "dispute": (actions.open_dispute, lambda: DisputeOpen(**OP)),
        "resolve": (actions.resolve_dispute, lambda: DisputeResolve(outcome="for_lender", **OP)),
        "cease": (
            actions.cease_contact,
            lambda: CeaseContact(channel=poke.arg if poke.arg in ("sms", "call") else "all", **OP),
        ),
        "hard_stop": (
            actions.hard_stop,
            lambda: HardStop(
                kind=poke.arg if poke.arg in ("deceased", "represented") else "bankruptcy", **OP
            ),
        ),
        "opt_out": (
            actions.third_party_opt_out,
            lambda: ThirdPartyOptOut(contact=1 if poke.arg == "1" else 0, **OP),
        ),
    }
    rule, build = now_rules[poke.kind]
    return rule, build()


def _violations(state: CaseState, effect: Effect, now: datetime, log: list[Event]) -> list[str]:
    """Every rule the effect would break, checked from the log, not from the guard."""
    found: list[str] = []
    policy, zone = state.policy, ZoneInfo(state.case.borrower.timezone)
    law = PROFILES[policy.compliance]
    local = now.astimezone(zone)
    starts = [law.window.start] + ([policy.contact_window.start] if policy.contact_window else [])
    ends = [law.window.end] + ([policy.contact_window.end] if policy.contact_window else [])
    if not max(starts) <= local.time() < min(ends):
        found.append(f"outside the window at {local}")
    if compliance.quiet_day(state, local.date()) is not None:
        found.append(f"on a quiet day {local.date()}")
    if state.is_frozen:
        found.append("during a hold")
    if state.hard_stops:
        found.append("after a hard stop")
    if "all" in state.ceased or effect.channel in state.ceased:
        found.append("after a cease")
    if effect.channel == "third_party_sms":
        return found + _third_party_violations(state, effect, log)
    if effect.channel != "call":
        return found
    calls = [
        (e.at.astimezone(zone).date(), e.outcome in CONNECTED_OUTCOMES)
        for e in log
        if isinstance(e, ContactAttempted) and e.channel == "call"
    ]
    today: date = local.date()
    if law.connected_calls_per_day is not None:
        if sum(1 for d, c in calls if d == today and c) >= law.connected_calls_per_day:
            found.append("over the connected-calls cap")
    if law.unanswered_dials_per_number_per_day is not None:
        dials = sum(1 for d, c in calls if d == today and not c)
        if dials >= law.unanswered_dials_per_number_per_day:
            found.append("over the unanswered-dials cap")
    if law.call_attempts_per_7_days is not None:
        if sum(1 for d, _ in calls if (today - d).days < 7) >= law.call_attempts_per_7_days:
            found.append("over the 7-day attempts cap")
    if law.no_call_days_after_conversation is not None:
        if any(c and (today - d).days < law.no_call_days_after_conversation for d, c in calls):
            found.append("within 7 days of a conversation")
    return found


def _third_party_violations(state: CaseState, effect: Effect, log: list[Event]) -> list[str]:
    """Recomputed from the log: unreachable = the last 3 calls had no conversation, or
    every number of the borrower was reported invalid; and the contact has not opted out."""
    found: list[str] = []
    attempts = [e for e in log if isinstance(e, ContactAttempted) and e.third_party is None]
    calls = [e.outcome in CONNECTED_OUTCOMES for e in attempts if e.channel == "call"]
    since_talk = calls[::-1].index(True) if True in calls else len(calls)
    invalid = {e.phone_index for e in attempts if e.outcome in INVALID_NUMBER_OUTCOMES}
    every_number_invalid = len(invalid) >= len(state.case.borrower.phones)
    if since_talk < UNREACHABLE_AFTER_FAILED_CALLS and not every_number_invalid:
        found.append(f"to a third party after {since_talk} failed call(s)")
    opted = {e.contact for e in log if e.type == "third_party_opted_out"}  # type: ignore[union-attr]
    contacts = len(state.case.borrower.emergency_contacts)
    if effect.third_party is None or effect.third_party in opted or effect.third_party >= contacts:
        found.append(f"to third party {effect.third_party} (opted out: {sorted(opted)})")
    return found


def fold(
    policy: Policy,
    zone: str,
    opened_at: datetime,
    script: list[Poke],
    outcomes: list[str],
    jumps: list[timedelta],
    horizon: timedelta,
    contacts: list[dict[str, str]] | None = None,
) -> tuple[CaseState, list[Event], list[str]]:
    case = case_input(borrower={"timezone": zone, "emergency_contacts": contacts or []})
    opened = CaseOpened(at=opened_at, case=case, policy=policy, rules=2)
    state = evolve(None, opened)
    log: list[Event] = [opened]
    broken: list[str] = []
    now, end = opened_at, opened_at + horizon
    at = opened_at
    due = []
    for poke in script:
        at += poke.after
        due.append((at, poke))
    calls = 0
    for step in range(5000):
        decision = decide(state, now)
        new: list[Event] = list(decision.events)
        if decision.effect is not None:
            broken += _violations(state, decision.effect, now, log)
            outcome = outcomes[calls % len(outcomes)] if outcomes else "no_answer"
            calls += decision.effect.channel == "call"
            receipt = ProviderReceipt(provider_ref="sim", outcome=outcome)
            new.append(event_for(decision.effect, receipt, now))
        if new:
            for event in new:
                state = evolve(state, event)
                log.append(event)
            continue
        if state.is_closed:
            break
        wake = decision.wake_at
        if due and (wake is None or due[0][0] <= wake):
            now, poke = due.pop(0)
            if now > end:
                break
            rule, command = _command(state, poke, step)
            try:
                events = rule(state, command, now)
            except actions.Rejected:
                events = []
            for event in events:
                state = evolve(state, event)
                log.append(event)
            continue
        if wake is None or wake > end:
            break
        # A worker that was down, or a slow timer: the case wakes late, never early.
        now = wake + (jumps[step % len(jumps)] if jumps else timedelta(0))
    else:
        raise AssertionError("the fold did not settle")
    return state, log, broken


opened_ats = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)
jump_lists = st.lists(
    st.sampled_from([timedelta(0), timedelta(0), timedelta(minutes=7), timedelta(hours=13)]),
    max_size=5,
)


@settings(max_examples=1400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=policies(),
    zone=st.sampled_from(ZONES),
    opened_at=opened_ats,
    script=pokes,
    outcomes=st.lists(st.sampled_from(OUTCOMES), max_size=6),
    jumps=jump_lists,
    contacts=st.sampled_from([[], CONTACTS[:1], CONTACTS]),
)
def test_no_contact_breaks_a_rule(
    policy: Policy,
    zone: str,
    opened_at: datetime,
    script: list[Poke],
    outcomes: list[str],
    jumps: list[timedelta],
    contacts: list[dict[str, str]],
) -> None:
    _, _, broken = fold(
        policy, zone, opened_at, script, outcomes, jumps, timedelta(days=21), contacts
    )
    assert broken == []


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    policy=policies(),
    zone=st.sampled_from(ZONES),
    opened_at=opened_ats,
    kind=st.sampled_from(["bankruptcy", "deceased", "represented"]),
    stop_after=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=5)),
    outcomes=st.lists(st.sampled_from(OUTCOMES), max_size=4),
)
def test_a_hard_stop_is_never_lifted_and_every_blocked_attempt_is_named(
    policy: Policy,
    zone: str,
    opened_at: datetime,
    kind: str,
    stop_after: timedelta,
    outcomes: list[str],
) -> None:
    script = [
        Poke(stop_after, "pause", ""),
        Poke(timedelta(minutes=1), "hard_stop", kind),
        Poke(timedelta(hours=1), "resume", ""),
    ]
    state, log, broken = fold(policy, zone, opened_at, script, outcomes, [], timedelta(days=21))
    assert broken == []
    stopped = next((e.at for e in log if e.type == "hard_stopped"), None)
    if stopped is None:
        return  # the case closed before the stop
    assert state.hard_stops == [kind]
    after = [e for e in log if e.at > stopped]
    assert not [e for e in after if e.type == "contact_attempted"]
    skipped = [e for e in after if e.type == "contact_skipped"]
    assert all(e.rule == "hard_stop" for e in skipped)  # type: ignore[union-attr]


def test_third_parties_only_once_unreachable_and_never_after_their_opt_out() -> None:
    """The property above can only pass if third-party messages never go out; this pins
    down that they do, to the right person, at the right moment."""
    spec = ActionSpec(channel="third_party_sms", template="third_party", every_days=1)
    call = ActionSpec(channel="call", every_days=1)
    policy = Policy(
        name="tp", version=1, stages=(Stage(name="s", from_dpd=1, actions=(call, spec)),)
    )
    opened = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a Monday
    opt_out = Poke(timedelta(days=4, hours=1), "opt_out", "0")
    _, log, broken = fold(
        policy, "Asia/Shanghai", opened, [opt_out], ["no_answer"], [], timedelta(days=8), CONTACTS
    )
    assert broken == []
    third = [e for e in log if getattr(e, "channel", None) == "third_party_sms"]
    sent = [e for e in third if isinstance(e, ContactAttempted)]
    skipped = [e for e in third if e.type == "contact_skipped"]
    # Days 0-2: a call each day, none answered; the third-party message waits for the third.
    assert {e.rule for e in skipped if e.at < sent[0].at} == {"borrower_reachable"}  # type: ignore[union-attr]
    failed_before = [e for e in log if e.type == "contact_attempted" and e.channel == "call"]
    assert len([e for e in failed_before if e.at <= sent[0].at]) >= UNREACHABLE_AFTER_FAILED_CALLS
    # Contact 0 until it opted out on day 4, then contact 1 only.
    opted_at = next(e.at for e in log if e.type == "third_party_opted_out")
    assert {e.third_party for e in sent if e.at < opted_at} == {0}
    assert {e.third_party for e in sent if e.at > opted_at} == {1}
    answered = fold(
        policy, "Asia/Shanghai", opened, [], ["answered"], [], timedelta(days=8), CONTACTS
    )[1]
    assert not [
        e for e in answered if isinstance(e, ContactAttempted) and e.channel == "third_party_sms"
    ], "a borrower who answers is never reported to a third party"


def test_a_wrong_number_moves_to_the_next_and_with_none_left_the_borrower_is_unreachable() -> None:
    from dunning.sim import fold

    call = ActionSpec(channel="call", every_days=1)
    spec = ActionSpec(channel="third_party_sms", template="third_party", every_days=1)
    policy = Policy(
        name="tp", version=1, stages=(Stage(name="s", from_dpd=1, actions=(call, spec)),)
    )
    opened = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai, a Monday
    case = case_input(borrower={"emergency_contacts": CONTACTS[:1]})  # two phones
    _, log = fold.run(
        case,
        policy,
        opened,
        until=opened + timedelta(days=3, hours=1),
        outcome=lambda effect, now: "wrong_number",
    )
    calls = [e for e in log if isinstance(e, ContactAttempted) and e.channel == "call"]
    assert [e.phone_index for e in calls] == [0, 1], "the second number after the first failed"
    skipped = [e for e in log if e.type == "contact_skipped" and e.channel == "call"]  # type: ignore[union-attr]
    assert skipped and {e.rule for e in skipped} == {"no_valid_number"}  # type: ignore[union-attr]
    third = [e for e in log if isinstance(e, ContactAttempted) and e.channel == "third_party_sms"]
    assert third and log.index(third[0]) > log.index(calls[1]), "only once every number failed"
