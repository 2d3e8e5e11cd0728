"""Cases placed by a strategy on the dev server: the segment and arm are in the
`CaseOpened` audit row, in `dunning status`, and `dunning cases --arm` lists by them;
a new strategy version never moves an open case."""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client
from temporalio.worker import Worker

import starter
from dunning.settings import Settings
from dunning.strategies import load
from schemas.events import CaseOpened
from tests.factories import case_payload
from tests.records import audit_events
from tests.test_opening import DUNNING, cli_env
from workflows.loan_collection import LoanCollection

LENDER = """
name = "lender"
version = {version}

[[rules]]
segment = "graded"
when = {{ segment = ["b"] }}
policy = "{champion}"
experiment = "{experiment}"
challengers = [{{ name = "early", policy = "early-negotiation", share = 0.5 }}]

[[rules]]
segment = "rest"
policy = "default"
"""


def _write(folder: Path, version: int, champion: str, experiment: str) -> None:
    text = LENDER.format(version=version, champion=champion, experiment=experiment)
    (folder / "lender.toml").write_text(text, encoding="utf-8")


async def _poll(check: Callable[[], Awaitable[Any]], within: float = 30) -> Any:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        found = await check()
        if found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.5)


async def test_placement_is_recorded_shown_listed_and_never_moved(
    dev_client: Client,
    dev_worker: Worker,
    stack_settings: Settings,
    task_queue: str,
    pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    folder = tmp_path / "strategies"
    folder.mkdir()
    experiment = f"exp-{uuid.uuid4().hex[:8]}"
    _write(folder, 1, "default", experiment)
    settings = stack_settings.model_copy(
        update={"task_queue": task_queue, "strategy": "lender", "strategy_dir": folder}
    )
    tag = uuid.uuid4().hex[:6]
    loans = [f"L-arm-{tag}-{i}" for i in range(8)]
    rows = [case_payload(loan, segment="b") for loan in loans]
    rows.append(case_payload(f"L-rest-{tag}"))  # no segment: the catch-all
    rows.append(case_payload(f"L-own-{tag}", segment="b", policy="default"))  # not placed
    results = await starter.open_cases(dev_client, settings, rows)
    assert [r.outcome for r in results] == ["opened"] * len(rows), results

    rule = load("lender", settings).rules[0]
    expected = {f"case-{loan}": rule.arm_for(loan)[0] for loan in loans}
    assert set(expected.values()) == {"champion", "early"}, "both arms, or the test proves little"

    # The audit row of CaseOpened carries the placement.
    for case_id, arm in expected.items():
        events = await _poll(lambda case_id=case_id: audit_events(pool, case_id))
        opened = events[0]
        assert isinstance(opened, CaseOpened) and opened.assignment is not None
        placed = opened.assignment
        assert (placed.strategy, placed.segment, placed.experiment, placed.arm) == (
            "lender@1",
            "graded",
            experiment,
            arm,
        )
        assert placed.policy == ("early-negotiation@1" if arm == "early" else "default@1")
        assert opened.policy.ref == placed.policy
    rest = (await _poll(lambda: audit_events(pool, f"case-L-rest-{tag}")))[0]
    assert isinstance(rest, CaseOpened) and rest.assignment is not None
    assert (rest.assignment.segment, rest.assignment.arm) == ("rest", "champion")
    own = (await _poll(lambda: audit_events(pool, f"case-L-own-{tag}")))[0]
    assert isinstance(own, CaseOpened) and own.assignment is None

    env = cli_env(settings)

    def dunning(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DUNNING, *args], env=env, capture_output=True, text=True)

    early = next(case_id for case_id, arm in expected.items() if arm == "early")
    shown = await asyncio.to_thread(dunning, "status", early)
    assert shown.returncode == 0, shown.stderr
    assert f"lender@1: segment graded, experiment {experiment}, arm early" in shown.stdout
    as_json = json.loads((await asyncio.to_thread(dunning, "status", early, "--json")).stdout)
    assert as_json["assignment"]["arm"] == "early"
    assert as_json["assignment"]["segment"] == "graded"

    async def listed(*args: str) -> set[str]:
        done = await asyncio.to_thread(dunning, "cases", *args, "--json")
        assert done.returncode == 0, done.stderr
        return {c["case_id"] for c in json.loads(done.stdout) if tag in c["case_id"]}

    for arm in ("early", "champion"):
        want = {case_id for case_id, a in expected.items() if a == arm}
        if arm == "champion":
            want.add(f"case-L-rest-{tag}")
        got = await _poll(lambda arm=arm, want=want: _equal(listed("--arm", arm), want))
        assert got == want, (arm, got, want)
    graded = await _poll(lambda: _equal(listed("--segment", "graded"), set(expected)), within=30)
    assert graded == set(expected)
    bad = await asyncio.to_thread(dunning, "cases", "--arm", 'x" OR 1=1')
    assert bad.returncode == 1 and "arm: lower-case letters" in bad.stderr

    # A new strategy version: everyone in the segment on early-negotiation now, another
    # experiment. Open cases keep what they opened with; a new case gets version 2.
    _write(folder, 2, "early-negotiation", f"{experiment}-2")
    newer = f"L-arm-{tag}-new"
    again = await starter.open_case(dev_client, settings, 1, case_payload(newer, segment="b"))
    assert again.outcome == "opened"
    for case_id, arm in expected.items():
        status = await dev_client.get_workflow_handle(case_id).query(LoanCollection.status)
        assert status.assignment is not None
        assert (status.assignment.strategy, status.assignment.arm) == ("lender@1", arm)
        assert status.policy == ("early-negotiation@1" if arm == "early" else "default@1")
    fresh = await dev_client.get_workflow_handle(f"case-{newer}").query(LoanCollection.status)
    assert fresh.assignment is not None and fresh.assignment.strategy == "lender@2"
    assert fresh.policy == "early-negotiation@1"

    for result in [*results, again]:
        await dev_client.get_workflow_handle(f"case-{result.loan_id}").terminate("test over")


async def _equal(found: Awaitable[set[str]], want: set[str]) -> set[str] | None:
    got = await found
    return got if got == want else None
