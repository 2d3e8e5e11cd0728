"""The embedded local stack through the real CLI, on free ports in a temporary folder.

One stack serves the whole module: `dunning dev up` once, `dunning dev down` at the end
whatever happens. Takes a few seconds (two servers, initdb).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from dunning.db.migrate import MigrationError, apply_migrations, ensure_database, load
from dunning.localstack import stack as localstack
from dunning.localstack.stack import private_settings
from dunning.settings import Settings
from workflows.search import ALL_KEYS

pytestmark = pytest.mark.slow

DUNNING = Path(sys.executable).parent / "dunning"


def dunning(settings: Settings, *args: str, check: bool = True) -> str:
    """Run the real CLI against this stack's settings; return its stdout."""
    env = {
        **os.environ,
        "DUNNING_TEMPORAL_ADDRESS": settings.temporal_address,
        "DUNNING_DATABASE_URL": settings.database_url,
        "DUNNING_DATABASE_OWNER_URL": settings.owner_database_url,
        "DUNNING_STATE_DIR": str(settings.state_dir),
        "DUNNING_TEMPORAL_UI_PORT": str(settings.temporal_ui_port),
    }
    result = subprocess.run(
        [str(DUNNING), *args],
        env=env,
        cwd=settings.state_dir.parent,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if check:
        assert result.returncode == 0, f"dunning {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


def status(settings: Settings) -> dict[str, Any]:
    report: dict[str, Any] = json.loads(dunning(settings, "dev", "status", "--json"))
    return report


def gone(pid: int, within: float = 5.0) -> bool:
    """Whether the process ends (or is only a zombie left for init to reap) soon."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, str]]:
    """A private stack and the output of its `dunning dev up`."""
    settings = private_settings(tmp_path_factory.mktemp("stack") / "state")
    try:
        yield settings, dunning(settings, "dev", "up")
    finally:
        dunning(settings, "dev", "down", check=False)


def test_up_prints_the_addresses(stack: tuple[Settings, str]) -> None:
    settings, output = stack
    assert settings.temporal_address in output
    assert f"http://127.0.0.1:{settings.temporal_ui_port}" in output
    assert settings.database_url in output
    assert str(settings.state_dir.resolve()) in output


def test_status_reports_both_servers_running(stack: tuple[Settings, str]) -> None:
    settings, _ = stack
    report = status(settings)
    for server in ("temporal", "postgres"):
        assert report[server]["running"] is True
        assert psutil.pid_exists(report[server]["pid"])
    assert report["temporal"]["address"] == settings.temporal_address
    assert report["state_dir"] == str(settings.state_dir.resolve())


async def test_custom_search_attributes_are_registered(stack: tuple[Settings, str]) -> None:
    settings, _ = stack
    client = await Client.connect(settings.temporal_address, namespace=settings.temporal_namespace)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=settings.temporal_namespace)
    )
    for key in ALL_KEYS:
        assert listed.custom_attributes[key.name] == int(key.indexed_value_type), key.name


async def test_migrations_already_applied_apply_nothing(stack: tuple[Settings, str]) -> None:
    settings, _ = stack
    assert await apply_migrations(settings.owner_database_url) == []
    assert await apply_migrations(settings.owner_database_url) == []
    conn = await asyncpg.connect(settings.owner_database_url)
    try:
        rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
        versions = [r["version"] for r in rows]
    finally:
        await conn.close()
    assert versions == [m.version for m in load()]  # every shipped migration, once
    assert versions[:2] == ["0001_audit_and_outbox", "0002_audit_hash_chain"]


async def test_migrations_run_once_under_concurrency_and_refuse_edits(
    stack: tuple[Settings, str], tmp_path: Path
) -> None:
    settings, _ = stack
    url = settings.owner_database_url.rsplit("/", 1)[0] + "/scratch"
    await ensure_database(url)
    await ensure_database(url)  # already there: no error
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0001_first.sql").write_text("CREATE TABLE first (x int);\n")
    (folder / "0002_second.sql").write_text("CREATE TABLE second (y int);\n")

    both = await asyncio.gather(apply_migrations(url, folder), apply_migrations(url, folder))
    assert sorted(both[0] + both[1]) == ["0001_first", "0002_second"]
    assert await apply_migrations(url, folder) == []

    (folder / "0001_first.sql").write_text("CREATE TABLE first (x bigint);\n")
    with pytest.raises(MigrationError, match=re.escape("0001_first.sql")):
        await apply_migrations(url, folder)


async def test_data_survives_down_and_up(stack: tuple[Settings, str]) -> None:
    settings, _ = stack
    conn = await asyncpg.connect(settings.database_url)
    try:
        await conn.execute(
            "INSERT INTO audit_events (case_id, seq, event_type, occurred_at, actor,"
            " workflow_id, run_id, payload, prev_hash, hash) VALUES ($1, 1, 'CaseOpened', $2,"
            " 'test', 'wf', 'run', '{}', $3, $3)",  # any well-formed hash: not a chain test
            "case-survives",
            datetime.now(UTC),
            "0" * 64,
        )
    finally:
        await conn.close()
    before = localstack.status(settings)

    await asyncio.to_thread(dunning, settings, "dev", "down")
    after_down = status(settings)
    for server in ("temporal", "postgres"):
        assert after_down[server]["running"] is False
        assert after_down[server]["pid"] is None
        assert gone(before[server]["pid"]), server

    await asyncio.to_thread(dunning, settings, "dev", "up")
    again = localstack.status(settings)
    await asyncio.to_thread(dunning, settings, "dev", "up")  # already up: left as it is
    assert localstack.status(settings) == again
    assert again["temporal"]["running"] and again["postgres"]["running"]

    conn = await asyncpg.connect(settings.database_url)
    try:
        count = await conn.fetchval(
            "SELECT count(*) FROM audit_events WHERE case_id = 'case-survives'"
        )
    finally:
        await conn.close()
    assert count == 1
