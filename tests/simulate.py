"""Runs the pure decider the way the workflow does, on a simulated clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from schemas.activity_io import ProviderReceipt
from schemas.case import CaseInput
from schemas.events import CaseOpened, Event
from schemas.policy import Policy
from workflows.decide import Effect, decide
from workflows.effects import event_for
from workflows.evolve import evolve
from workflows.state import CaseState

Interrupt = Callable[[CaseState, datetime], list[Event]]
Outcome = Callable[[Effect, datetime], str]


def _no_answer(effect: Effect, now: datetime) -> str:
    return "no_answer"


def run(
    case: CaseInput,
    policy: Policy,
    opened_at: datetime,
    *,
    until: datetime | None = None,
    interrupts: dict[datetime, Interrupt] | None = None,
    max_steps: int = 10_000,
    rules: int = 2,
    outcome: Outcome = _no_answer,
    on_effect: Callable[[CaseState, Effect, datetime], None] | None = None,
) -> tuple[CaseState, list[Event]]:
    """Fold decisions until the case closes, waits forever, or `until` passes.

    `interrupts` inject events (payments, pauses) at given instants, as signals would;
    `rules` is the decision-rules version the case is pinned to (CaseOpened.rules),
    `outcome` what the provider answers, `on_effect` sees every effect decided.
    """
    opened = CaseOpened(at=opened_at, case=case, policy=policy, rules=rules)
    state = evolve(None, opened)
    log: list[Event] = [opened]
    pending = sorted((interrupts or {}).items())
    now = opened_at
    for _ in range(max_steps):
        decision = decide(state, now)
        if decision.events:
            for event in decision.events:
                state = evolve(state, event)
                log.append(event)
            continue
        if decision.effect is not None:
            if on_effect is not None:
                on_effect(state, decision.effect, now)
            receipt = ProviderReceipt(provider_ref="sim", outcome=outcome(decision.effect, now))
            event = event_for(decision.effect, receipt, now)
            state = evolve(state, event)
            log.append(event)
            continue
        if state.is_closed:
            break
        wake = decision.wake_at
        if pending and (wake is None or pending[0][0] <= wake):
            now, inject = pending.pop(0)
            for event in inject(state, now):
                state = evolve(state, event)
                log.append(event)
            continue
        if wake is None or (until is not None and wake > until):
            break
        now = wake
    else:
        raise AssertionError("simulation did not settle")
    return state, log
