"""Policy files are data: a bad one is refused with the file, the field and the problem,
before any case runs on it (`dunning policy check`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dunning.policies import SHIPPED, PolicyError, load_file

DUNNING = str(Path(sys.executable).parent / "dunning")
GOOD = (SHIPPED / "default.toml").read_text(encoding="utf-8")


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "lender.toml"
    path.write_text(text, encoding="utf-8")
    return path


BROKEN = [
    ("version = 1", "version = 0", "version: Input should be greater than or equal to 1"),
    ('name = "default"', 'name = "Default Policy"', "name: String should match pattern"),
    ("from_dpd = 15", "from_dpd = 0", "stages: from_dpd must be strictly increasing"),
    ('start = "08:00:00"', 'start = "23:00:00"', "contact_window: start must be before end"),
    ('template = "reminder"', 'template = "nope"', "no template 'nope'"),
    ("every_days = 3", "every_days = 0", "every_days: Input should be greater than or equal to 1"),
    (
        'resume_stage_after_broken = "negotiation"',
        'resume_stage_after_broken = "court"',
        "agreements.resume_stage_after_broken: no stage named 'court'",
    ),
    ('day_length = "P1D"', 'day_length = "often"', "day_length: Input should be a valid"),
    # A day is a real day (the legal window and quiet days apply) or an accelerated one of
    # at most an hour; anything in between switched the window off (issue 12, item 7).
    ('day_length = "P1D"', 'day_length = "P2D"', "day_length: must be exactly 1 day"),
    ('day_length = "P1D"', 'day_length = "PT25H"', "day_length: must be exactly 1 day"),
    ('day_length = "P1D"', 'day_length = "PT23H"', "day_length: must be exactly 1 day"),
    ('day_length = "P1D"', 'day_length = "PT1H0.001S"', "day_length: must be exactly 1 day"),
    ('settlement_floor = "0.5"', 'settlement_floor = "1.5"', "settlement_floor: Input should be"),
    ("[[stages]]", "[[stagez]]", "stagez: Extra inputs are not permitted"),
    ('compliance = "cn"', 'compliance = "eu"', "compliance: Input should be 'cn' or 'us'"),
    (
        'template = "third_party"',
        'template = "reminder"',
        "stages.1.actions.2.template: template 'reminder' (en) uses unknown variable(s) amount, "
        "currency, days_past_due, loan_id, name (a third party must not learn of the debt)",
    ),
]


@pytest.mark.parametrize(("good", "bad", "problem"), BROKEN)
def test_invalid_policy_is_refused_with_file_field_and_problem(
    tmp_path: Path, good: str, bad: str, problem: str
) -> None:
    assert good in GOOD
    path = _policy(tmp_path, GOOD.replace(good, bad, 1))

    with pytest.raises(PolicyError) as refused:
        load_file(path)

    assert str(refused.value).startswith(f"{path}: ")
    assert problem in str(refused.value)


def test_unparsable_toml_names_the_file_and_line(tmp_path: Path) -> None:
    path = _policy(tmp_path, GOOD.replace("version = 1", "version = = 1"))
    with pytest.raises(PolicyError, match=r"lender\.toml: .*line"):
        load_file(path)


GENTLE = [
    (
        {"en": "Dear {{ name }}, {{ balance_due }} is due. Reply STOP to opt out."},
        "unknown variable(s) balance_due",
    ),
    (
        {"en": "Dear {{ name }}, please pay."},
        "template 'gentle' (en) has no opt-out line ('Reply STOP to opt out')",
    ),
]


@pytest.mark.parametrize(("texts", "problem"), GENTLE)
def test_policy_check_catches_an_unknown_variable_or_a_missing_opt_out(
    tmp_path: Path, texts: dict[str, str], problem: str
) -> None:
    templates = tmp_path / "templates"
    for language in ("en", "zh-CN"):
        (templates / language).mkdir(parents=True)
        (templates / language / "gentle.j2").write_text(
            texts.get(language, texts["en"]), encoding="utf-8"
        )
    path = _policy(tmp_path, GOOD.replace('template = "reminder"', 'template = "gentle"', 1))
    env = {**os.environ, "DUNNING_TEMPLATE_DIR": str(templates)}

    done = subprocess.run(
        [DUNNING, "policy", "check", str(path)], env=env, capture_output=True, text=True
    )

    assert done.returncode == 1
    assert "stages.0.actions.0.template" in done.stderr
    assert problem in done.stderr


def test_policy_check_accepts_the_shipped_policies_and_show_lists_the_cadence() -> None:
    for name in ("default", "demo"):
        done = subprocess.run(
            [DUNNING, "policy", "check", str(SHIPPED / f"{name}.toml")],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"ok: {name}@1")
    shown = subprocess.run(
        [DUNNING, "policy", "show", "default"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "160"},
    )
    assert shown.returncode == 0, shown.stderr
    assert "every 3 days from day 0" in shown.stdout
    assert "08:00-22:00 borrower time" in shown.stdout
    assert "compliance cn" in shown.stdout and "paused days excluded" in shown.stdout
    missing = subprocess.run([DUNNING, "policy", "show", "nope"], capture_output=True, text=True)
    assert missing.returncode == 1 and "no policy named 'nope'" in missing.stderr


def test_earlier_versions_are_kept_beside_the_current_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dunning.policies import load
    from dunning.settings import get_settings

    def version(n: int) -> str:
        return GOOD.replace('name = "default"', 'name = "lender"').replace(
            "version = 1", f"version = {n}", 1
        )

    (tmp_path / "lender.toml").write_text(version(3), encoding="utf-8")
    (tmp_path / "lender@2.toml").write_text(version(2), encoding="utf-8")
    (tmp_path / "lender@1.toml").write_text(version(2), encoding="utf-8")  # mislabelled
    monkeypatch.setenv("DUNNING_POLICY_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert load("lender").ref == "lender@3"
        assert load("lender@3").ref == "lender@3"
        assert load("lender@2").ref == "lender@2"
        with pytest.raises(PolicyError, match="holds lender@2, not lender@1"):
            load("lender@1")
        with pytest.raises(PolicyError, match=r"at version 3; no lender@7\.toml kept"):
            load("lender@7")
        with pytest.raises(PolicyError, match="the version must be a number"):
            load("lender@two")
    finally:
        get_settings.cache_clear()


def test_policy_check_refuses_a_day_between_an_hour_and_a_real_day(tmp_path: Path) -> None:
    """`dunning policy check` names `day_length`; an hour-long accelerated day and a real
    day are both accepted."""
    for length, accepted in (("PT25H", False), ("P2D", False), ("PT1H", True), ("P1D", True)):
        path = _policy(tmp_path, GOOD.replace('day_length = "P1D"', f'day_length = "{length}"'))
        done = subprocess.run(
            [DUNNING, "policy", "check", str(path)], capture_output=True, text=True
        )
        if accepted:
            assert done.returncode == 0, (length, done.stderr)
        else:
            assert done.returncode == 1, (length, done.stdout)
            assert f"{path}: day_length: must be exactly 1 day" in done.stderr, done.stderr


def test_a_batch_opens_on_one_view_of_its_policy_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside `read_once()` (a batch of openings), a policy is read and checked once: a
    file published halfway through the batch does not open its later rows on another
    version; outside, every load reads the file as it is now. A policy that failed to
    load is not remembered: the next row finds it once it is there."""
    from dunning.datafiles import read_once
    from dunning.policies import load
    from dunning.settings import get_settings

    def version(n: int) -> str:
        return GOOD.replace('name = "default"', 'name = "lender"').replace(
            "version = 1", f"version = {n}", 1
        )

    monkeypatch.setenv("DUNNING_POLICY_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        with read_once():
            with pytest.raises(PolicyError, match="no policy named 'lender'"):
                load("lender")
            (tmp_path / "lender.toml").write_text(version(1), encoding="utf-8")
            assert load("lender").ref == "lender@1"
            (tmp_path / "lender.toml").write_text(version(2), encoding="utf-8")
            assert load("lender").ref == "lender@1"
        assert load("lender").ref == "lender@2"
    finally:
        get_settings.cache_clear()
