"""The compliance guard: may this contact go out now? Pure.

`decide` asks before every SMS, call or field visit of a case whose rules are pinned
at 2 or more (see "Determinism" in docs/architecture.md). An attempt due outside the
window or on a quiet day is *deferred* to the next allowed opening; one over a cap,
inside the US week after a conversation, after a hard stop or a cease is *skipped*.
Either way the rule is named in an event: nothing is dropped silently.

Hard stops and ceases come from operator actions that did not exist before the guard,
so they apply to every case whatever its rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from schemas.channels import ANY_CEASE, CHANNELS, GUARDED, ON_BORROWER
from schemas.compliance import UNREACHABLE_AFTER_FAILED_CALLS, ComplianceProfile, profile
from schemas.policy import ContactWindow
from workflows.contact_window import next_opening
from workflows.state import CaseState

REAL_DAY = timedelta(days=1)
GUARDED_CHANNELS = GUARDED
MAX_QUIET_DAYS = 60  # a run of quiet days longer than this is a configuration error
# Rules 3: the unanswered-dials cap counts the number about to be dialled (rules 2
# counted the first number's dials whatever number was dialled).
PER_NUMBER_CAP_RULES = 3


@dataclass(frozen=True)
class Block:
    """Why a contact may not go out now; `until` set: deferred to then, else skipped."""

    rule: str
    detail: str
    until: datetime | None = None


def stopped(state: CaseState, channel: str) -> Block | None:
    """A hard stop or a cease that forbids the channel, whatever the case's rules; for a
    third party, also a borrower who can still be reached or no contact left to ask."""
    if state.hard_stops:
        return Block("hard_stop", ", ".join(state.hard_stops))
    spec = CHANNELS[channel]  # type: ignore[index]
    ceased = spec.ceased_by & set(state.ceased)
    if ceased:
        every = "all" in ceased or spec.ceased_by == ANY_CEASE
        return Block("cease_contact", "all channels" if every else channel)
    if spec.address == "third_party_phone":
        return _third_party(state)
    # Rules 2: cases pinned before it dialled the first number whatever it answered.
    if spec.address == "phone" and state.rules >= 2 and state.phone() is None:
        return Block("no_valid_number", "every number of the borrower was reported invalid")
    on = ON_BORROWER.get(spec.address)
    if on is not None and getattr(state.case.borrower, on.field) is None:
        return Block(on.missing_rule, on.missing_detail)
    return None


def _third_party(state: CaseState) -> Block | None:
    """Emergency contacts only once the borrower is unreachable (docs/domain.md rule 3)."""
    if not state.unreachable:
        return Block(
            "borrower_reachable",
            f"third parties only after {UNREACHABLE_AFTER_FAILED_CALLS} consecutive calls "
            f"without a conversation or an invalid number ({state.failed_calls} so far)",
        )
    if not state.case.borrower.emergency_contacts:
        return Block("no_third_party", "the borrower named no emergency contact")
    if state.third_party() is None:
        return Block("third_party_opt_out", "every emergency contact opted out")
    return None


def check(state: CaseState, channel: str, now: datetime) -> Block | None:
    """The first rule that forbids `channel` at `now`, or None: go ahead."""
    block = stopped(state, channel)
    if block is not None:
        return block
    opening, rule, detail = next_allowed(state, now)
    if opening > now:
        return Block(rule, detail, until=opening)
    if CHANNELS[channel].capped:  # type: ignore[index]
        return _call_caps(state, now)
    return None


def effective_window(state: CaseState) -> ContactWindow | None:
    """The policy's window within the profile's (the law's) when days are real days.
    Accelerated policies (demo) keep their own window only: their "days" are seconds."""
    own = state.policy.contact_window
    if state.policy.day_length != REAL_DAY:
        return own
    law = _profile(state).window
    if own is None:
        return law
    start, end = max(own.start, law.start), min(own.end, law.end)
    return ContactWindow(start=start, end=end) if start < end else law


def quiet_country(state: CaseState) -> str | None:
    if state.policy.day_length != REAL_DAY or state.policy.quiet_days == "none":
        return None
    if state.policy.quiet_days == "profile":
        return _profile(state).holidays
    return state.policy.quiet_days


def quiet_day(state: CaseState, day: date) -> str | None:
    """The holiday's name if `day` (borrower-local) is a quiet day."""
    country = quiet_country(state)
    if country is None:
        return None
    return _holidays(country, day.year).get(day)


def next_allowed(state: CaseState, moment: datetime) -> tuple[datetime, str, str]:
    """The first instant at or after `moment` inside the window and not on a quiet day,
    with the rule that held it back (if it is later than `moment`)."""
    window = effective_window(state)
    zone = ZoneInfo(state.case.borrower.timezone)
    at, rule, detail = moment, "", ""
    for _ in range(MAX_QUIET_DAYS):
        if window is not None:
            opened = next_opening(at, window, state.case.borrower.timezone)
            if opened > at and not rule:
                rule = "contact_window"
                detail = f"{window.start:%H:%M}-{window.end:%H:%M} borrower time"
            at = opened
        holiday = quiet_day(state, at.astimezone(zone).date())
        if holiday is None:
            return at, rule, detail
        rule, detail = "quiet_day", holiday
        start = window.start if window is not None else time(0)
        following = at.astimezone(zone).date() + timedelta(days=1)
        at = datetime.combine(following, start, tzinfo=zone).astimezone(moment.tzinfo)
    raise ValueError(f"more than {MAX_QUIET_DAYS} quiet days in a row")


def day_number(state: CaseState, moment: datetime) -> int:
    """The day a moment falls on, for the caps: the borrower's local date (as an ordinal)
    with real days, the policy day since opening with accelerated ones."""
    if state.policy.day_length == REAL_DAY:
        return moment.astimezone(ZoneInfo(state.case.borrower.timezone)).date().toordinal()
    return (moment - state.opened_at) // state.policy.day_length


def _call_caps(state: CaseState, now: datetime) -> Block | None:
    rules = _profile(state)
    today = day_number(state, now)
    days = [(day_number(state, c.at), c) for c in state.calls]
    name = rules.name
    if rules.connected_calls_per_day is not None:
        connected = sum(1 for day, c in days if day == today and c.connected)
        if connected >= rules.connected_calls_per_day:
            return Block(
                "connected_calls_per_day",
                f"{connected} conversations today ({name}: at most "
                f"{rules.connected_calls_per_day})",
            )
    if rules.unanswered_dials_per_number_per_day is not None:
        number = (state.phone() or 0) if state.rules >= PER_NUMBER_CAP_RULES else 0
        dials = sum(
            1 for day, c in days if day == today and not c.connected and c.phone_index == number
        )
        if dials >= rules.unanswered_dials_per_number_per_day:
            return Block(
                "unanswered_dials_per_number_per_day",
                f"{dials} unanswered dials today ({name}: at most "
                f"{rules.unanswered_dials_per_number_per_day})",
            )
    if rules.no_call_days_after_conversation is not None:
        span = rules.no_call_days_after_conversation
        talks = [day for day, c in days if c.connected and today - day < span]
        if talks:
            return Block(
                "no_call_after_conversation",
                f"a conversation {today - max(talks)} day(s) ago ({name}: none within {span} days)",
            )
    if rules.call_attempts_per_7_days is not None:
        attempts = sum(1 for day, _ in days if today - day < 7)
        if attempts >= rules.call_attempts_per_7_days:
            return Block(
                "call_attempts_per_7_days",
                f"{attempts} calls in 7 days ({name}: at most {rules.call_attempts_per_7_days})",
            )
    return None


def _profile(state: CaseState) -> ComplianceProfile:
    # Rules 2 are only pinned for a policy that names a profile (LoanCollection.__init__).
    return profile(state.policy.compliance or "cn")


# Holiday names go into events: always in one language, whatever the worker's locale.
HOLIDAY_LANGUAGE = "en_US"


@lru_cache(maxsize=512)
def _holidays(country: str, year: int) -> dict[date, str]:
    try:
        found = holidays.country_holidays(country, years=year, language=HOLIDAY_LANGUAGE)
    except NotImplementedError:  # the country has no translation: its own names
        found = holidays.country_holidays(country, years=year)
    return dict(found.items())


def preload_holidays(countries: tuple[str, ...], years: range) -> None:
    """Fill the cache outside any workflow (a worker does so at start): the lookup reads
    translation files, which a workflow sandbox would rather not do."""
    for country in countries:
        for year in years:
            _holidays(country, year)
