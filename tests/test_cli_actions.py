"""The operator's command line against a live case: status, cases, pause, resume, pay.

Runs the real `dunning` executable against the private stack, with a worker on the
test's task queue, on the accelerated demo policy.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.worker import Worker

from dunning.settings import Settings
from tests.factories import case_payload
from tests.test_opening import DUNNING, cli_env


async def _poll(check: Callable[[], Awaitable[Any]], within: float = 30, what: str = "") -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.3)


async def test_operator_drives_a_case_from_the_command_line(
    dev_worker: Worker, stack_settings: Settings, task_queue: str, tmp_path: Path
) -> None:
    env = cli_env(stack_settings.model_copy(update={"task_queue": task_queue}))
    loan = f"L-cli-{uuid.uuid4().hex[:8]}"

    async def dunning(*args: str) -> subprocess.CompletedProcess[str]:
        # In a thread: the worker runs on this test's event loop and must keep going.
        return await asyncio.to_thread(
            subprocess.run, [DUNNING, *args], env=env, capture_output=True, text=True
        )

    async def status() -> dict[str, Any]:
        done = await dunning("status", loan, "--json")
        assert done.returncode == 0, done.stderr
        parsed: dict[str, Any] = json.loads(done.stdout)
        return parsed

    async def status_when(test: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        async def check() -> dict[str, Any] | None:
            current = await status()
            return current if test(current) else None

        found: dict[str, Any] = await _poll(check, what=what)
        return found

    async def listed(*args: str) -> list[dict[str, Any]]:
        done = await dunning("cases", *args, "--json")
        assert done.returncode == 0, done.stderr
        return [c for c in json.loads(done.stdout) if c["case_id"] == f"case-{loan}"]

    cases_file = tmp_path / "case.json"
    cases_file.write_text(json.dumps(case_payload(loan, policy="demo")))
    assert (await dunning("open", str(cases_file))).returncode == 0

    first = await status_when(lambda s: s["stage"] == "reminder", "reminder")
    assert first["case_id"] == f"case-{loan}"
    assert first["policy"] == "demo@1"

    by_stage = await _poll(lambda: listed("--stage", "reminder"), what="listing by stage")
    assert by_stage[0]["state"] == "open"
    # The listing holds no personal data: it comes from search attributes.
    raw = (await dunning("cases", "--json")).stdout
    assert "Wang Xiaoming" not in raw and "13800138000" not in raw

    done = await dunning("pause", loan, "--reason", "hardship review", "--operator", "op-7")
    assert done.returncode == 0, done.stderr
    paused = await status_when(lambda s: s["state"] == "paused", "paused")
    assert paused["paused"]["operator"] == "op-7"
    assert paused["paused"]["reason"] == "hardship review"
    by_state = await _poll(
        lambda: listed("--state", "paused", "--policy", "demo@1"), what="listing by state"
    )
    assert by_state[0]["state"] == "paused" and by_state[0]["policy"] == "demo@1"
    assert await listed("--state", "paused", "--policy", "default@1") == []
    bad = await dunning("cases", "--state", "asleep")
    assert bad.returncode != 0 and "state: one of open, paused" in bad.stderr + bad.stdout

    done = await dunning("resume", loan, "--reason", "review done", "--operator", "op-7")
    assert done.returncode == 0, done.stderr
    await status_when(lambda s: s["state"] == "open", "resumed")

    done = await dunning("pay", loan, "100.00", "--reference", "PAY-1")
    assert done.returncode == 0, done.stderr
    partial = await status_when(lambda s: s["balance"]["paid"] == "100.00", "partial payment")
    assert partial["balance"]["total"] == "970.00"

    done = await dunning("pay", loan, "970.00", "--reference", "PAY-2")
    assert done.returncode == 0, done.stderr
    final = await status_when(lambda s: s["state"] == "closed", "closed")
    assert final["closed_reason"] == "paid"

    # A closed case refuses further actions, clearly.
    done = await dunning("pay", loan, "5.00", "--reference", "PAY-3")
    assert done.returncode == 1
    assert "is closed" in done.stderr


def test_bad_operator_input_names_the_field_and_sends_nothing(stack_settings: Settings) -> None:
    env = cli_env(stack_settings)

    def dunning(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([DUNNING, *args], env=env, capture_output=True, text=True)

    unknown = dunning("status", "L-does-not-exist")
    assert unknown.returncode == 1
    assert "no case 'case-L-does-not-exist'" in unknown.stderr

    blank = dunning("pause", "L-any", "--reason", "  ", "--operator", "op-7")
    assert blank.returncode == 2
    assert "reason:" in blank.stderr

    spaces = dunning("pause", "L-any", "--reason", "x", "--operator", "op 7")
    assert spaces.returncode == 2
    assert "operator:" in spaces.stderr

    for amount, problem in (
        ("0", "amount:"),
        ("abc", "amount: Input should be a valid decimal"),
        ("NaN", "amount"),
    ):
        done = dunning("pay", "L-any", amount, "--reference", "R-1")
        assert done.returncode == 2, (amount, done.stderr)
        assert problem in done.stderr, (amount, done.stderr)
