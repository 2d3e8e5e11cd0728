"""`dunning simulate` on the production decider: figures a hand can check, responses
refused by the case's own rules, reproducibility from the seed, and bad inputs named."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dunning.sim.portfolio import generate, opening
from dunning.sim.responses import ResponseModel, ResponseModelError, load_file
from dunning.sim.results import compare
from dunning.sim.runner import Clock, by_policies, by_strategy, simulate
from dunning.strategies import cached_policies
from dunning.strategies import load as load_strategy
from schemas.events import ContactAttempted, PaymentReceived, PromiseMade
from tests.factories import case_payload

DUNNING = str(Path(sys.executable).parent / "dunning")
START = datetime(2027, 3, 1, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai, a working Monday
POLICIES = cached_policies()


def _model(**overrides: Any) -> ResponseModel:
    data: dict[str, Any] = {"name": "t", "responses": [{"answer": 0}]}
    data.update(overrides)
    return ResponseModel.model_validate(data)


def _run(model: ResponseModel, n: int = 40, days: int = 120, policy: str = "default") -> Any:
    cases = generate(n, seed=3)
    placed = by_policies(cases, [POLICIES(policy)], load_strategy("default"))
    return simulate(placed, model, 9, Clock(START, days, timedelta(hours=4)))


def test_borrowers_who_pay_on_the_first_sms_close_paid_on_day_zero() -> None:
    model = _model(responses=[{"channel": "sms", "answer": 1, "pay_full": 1}])
    result = _run(model)
    summary = result.groups["default@1"]
    assert summary.closed == {"paid": 40}
    assert summary.recovery_rate == 1.0 and summary.curve[0] == 1.0
    assert summary.contacts_per_case == {
        "sms": 1.0,
        "call": 0.0,
        "third_party_sms": 0.0,
        "field_visit": 0.0,
        "legal_handoff": 0.0,
        "email": 0.0,
        "letter": 0.0,
        "agent_call": 0.0,
    }
    assert summary.recovered == summary.at_open
    assert summary.cost == pytest.approx(40 * 0.05)
    assert summary.cost_per_recovered == pytest.approx(40 * 0.05 / float(summary.recovered))


def test_silent_borrowers_run_the_whole_default_policy_to_legal() -> None:
    result = _run(_model(), n=20)
    summary = result.groups["default@1"]
    assert summary.closed == {"transferred_to_legal": 20}
    assert summary.recovery_rate == 0.0 and summary.cost_per_recovered is None
    assert summary.contacts_per_case["legal_handoff"] == 1.0
    assert summary.contacts_per_case["field_visit"] == 1.0
    # Three unanswered calls make a borrower unreachable: only those who named an
    # emergency contact get a third-party message; the others are skipped by rule.
    assert summary.skips.get("no_third_party", 0) > 0
    for case in result.results["default@1"]:
        assert case.closed_day is not None and case.closed_day <= 90


def test_a_promise_past_the_policys_limit_is_refused_by_the_case_not_recorded() -> None:
    # promise_days 40 > the default policy's promise_max_days (30): the rule refuses it.
    model = _model(
        promise_days=40,
        responses=[{"channel": "call", "answer": 1, "promise": 1, "keep": 1}],
    )
    cases = generate(5, seed=3)
    placed = by_policies(cases, [POLICIES("default")], load_strategy("default"))
    from dunning.sim.runner import simulate_case

    one = simulate_case(placed[0], model, 1, START, 30, keep_log=True)
    assert one.events is not None and one.actions is not None
    assert not [e for e in one.events if isinstance(e, PromiseMade)]
    refused = [a for a in one.actions if not a.accepted]
    assert refused and all(a.update == "promise_to_pay" for a in refused)
    assert "more than 30 days ahead" in (refused[0].refusal or "")
    assert one.refused["promise_to_pay"] == len(refused)


def test_a_kept_promise_pays_through_the_payment_rule_and_closes_the_case() -> None:
    model = _model(responses=[{"channel": "call", "answer": 1, "promise": 1, "keep": 1}])
    cases = generate(3, seed=3)
    placed = by_policies(cases, [POLICIES("default")], load_strategy("default"))
    from dunning.sim.runner import simulate_case

    one = simulate_case(placed[0], model, 1, START, 60, keep_log=True)
    assert one.events is not None and one.actions is not None
    kinds = [e.type for e in one.events]
    made = kinds.index("promise_made")
    assert kinds[made + 1] == "agreement_recorded"  # as the Update handler records it
    payment = next(e for e in one.events if isinstance(e, PaymentReceived))
    promise = next(e for e in one.events if isinstance(e, PromiseMade))
    assert payment.at - promise.at == timedelta(days=7)
    assert payment.amount == promise.amount == placed[0].case.loan.outstanding
    assert payment.applied_fees == Decimal("20.00")  # penalty, fees, interest, principal
    assert kinds[-1] == "case_closed" and one.closed_reason == "paid"
    assert one.promises == one.promises_kept == 1
    calls = [e for e in one.events if isinstance(e, ContactAttempted) and e.channel == "call"]
    assert [c.outcome for c in calls] == ["answered"]


def test_strategy_mode_groups_by_segment_and_arm() -> None:
    cases = generate(200, seed=4)
    placed = by_strategy(cases, load_strategy("demo"), POLICIES)
    result = simulate(placed, _model(), 1, Clock(START, 20))
    assert set(result.groups) == {
        "small-balance/champion",
        "standard/champion",
        "standard/daily-calls",
    }
    assert result.groups["standard/daily-calls"].policies == {
        "demo-calls@1": result.groups["standard/daily-calls"].cases
    }


def test_the_comparison_is_paired_for_one_portfolio_and_seeded() -> None:
    model = _model(
        responses=[
            {"channel": "call", "answer": 0.5, "pay_full": 0.3},
            {"channel": "sms", "answer": 0.3, "pay_part": 0.2},
        ]
    )
    cases = generate(150, seed=6)
    placed = by_policies(
        cases, [POLICIES("default"), POLICIES("early-negotiation")], load_strategy("default")
    )
    result = simulate(placed, model, 2, Clock(START, 60))
    a, b = result.results["default@1"], result.results["early-negotiation@1"]
    method, diffs = compare(a, b, seed=2, resamples=300)
    assert method.startswith("paired")
    assert compare(a, b, seed=2, resamples=300)[1] == diffs
    recovery = next(d for d in diffs if d.metric == "recovery_rate")
    assert recovery.diff == pytest.approx(
        result.groups["early-negotiation@1"].recovery_rate
        - result.groups["default@1"].recovery_rate
    )
    assert recovery.low is not None and recovery.high is not None
    assert recovery.low <= recovery.diff <= recovery.high
    independent, _ = compare(a[:100], b[50:], seed=2, resamples=200)
    assert independent.startswith("independent")


def test_openings_spread_by_loan_id_the_same_under_every_policy() -> None:
    spread = timedelta(hours=10)
    assert opening(START, "L-1", spread) == opening(START, "L-1", spread)
    assert START <= opening(START, "L-2", spread) < START + spread
    assert opening(START, "L-1", timedelta(0)) == START


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([DUNNING, "simulate", *args], capture_output=True, text=True, env=env)


def test_the_same_seed_gives_the_same_figures_and_another_seed_others() -> None:
    args = (
        "--generate",
        "120",
        "--days",
        "60",
        "--policy",
        "default",
        "--policy",
        "early-negotiation",
        "--compare",
        "default@1",
        "early-negotiation@1",
        "--bootstrap",
        "200",
        "--json",
    )
    first, second = _cli(*args, "--seed", "5"), _cli(*args, "--seed", "5")
    other = _cli(*args, "--seed", "6")
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout
    assert other.stdout != first.stdout
    document = json.loads(first.stdout)
    assert set(document["groups"]) == {"default@1", "early-negotiation@1"}
    group = document["groups"]["default@1"]
    assert len(group["curve"]) == 61 and group["cases"] == 120
    assert document["compare"]["method"].startswith("paired")
    assert {m["metric"] for m in document["compare"]["metrics"]} >= {
        "recovery_rate",
        "cost_per_recovered",
    }


def test_the_terminal_report_names_every_figure() -> None:
    done = _cli(
        "--generate",
        "60",
        "--days",
        "100",
        "--policy",
        "default",
        env={**__import__("os").environ, "COLUMNS": "200"},
    )
    assert done.returncode == 0, done.stderr
    for text in (
        "recovery",
        "to legal",
        "cost / recovered",
        "contacts per case, by channel",
        "recovery curve",
        "day 90",
        "deferrals and skips by rule",
        "contact_window",
    ):
        assert text in done.stdout, text


BROKEN_MODELS = [
    (
        {"responses": [{"answer": 1.5}]},
        "responses.0.answer: Input should be less than or equal to 1",
    ),
    (
        {"responses": [{"answer": 1, "promise": 0.6, "pay_full": 0.6}]},
        "responses.0: promise + pay_full + pay_part + dispute is 1.2",
    ),
    ({"responses": [{"answer": 1, "channel": "fax"}]}, "responses.0.channel: Input should be"),
    ({"responses": []}, "responses: Tuple should have at least 1 item"),
    ({"responses": [{"answer": 1}], "costs": {"sms": -1}}, "costs.sms: Input should be greater"),
    ({"responses": [{"answer": 1, "pay": 1}]}, "responses.0.pay: Extra inputs are not permitted"),
]


@pytest.mark.parametrize(("data", "problem"), BROKEN_MODELS)
def test_an_invalid_response_model_names_file_field_and_problem(
    tmp_path: Path, data: dict[str, Any], problem: str
) -> None:
    path = tmp_path / "model.json"
    path.write_text(json.dumps({"name": "m", **data}), encoding="utf-8")
    with pytest.raises(ResponseModelError) as refused:
        load_file(path)
    assert str(refused.value).startswith(f"{path}: ")
    assert problem in str(refused.value), str(refused.value)


def test_bad_command_lines_are_refused_with_the_reason(tmp_path: Path) -> None:
    toml = tmp_path / "m.toml"
    toml.write_text('name = "m"\n[[responses]]\nanswer = 2\n', encoding="utf-8")
    cases = tmp_path / "cases.json"
    cases.write_text(
        json.dumps([case_payload("L-1"), case_payload("L-2", borrower={"timezone": "Mars/Base"})]),
        encoding="utf-8",
    )
    for args, problem in [
        (("--generate", "5", "--model", str(toml)), "responses.0.answer"),
        ((str(cases),), "row 2: borrower.timezone: must be an IANA time zone"),
        (("--generate", "5", "--policy", "nope"), "no policy named 'nope'"),
        (("--generate", "5", "--strategy", "nope"), "no strategy named 'nope'"),
        (("--generate", "5", "--compare", "a", "b"), "--compare: no group 'a'"),
        (("--generate", "5", "--start", "2027-03-01T09:00"), "--start: give a time zone"),
        ((), "give a portfolio file or --generate N"),
    ]:
        done = _cli(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert problem in done.stderr, (args, done.stderr)
    assert "Mars" not in _cli(str(cases)).stderr  # input values are never echoed


def test_evolving_a_copy_never_changes_the_state_it_was_copied_from() -> None:
    """`CaseState.__deepcopy__` shares frozen parts: every state of a busy fold must read
    the same after all the later events as when it was made."""
    from workflows.evolve import evolve

    model = _model(
        responses=[
            {"channel": "call", "answer": 1, "promise": 0.5, "keep": 0.5, "pay_part": 0.3},
            {"channel": "sms", "answer": 0.5, "pay_part": 0.3, "dispute": 0.1},
        ]
    )
    cases = generate(5, seed=8)
    placed = by_policies(cases, [POLICIES("default")], load_strategy("default"))
    from dunning.sim.runner import simulate_case

    for placement in placed:
        one = simulate_case(placement, model, 3, START, 120, keep_log=True)
        assert one.events is not None
        states, dumps = [], []
        state = None
        for event in one.events:
            state = evolve(state, event)
            states.append(state)
            dumps.append(state.model_dump_json())
        assert [s.model_dump_json() for s in states] == dumps
        assert len({id(s.balance) for s in states}) == len(states)
        assert len({id(s.counters) for s in states}) == len(states)


def test_the_html_page_plots_what_the_json_reports(tmp_path: Path) -> None:
    """`--html`: one self-contained page (no script, nothing fetched) with the recovery
    curves, the closures and the contacts of both policies, and tables whose figures
    are the ones `--json` gives for the same seed."""
    page = tmp_path / "sim.html"
    args = ("--generate", "80", "--days", "60", "--seed", "3", "--bootstrap", "200")
    args += ("--policy", "default", "--policy", "early-negotiation")
    args += ("--compare", "default@1", "early-negotiation@1")
    done = _cli(*args, "--json", "--html", str(page))
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    html = page.read_text(encoding="utf-8")
    assert html.count("<svg") == 3 and "<script" not in html
    assert not any(f'{attr}="http' in html for attr in ("src", "href")), "fetches nothing"
    for title in ("recovery curve", "how cases ended after 60 days", "contacts per case"):
        assert title in html, title
    for name, group in document["groups"].items():
        assert html.count(name) >= 4, name  # a legend per chart and a row per table
        assert f"{group['recovery_rate']:.1%}" in html
    assert "early-negotiation@1 - default@1" in html and "paired" in html
    unwritable = _cli("--generate", "5", "--policy", "default", "--html", str(tmp_path))
    assert unwritable.returncode == 2 and "--html" in unwritable.stderr
