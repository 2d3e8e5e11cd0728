"""One case, folded the way the `LoanCollection` workflow folds it, on a simulated clock.

The loop is the workflow's main loop without Temporal: `decide` says what to do now
(events, an effect, or when to wake up); an effect's provider answer becomes its event
through `workflows.effects.event_for`; messages from outside (a payment, a promise, a
pause) arrive as interrupts at their instants and are folded with `evolve`, and an
agreement is followed by its `AgreementRecorded` event, as the workflow's Update
handler records it.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from datetime import datetime

from schemas.activity_io import ProviderReceipt
from schemas.case import CaseInput
from schemas.events import AgreementRecorded, CaseOpened, Event
from schemas.policy import Policy
from schemas.strategy import Assignment
from workflows.decide import Effect, decide
from workflows.effects import event_for
from workflows.evolve import evolve
from workflows.loan_collection import AGREEMENT_KINDS
from workflows.state import CURRENT_RULES, CaseState

Interrupt = Callable[[CaseState, datetime], list[Event]]
Outcome = Callable[[Effect, datetime], str]
# Called after every event; returns interrupts to schedule (a borrower's response).
React = Callable[[CaseState, Event, datetime], list[tuple[datetime, Interrupt]]]

SIMULATED = "sim"


def _no_answer(effect: Effect, now: datetime) -> str:
    return "no_answer"


class SimulationStuck(RuntimeError):
    """The fold did not settle within its step budget: a bug, never an outcome."""


def run(
    case: CaseInput,
    policy: Policy,
    opened_at: datetime,
    *,
    until: datetime | None = None,
    interrupts: dict[datetime, Interrupt] | None = None,
    max_steps: int = 10_000,
    rules: int = CURRENT_RULES,
    outcome: Outcome = _no_answer,
    on_effect: Callable[[CaseState, Effect, datetime], None] | None = None,
    react: React | None = None,
    assignment: Assignment | None = None,
) -> tuple[CaseState, list[Event]]:
    """Fold decisions until the case closes, waits forever, or `until` passes.

    `interrupts` inject events (payments, pauses) at given instants, as signals and
    Updates would; `react` may schedule more after any event. `rules` is the
    decision-rules version the case is pinned to (CaseOpened.rules), `outcome` what
    the provider answers, `on_effect` sees every effect decided.
    """
    opened = CaseOpened(at=opened_at, case=case, policy=policy, rules=rules, assignment=assignment)
    state = evolve(None, opened)
    log: list[Event] = [opened]
    pending: list[tuple[datetime, int, Interrupt]] = []
    for order, (at, inject) in enumerate(sorted((interrupts or {}).items())):
        heapq.heappush(pending, (at, order, inject))
    counter = len(pending)

    def apply(event: Event, now: datetime) -> None:
        nonlocal state, counter
        state = evolve(state, event)
        log.append(event)
        if react is not None:
            for at, inject in react(state, event, now):
                counter += 1
                heapq.heappush(pending, (max(at, now), counter, inject))

    now = opened_at
    for _ in range(max_steps):
        decision = decide(state, now)
        if decision.events:
            for event in decision.events:
                apply(event, now)
            continue
        if decision.effect is not None:
            if on_effect is not None:
                on_effect(state, decision.effect, now)
            answer = outcome(decision.effect, now)
            receipt = ProviderReceipt(provider_ref=SIMULATED, outcome=answer)
            apply(event_for(decision.effect, receipt, now), now)
            continue
        if state.is_closed:
            break
        wake = decision.wake_at
        if pending and (wake is None or pending[0][0] <= wake):
            at, _, inject = heapq.heappop(pending)
            if until is not None and at > until:
                break
            now = at
            for event in inject(state, now):
                apply(event, now)
                if event.type in AGREEMENT_KINDS and not state.is_closed:
                    apply(_agreement_recorded(event, state.seq, now), now)
            continue
        if wake is None or (until is not None and wake > until):
            break
        now = wake
    else:
        raise SimulationStuck(f"{state.case_id}: no settled state after {max_steps} steps")
    return state, log


def _agreement_recorded(agreed: Event, seq: int, now: datetime) -> AgreementRecorded:
    """What the workflow records once the agreement document is stored and sent."""
    return AgreementRecorded(
        at=now,
        kind=AGREEMENT_KINDS[agreed.type],
        agreement_seq=seq,
        document_id=f"{SIMULATED}-{seq}",
        sha256="0" * 64,
        provider_ref=SIMULATED,
    )
