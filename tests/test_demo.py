"""`dunning demo --until-done`: the README's first command, without the live view."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from dunning.settings import Settings
from tests.test_opening import cli_env

DUNNING = str(Path(sys.executable).parent / "dunning")


@pytest.mark.slow
def test_demo_until_done_closes_every_case_and_exits_zero(stack_settings: Settings) -> None:
    settings = stack_settings.model_copy(update={"task_queue": f"demo-{uuid.uuid4().hex[:6]}"})

    done = subprocess.run(
        [DUNNING, "demo", "--until-done", "--cases", "10", "--timeout", "240"],
        env=cli_env(settings),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "cases moving" in done.stdout
    assert "all 10 demo cases closed" in done.stdout
    # The scripted payments show up as outcomes next to the legal handoffs.
    assert "paid" in done.stdout
    assert "transferred_to_legal" in done.stdout
