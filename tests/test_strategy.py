"""Strategy files are data: ordered segment rules, champion and challengers, checked
before use; placement by the hash of the loan id is deterministic."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from dunning.case_files import describe_errors
from dunning.policies import load as load_policy
from dunning.settings import Settings
from dunning.strategies import SHIPPED, StrategyError, assign, choose, load, load_file
from schemas.case import CaseInput
from schemas.events import EVENT_ADAPTER, CaseOpened
from schemas.strategy import Strategy, bucket
from tests.factories import case_input, case_payload
from workflows.evolve import evolve

DUNNING = str(Path(sys.executable).parent / "dunning")

SEGMENTED = """
name = "lender"
version = 1

[[rules]]
segment = "high-risk"
when = { risk_score = { min = 700 } }
policy = "early-negotiation"

[[rules]]
segment = "large-us"
when = { amount = { min = "5000" }, country = ["US"] }
policy = "default"

[[rules]]
segment = "new-instalment"
when = { product = ["consumer-instalment"], days_past_due = { max = 8 }, language = ["zh-CN"] }
policy = "default"
experiment = "early-2027"
challengers = [{ name = "early", policy = "early-negotiation", share = 0.10 }]

[[rules]]
segment = "graded"
when = { segment = ["a", "b"] }
policy = "default"

[[rules]]
segment = "rest"
policy = "default@1"
"""


def _file(tmp_path: Path, text: str, name: str = "lender.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _strategy(text: str = SEGMENTED) -> Strategy:
    import tomllib

    return Strategy.model_validate(tomllib.loads(text))


def _case(loan_id: str = "L-1", **overrides: Any) -> CaseInput:
    return case_input(loan_id, **overrides)


def test_the_first_rule_a_case_meets_is_its_segment() -> None:
    strategy = _strategy()

    def segment(case: CaseInput) -> str:
        return strategy.rule_for(case).segment

    assert segment(_case(risk_score=700)) == "high-risk"
    assert segment(_case(risk_score=699)) == "new-instalment"  # zh-CN instalment at 1 dpd
    us = {"phones": ["+1 212 555 0100"], "timezone": "America/New_York", "language": "en"}
    large = {"principal": "6000.00"}
    # No country given: the first phone's country counts.
    assert segment(_case(borrower=us, loan=large)) == "large-us"
    assert segment(_case(borrower=us)) == "rest"  # not large, not zh-CN
    assert segment(_case(loan={"days_past_due": 8})) == "rest"  # the band's max is exclusive
    assert segment(_case(loan={"days_past_due": 8}, segment="b")) == "graded"
    assert segment(_case(loan={"product": "card"}, segment="c")) == "rest"
    # A condition on a field the case does not carry fails: no risk score, no match.
    assert segment(_case(loan={"days_past_due": 30})) == "rest"


def test_a_country_given_with_the_case_wins_over_the_phones() -> None:
    strategy = _strategy()
    us_phone = {"phones": ["+1 212 555 0100"], "timezone": "America/New_York", "language": "en"}
    case = _case(borrower={**us_phone, "country": "GB"}, loan={"principal": "6000.00"})
    assert strategy.rule_for(case).segment == "rest"


def test_ten_thousand_cases_split_ninety_ten_within_one_and_a_half_points_every_run() -> None:
    from dunning.sim.portfolio import generate

    strategy = _strategy()
    rule = strategy.rules[2]
    cases = generate(10_000, seed=11)

    def arms() -> list[str]:
        return [rule.arm_for(case.loan.id)[0] for case in cases]

    first = arms()
    share = first.count("early") / len(first)
    assert abs(share - 0.10) <= 0.015, share
    assert first.count("champion") + first.count("early") == len(first)
    assert arms() == first  # the same loans land in the same arms, every time
    # ...and in another process too (no per-process hash seed involved).
    again = subprocess.run(
        [
            sys.executable,
            "-c",
            "from schemas.strategy import bucket; "
            "print(','.join(repr(bucket('early-2027', f'L-{i}')) for i in range(5)))",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
        check=True,
    )
    assert again.stdout.strip() == ",".join(repr(bucket("early-2027", f"L-{i}")) for i in range(5))


def test_the_bucket_is_the_documented_sha256() -> None:
    import hashlib

    digest = hashlib.sha256(b"early-2027:L-1001").digest()
    assert bucket("early-2027", "L-1001") == int.from_bytes(digest[:8], "big") / 2**64
    assert 0 <= bucket("x", "y") < 1


def test_assignment_records_segment_experiment_arm_and_the_resolved_policy() -> None:
    strategy = _strategy()
    ids = [f"L-{i}" for i in range(400)]
    placed = [assign(strategy, _case(i), load_policy).assignment for i in ids]
    arms = {p.arm for p in placed if p is not None}
    assert arms == {"champion", "early"}
    for p in placed:
        assert p is not None
        assert (p.strategy, p.segment, p.experiment) == ("lender@1", "new-instalment", "early-2027")
        assert p.policy == ("early-negotiation@1" if p.arm == "early" else "default@1")
    rest = assign(strategy, _case(loan={"days_past_due": 40}), load_policy)
    assert rest.assignment is not None
    assert (rest.assignment.segment, rest.assignment.experiment) == ("rest", None)
    assert (rest.assignment.arm, rest.policy.ref) == ("champion", "default@1")


def test_a_case_naming_its_policy_or_no_strategy_configured_is_not_placed() -> None:
    demo = Settings(strategy="demo")
    named = choose(_case(policy="default"), demo)
    assert named.assignment is None and named.policy.ref == "default@1"
    unset = choose(_case(), Settings(strategy=""))
    assert unset.assignment is None and unset.policy.ref == "default@1"
    assert Settings(strategy="none").strategy is None
    shipped = choose(_case(), Settings())
    assert shipped.assignment is not None
    assert (shipped.assignment.strategy, shipped.assignment.segment) == ("default@1", "all")
    assert (shipped.assignment.arm, shipped.policy.ref) == ("champion", "default@1")


BROKEN = [
    (
        'segment = "rest"\npolicy = "default@1"',
        'segment = "rest"\nwhen = { segment = ["z"] }\npolicy = "default"',
        "rules.4.when: the last rule must be a catch-all (no conditions)",
    ),
    (
        'segment = "graded"\nwhen = { segment = ["a", "b"] }',
        'segment = "graded"',
        "rules.3.when: only the last rule may be the catch-all",
    ),
    (
        "share = 0.10",
        'share = 0.95 }, { name = "more", policy = "default", share = 0.1',
        "challengers: shares add up to 1.05; they must leave the champion a share",
    ),
    (
        'experiment = "early-2027"\n',
        "",
        "rules.2: experiment: a rule with challengers must name its experiment",
    ),
    (
        'segment = "graded"',
        'segment = "high-risk"',
        "rules.3.segment: 'high-risk' is already a segment",
    ),
    (
        'name = "early"',
        'name = "champion"',
        "rules.2.challengers.0.name: 'champion' is the name of the champion arm",
    ),
    ("min = 700", "min = 700, max = 700", "rules.0.when.risk_score: min must be below max"),
    (
        'country = ["US"]',
        'country = ["USA"]',
        "rules.1.when.country.0: String should have at most 2",
    ),
    ('country = ["US"]', 'country = ["XX"]', "rules.1.when.country.0: must be an ISO"),
    ('language = ["zh-CN"]', 'language = ["fr"]', "rules.2.when.language.0: Input should be 'en'"),
    ('segment = "rest"', 'segment = "Rest Of World"', "rules.4.segment: String should match"),
    (
        'policy = "early-negotiation", share',
        'policy = "nope", share',
        "rules.2.challengers.0.policy: no policy named 'nope'",
    ),
    (
        'policy = "default@1"',
        'policy = "default@9"',
        "rules.4.policy: policy 'default' is at version 1; no default@9.toml kept",
    ),
    ("when = { risk_score", "when = { risk = 1, risk_score", "rules.0.when.risk: Extra inputs"),
]


@pytest.mark.parametrize(("good", "bad", "problem"), BROKEN)
def test_an_invalid_strategy_is_refused_with_file_field_and_problem(
    tmp_path: Path, good: str, bad: str, problem: str
) -> None:
    assert good in SEGMENTED
    path = _file(tmp_path, SEGMENTED.replace(good, bad, 1))

    with pytest.raises(StrategyError) as refused:
        load_file(path)

    assert str(refused.value).startswith(f"{path}: ")
    assert problem in str(refused.value), str(refused.value)


def test_strategy_check_and_show_on_the_command_line(tmp_path: Path) -> None:
    for name in ("default", "demo"):
        done = subprocess.run(
            [DUNNING, "strategy", "check", str(SHIPPED / f"{name}.toml")],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"ok: {name}@1")
    bad = _file(tmp_path, SEGMENTED.replace("share = 0.10", "share = 1.5"))
    refused = subprocess.run(
        [DUNNING, "strategy", "check", str(bad)], capture_output=True, text=True
    )
    assert refused.returncode == 1
    assert f"{bad}: rules.2.challengers.0.share: Input should be less than 1" in refused.stderr
    env = {**os.environ, "DUNNING_STRATEGY_DIR": str(tmp_path), "COLUMNS": "160"}
    _file(tmp_path, SEGMENTED)
    shown = subprocess.run(
        [DUNNING, "strategy", "show", "lender"], capture_output=True, text=True, env=env
    )
    assert shown.returncode == 0, shown.stderr
    for text in (
        "high-risk",
        "risk >= 700",
        "balance >= 5000",
        "country in US",
        "early: early-negotiation (10%)",
        "champion: default (90%)",
        "every other case",
    ):
        assert text in shown.stdout, text
    missing = subprocess.run([DUNNING, "strategy", "show", "nope"], capture_output=True, text=True)
    assert missing.returncode == 1 and "no strategy named 'nope'" in missing.stderr


def test_earlier_strategy_versions_are_kept_beside_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dunning.settings import get_settings

    _file(tmp_path, SEGMENTED.replace("version = 1", "version = 2"))
    _file(tmp_path, SEGMENTED, "lender@1.toml")
    monkeypatch.setenv("DUNNING_STRATEGY_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert load("lender").ref == "lender@2"
        assert load("lender@1").ref == "lender@1"
        with pytest.raises(StrategyError, match=r"at version 2; no lender@3\.toml kept"):
            load("lender@3")
    finally:
        get_settings.cache_clear()


def test_the_new_case_fields_are_checked_and_named() -> None:
    for field, value, problem in [
        ("segment", "Gold Tier", "segment: String should match pattern"),
        ("risk_score", 1001, "risk_score: Input should be less than or equal to 1000"),
        ("risk_score", -1, "risk_score: Input should be greater than or equal to 0"),
    ]:
        with pytest.raises(ValidationError) as refused:
            CaseInput.model_validate(case_payload("L-1", **{field: value}))
        assert problem in describe_errors(refused.value)
    case = CaseInput.model_validate(case_payload("L-1", segment="gold", risk_score=640))
    assert (case.segment, case.risk_score, case.policy) == ("gold", 640, None)


def test_a_case_opened_before_strategies_still_loads_and_folds() -> None:
    old: dict[str, Any] = {
        "type": "case_opened",
        "at": "2026-10-02T02:00:00Z",
        "actor": "system",
        "case": {**case_payload("L-old"), "policy": "default"},
        "policy": load_policy("default").model_dump(mode="json"),
        "rules": 2,
    }
    event = EVENT_ADAPTER.validate_python(old)
    assert isinstance(event, CaseOpened)
    assert event.assignment is None and event.case.policy == "default"
    assert event.case.segment is None and event.case.risk_score is None
    state = evolve(None, event)
    assert state.assignment is None
    assert state.balance.total == Decimal("1070.00")
