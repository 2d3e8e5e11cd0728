"""Strategy files: TOML, validated into `schemas.strategy.Strategy`, found by name
like policies (`NAME.toml`, earlier versions kept as `NAME@N.toml`).

Shipped strategies live beside this module; `DUNNING_STRATEGY_DIR` adds a folder that
is searched first. The active strategy (`DUNNING_STRATEGY`) chooses the policy of
every case that does not name its own, once, when the case opens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from dunning import policies
from dunning.datafiles import find_versioned, read_toml
from dunning.settings import Settings, get_settings
from schemas.case import CaseInput
from schemas.policy import Policy
from schemas.strategy import Assignment, Strategy

SHIPPED = Path(__file__).parent
FALLBACK_POLICY = "default"  # cases that name no policy, with no strategy configured

PolicyLoader = Callable[[str], Policy]


class StrategyError(ValueError):
    """A strategy that cannot be found or is invalid; the message names file and field."""


def search_path(settings: Settings | None = None) -> list[Path]:
    extra = (settings or get_settings()).strategy_dir
    return [extra, SHIPPED] if extra is not None else [SHIPPED]


def load_file(path: Path, load_policy: PolicyLoader = policies.load) -> Strategy:
    """A strategy file, validated; every policy it names must load too."""
    strategy = read_toml(path, Strategy, StrategyError)
    for r, rule in enumerate(strategy.rules):
        refs = [(f"rules.{r}.policy", rule.policy)] + [
            (f"rules.{r}.challengers.{c}.policy", challenger.policy)
            for c, challenger in enumerate(rule.challengers)
        ]
        for field, ref in refs:
            try:
                load_policy(ref)
            except policies.PolicyError as exc:
                raise StrategyError(f"{path}: {field}: {exc}") from exc
    return strategy


def load(ref: str, settings: Settings | None = None) -> Strategy:
    """Strategy `NAME` (its current version) or `NAME@VERSION`, from the settings'
    `strategy_dir` and then the shipped ones."""
    return find_versioned(ref, search_path(settings), _load_unchanged, StrategyError, "strategy")


def _load_unchanged(path: Path) -> Strategy:
    """`load_file`, remembered for the file's exact content: every case opened reads the
    active strategy, and checking all its policies each time would double the cost of
    an opening. The policy a case gets is still read afresh for each case
    (`dunning.policies.load_file`)."""
    try:
        content = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise StrategyError(f"{path}: {exc}") from exc
    return _load_content(path, content)


@lru_cache(maxsize=64)
def _load_content(path: Path, sha256: str) -> Strategy:
    return load_file(path)


@dataclass(frozen=True)
class Chosen:
    """The policy a case opens with, and how the strategy chose it (None: the case did)."""

    policy: Policy
    assignment: Assignment | None


def assign(strategy: Strategy, case: CaseInput, load_policy: PolicyLoader) -> Chosen:
    """Place a case: its segment (the first rule it meets), its arm (the hash of its
    loan id in the rule's experiment), and that arm's policy, resolved to NAME@VERSION."""
    rule = strategy.rule_for(case)
    arm, ref = rule.arm_for(case.loan.id)
    policy = load_policy(ref)
    return Chosen(
        policy=policy,
        assignment=Assignment(
            strategy=strategy.ref,
            segment=rule.segment,
            experiment=rule.experiment,
            arm=arm,
            policy=policy.ref,
        ),
    )


def choose(case: CaseInput, settings: Settings) -> Chosen:
    """The policy for a case being opened: the one it names; else the active
    strategy's choice; else `default` when no strategy is configured. Raises
    PolicyError or StrategyError (the message names file and field)."""
    if case.policy is not None:
        return Chosen(policies.load(case.policy), None)
    if settings.strategy is None:
        return Chosen(policies.load(FALLBACK_POLICY), None)
    return assign(load(settings.strategy, settings), case, policies.load)


def cached_policies() -> PolicyLoader:
    """`policies.load` remembering what it loaded: for folding many cases at once."""
    return cache(policies.load)
