"""The delivery seam, pure: when an attempt decided earlier must stop, and its deadline.

`decide` says what to send when; the provider delivers later, maybe after retries.
Whatever the guard allowed must still hold when the message goes out, so while an
attempt is in flight the workflow asks `withdrawal` after every event: a reason
cancels the attempt (unless the provider has accepted it already). And an attempt
stops at `deadline`: the end of the borrower's contact window, so a provider that
fails all day never delivers after the window closes (see "The delivery seam" in
docs/architecture.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.channels import CHANNELS
from workflows import compliance
from workflows.compliance import Block
from workflows.decide import Effect
from workflows.state import CaseState

# An attempt ends this long before the window closes, so the provider's last try
# (at most the activity's start-to-close timeout) is over inside the window.
DEADLINE_MARGIN = timedelta(minutes=1)
# An attempt lasts at least this long (decided just before the window closes).
MIN_ATTEMPT = timedelta(seconds=5)
# With no contact window (accelerated policies without one), an attempt lasts a policy
# day, and at least this long: an outage of a few seconds is not a missed day.
MIN_ATTEMPT_WITHOUT_WINDOW = timedelta(minutes=1)


def withdrawal(state: CaseState, effect: Effect) -> Block | None:
    """Why the in-flight `effect` may no longer go out, or None: it still may."""
    if state.is_closed:
        return Block("case_closed", state.closed_reason or "")
    if state.balance.total <= 0:
        return Block("paid", "the balance is paid in full")
    if state.paused is not None:
        return Block("paused", "collection paused")
    if state.dispute is not None:
        return Block("dispute", "the debt is disputed")
    if effect.agreement_seq is not None:
        # A confirmation confirms the agreement in force; it ends with it.
        agreement = state.agreement
        if agreement is None or agreement.seq != effect.agreement_seq:
            return Block("agreement_ended", "the agreement is no longer in force")
    elif state.agreement is not None:
        return Block("agreement", "an agreement holds collection")
    if not CHANNELS[effect.channel].guarded:
        return None
    block = compliance.stopped(state, effect.channel)
    if block is not None:
        return block
    if effect.third_party is not None and effect.third_party in state.third_party_opt_outs:
        return Block("third_party_opt_out", f"emergency contact {effect.third_party} opted out")
    return None


def claim_check(state: CaseState, effect: Effect, now: datetime) -> Block | None:
    """Why a collector may not make the in-flight `effect` at `now` (a task of the
    collectors' queue, claimed): a withdrawal's reason, or the guard's (the contact
    window, the caps, stops); None: go ahead."""
    block = withdrawal(state, effect)
    if block is not None:
        return block
    return compliance.check(state, effect.channel, now)


def retry_at(state: CaseState, deadline: datetime) -> datetime:
    """When an attempt that expired at `deadline` is decided again: the next opening
    after the window's close (a policy without a window: at once)."""
    margin = DEADLINE_MARGIN if compliance.effective_window(state) is not None else timedelta(0)
    opening, _, _ = compliance.next_allowed(state, deadline + margin)
    return opening


def deadline(state: CaseState, effect: Effect, now: datetime) -> datetime | None:
    """When the attempt stops retrying: the end of today's contact window (borrower-local,
    less a margin), or a policy day without a window; None for what is not contact with
    the borrower (a legal handoff), which is retried until the partner answers."""
    if not CHANNELS[effect.channel].deadline:
        return None
    window = compliance.effective_window(state)
    if window is None:
        return now + max(state.policy.day_length, MIN_ATTEMPT_WITHOUT_WINDOW)
    zone = ZoneInfo(state.case.borrower.timezone)
    local = now.astimezone(zone)
    closes = datetime.combine(local.date(), window.end, tzinfo=zone).astimezone(now.tzinfo)
    return max(closes - DEADLINE_MARGIN, now + MIN_ATTEMPT)
