"""`dunning report` as a user runs it, on the committed audit log (tests/fixtures):
the terminal tables, --json (the same figures as the library), --csv, --html, and
bad input named with exit status 2."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
from pathlib import Path

import asyncpg
import pytest

from dunning.settings import Settings
from tests.report_fixture import PERIOD, load_report_fixture
from tests.test_opening import DUNNING, cli_env

ARGS = ["report", "--from", PERIOD[0], "--to", PERIOD[1]]


@pytest.fixture(scope="module")
async def loaded(pool: asyncpg.Pool) -> None:
    await load_report_fixture(pool)


async def dunning(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, [DUNNING, *args], env=cli_env(settings), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip


async def test_terminal_tables(loaded: None, stack_settings: Settings) -> None:
    done = await dunning(stack_settings, *ARGS)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for heading in ("Cases", "Effectiveness", "Stages", "Roll rates, week over week",
                    "Champion against challenger"):  # fmt: skip
        assert heading in out
    assert "two-proportion z-test" in out and "Welch's t-test" in out
    assert "60.5%" in out  # the champion's recovery rate, 2600 / 4300
    assert "Test Borrower" not in out  # aggregates only: no personal data


async def test_json_is_the_report(loaded: None, stack_settings: Settings) -> None:
    done = await dunning(stack_settings, *ARGS, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["period_from"] == "2020-03-01T00:00:00Z"
    champion = next(g for g in report["groups"] if g["arm"] == "champion" and g["strategy"])
    assert champion["amount_recovered"] == "2600.00"  # amounts are decimal strings
    assert champion["cases_closed"] == {"paid": 1, "settled": 1, "transferred_to_legal": 1}
    [comparison] = report["comparisons"]
    tests = {m["metric"]: m["test"] for m in comparison["metrics"]}
    assert tests["cure_rate"] == "two-proportion z-test"
    assert tests["amount_recovered_per_case"] == "Welch's t-test"


async def test_csv_has_every_section(loaded: None, stack_settings: Settings) -> None:
    done = await dunning(stack_settings, *ARGS, "--csv")
    assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO(done.stdout)))
    assert {r["section"] for r in rows} == {"group", "stage", "roll", "curve", "comparison"}
    champion = {
        r["metric"]: r["value"]
        for r in rows
        if r["section"] == "group" and r["arm"] == "champion" and r["strategy"] == "retail"
    }
    assert champion["cure_rate"] == "0.25"
    assert champion["cases_closed.settled"] == "1"
    roll = [r for r in rows if r["section"] == "roll" and r["arm"] == "champion"
            and r["strategy"] and r["stage"] == "reminder" and r["metric"] == "count"]  # fmt: skip
    assert {r["to_state"]: r["value"] for r in roll} == {
        "reminder": "3",
        "negotiation": "1",
        "paid": "1",
    }


async def test_html_page_is_written(loaded: None, stack_settings: Settings, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    done = await dunning(stack_settings, *ARGS, "--html", str(page), "--lang", "zh-CN")
    assert done.returncode == 0, done.stderr
    text = page.read_text(encoding="utf-8")
    assert '<html lang="zh-CN">' in text and "催收效果报告" in text
    assert text.count('class="chart"') >= 3
    assert "<script" not in text and "http://" not in text.split("<svg", 1)[0]
    assert "回收率" in done.stdout  # the terminal speaks the same language


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--from", "2020-13-01"], "--from: not a date"),
        (["--from", "2020-03-10", "--to", "2020-03-01"], "--to: must be after from"),
        (["--tz", "Mars/Olympus"], "--tz: must be an IANA time zone"),
        (["--lang", "fr"], "--lang: must be one of en, zh-CN"),
        (["--confidence", "1.5"], "--confidence: must be"),
    ],
)
async def test_bad_input_is_named(stack_settings: Settings, args: list[str], named: str) -> None:
    done = await dunning(stack_settings, "report", *args)
    assert done.returncode == 2
    assert named in done.stderr
