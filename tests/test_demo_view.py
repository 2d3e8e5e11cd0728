"""The live view of `make run` redraws in place (issue 12, item 14).

On a 200x90 tmux terminal it stacked fragments of old tables: the in-process worker's
log lines went straight to the terminal under rich's Live display, which then moved
the cursor up by the wrong number of lines. Now log lines go to a file while the view
is up (warnings are printed above the view, through it), and every frame is cut to
the terminal's height.
"""

from __future__ import annotations

import fcntl
import io
import logging
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console

from dunning.cli.demo import frame, logs_aside
from dunning.settings import Settings
from schemas.events import CaseOpened
from schemas.status import CaseStatus
from tests.factories import case_input, policy
from tests.test_opening import cli_env
from workflows.evolve import evolve
from workflows.status_view import case_status

DUNNING = str(Path(sys.executable).parent / "dunning")
ANSI = re.compile(r"\x1b(?:\[[0-9;?]*[A-Za-z]|\][^\x07]*\x07)")


def _statuses(count: int) -> list[CaseStatus]:
    now = datetime.now(UTC)
    opened = evolve(None, CaseOpened(at=now, case=case_input("L-view"), policy=policy()))
    one = case_status(opened, now)
    return [one.model_copy(update={"case_id": f"case-L-view-{i:03d}"}) for i in range(count)]


@pytest.mark.parametrize(("width", "height"), [(200, 90), (80, 24), (120, 12), (60, 4)])
@pytest.mark.parametrize("count", [3, 20, 500])
def test_a_frame_never_needs_more_lines_than_the_terminal_has(
    width: int, height: int, count: int
) -> None:
    console = Console(width=width, height=height, file=io.StringIO(), force_terminal=True)
    notes = [
        f"case-L-view-{i:03d} pays in full, with a note long enough to wrap" * 3 for i in range(6)
    ]

    lines = console.render_lines(frame("7 open, 13 closed", notes, _statuses(count), height))

    assert len(lines) <= height, (width, height, count, len(lines))
    text = "\n".join("".join(segment.text for segment in line) for line in lines)
    assert "7 open, 13 closed" in text
    shown = len(re.findall(r"L-view-\d{3}", text))
    if count == 3 and height >= 12:
        assert shown >= 3  # everything fits: nothing hidden
    if count == 500:
        assert shown < 500 and "more" in text, text[-300:]


def test_while_the_view_is_up_log_lines_go_to_a_file_and_warnings_above_it(
    tmp_path: Path,
) -> None:
    screen = io.StringIO()
    console = Console(file=screen, width=120, force_terminal=False)
    log = logging.getLogger("temporalio.workflow")
    path = tmp_path / "logs" / "demo.log"
    root = logging.getLogger()
    before, level = root.handlers[:], root.level
    root.setLevel(logging.INFO)  # as `dunning demo` configures it
    try:
        with logs_aside(path, console, "console"):
            log.warning("a provider answered 503")
            log.info("stage_entered case_id=case-L-1")
    finally:
        root.setLevel(level)

    assert logging.getLogger().handlers == before, "the handlers are given back"
    written = path.read_text(encoding="utf-8")
    assert "stage_entered" in written and "a provider answered 503" in written
    assert "stage_entered" not in screen.getvalue()
    assert "a provider answered 503" in screen.getvalue()


def _pty_run(command: list[str], env: dict[str, str], seconds: float) -> bytes:
    """Run `command` on a pseudo-terminal of 200x90 for `seconds`, then Ctrl-C it."""
    leader, follower = os.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 90, 200, 0, 0))
    process = subprocess.Popen(
        command,
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "200", "LINES": "90"},
        start_new_session=True,
    )
    os.close(follower)
    output = bytearray()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    output += os.read(leader, 65536)
                except OSError:
                    break
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        os.close(leader)
    return bytes(output)


@pytest.mark.slow
def test_the_demo_view_on_a_terminal_has_no_log_lines_between_its_frames(
    stack_settings: Settings,
) -> None:
    settings = stack_settings.model_copy(update={"task_queue": f"view-{uuid.uuid4().hex[:6]}"})
    command = [DUNNING, "demo", "--no-api", "--cases", "8"]

    raw = _pty_run(command, cli_env(settings), seconds=25).decode("utf-8", "replace")
    output = ANSI.sub("", raw)

    live = output[output.index("opened 8 demo cases") :]
    assert " open, " in live, output[-2000:]  # frames were drawn
    # Worker log lines (the dev renderer's `[info     ]`) would break the view's redraw.
    assert "[info" not in live, live[:3000]
    assert "demo.log" in output  # where they went instead
