"""A portfolio through policies or a strategy: place every case, fold it, sum up.

- **policies** (`--policy a --policy b`): every case runs under each policy; the
  groups are the policies, and a comparison between them is paired (same cases).
- **strategy**: every case runs under the policy the strategy assigns it, as
  `starter.open_case` would; the groups are `segment/arm`.

The response model's segment of a case is always the strategy's segment (the first
rule the case meets), so a borrower behaves the same whichever policy it is run under.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dunning.sim import fold
from dunning.sim.borrower import Borrower
from dunning.sim.portfolio import opening
from dunning.sim.responses import ResponseModel
from dunning.sim.results import CaseResult, Summary, case_result, summarise
from dunning.strategies import PolicyLoader, assign
from schemas.case import CaseInput
from schemas.policy import Policy
from schemas.strategy import Assignment, Strategy
from workflows.state import CURRENT_RULES


@dataclass(frozen=True)
class Placement:
    """A case, the policy it runs under, and the group its figures count in."""

    group: str
    case: CaseInput
    policy: Policy
    segment: str
    assignment: Assignment | None = None


def by_policies(
    cases: Iterable[CaseInput], policies: Sequence[Policy], strategy: Strategy
) -> list[Placement]:
    placed = []
    for case in cases:
        segment = strategy.rule_for(case).segment
        placed += [Placement(p.ref, case, p, segment) for p in policies]
    return placed


def by_strategy(
    cases: Iterable[CaseInput], strategy: Strategy, load_policy: PolicyLoader
) -> list[Placement]:
    placed = []
    for case in cases:
        chosen = assign(strategy, case, load_policy)
        a = chosen.assignment
        assert a is not None
        placed.append(Placement(f"{a.segment}/{a.arm}", case, chosen.policy, a.segment, a))
    return placed


@dataclass(frozen=True)
class Clock:
    """The simulated clock: cases open at `start` plus a share of `spread` (by loan
    id) and are followed for `days` policy days."""

    start: datetime
    days: int
    spread: timedelta = timedelta(hours=10)

    def opened_at(self, case: CaseInput) -> datetime:
        return opening(self.start, case.loan.id, self.spread)


def simulate_case(
    placement: Placement,
    model: ResponseModel,
    seed: int,
    opened_at: datetime,
    days: int,
    *,
    keep_log: bool = False,
) -> CaseResult:
    """Fold one case with its simulated borrower until it closes or `days` pass."""
    policy = placement.policy
    borrower = Borrower.for_case(
        model, placement.segment, seed, placement.case.loan.id, policy.day_length
    )
    _, log = fold.run(
        placement.case,
        policy,
        opened_at,
        until=opened_at + days * policy.day_length,
        rules=CURRENT_RULES if policy.compliance is not None else 1,
        outcome=borrower.outcome,
        react=borrower.react,
        assignment=placement.assignment,
    )
    result = case_result(
        log,
        group=placement.group,
        segment=placement.segment,
        day_length=policy.day_length,
        costs=model.costs,
        refused=borrower.refused,
    )
    if keep_log:
        result.events, result.actions = log, borrower.actions
    return result


@dataclass(frozen=True)
class Simulation:
    seed: int
    days: int
    start: datetime
    model: str
    groups: dict[str, Summary]
    results: dict[str, list[CaseResult]]


def simulate(
    placements: Sequence[Placement],
    model: ResponseModel,
    seed: int,
    clock: Clock,
    *,
    keep_logs: bool = False,
    on_case: Callable[[], None] | None = None,
) -> Simulation:
    results: dict[str, list[CaseResult]] = {}
    for placement in placements:
        result = simulate_case(
            placement,
            model,
            seed,
            clock.opened_at(placement.case),
            clock.days,
            keep_log=keep_logs,
        )
        results.setdefault(placement.group, []).append(result)
        if on_case is not None:
            on_case()
    groups = {name: summarise(name, rows, clock.days) for name, rows in results.items()}
    return Simulation(seed, clock.days, clock.start, model.ref, groups, results)


def as_document(
    result: Simulation,
    mode: str,
    strategy: str | None,
    currencies: list[str],
    comparison: dict[str, Any] | None,
) -> dict[str, Any]:
    """The whole simulation as JSON-ready data (`dunning simulate --json`): the run's
    parameters, per group every figure (`Summary.as_json`, the recovery curve for every
    day), and the comparison if one was asked for. What an HTML page would plot."""
    return {
        "seed": result.seed,
        "days": result.days,
        "start": result.start.isoformat(),
        "model": result.model,
        "mode": mode,
        "strategy": strategy,
        "currency": currencies[0] if currencies else None,
        "groups": {name: summary.as_json() for name, summary in result.groups.items()},
        "compare": comparison,
    }
