"""Shared fixtures: a private embedded stack (Temporal dev server + PostgreSQL on free
ports in a temporary folder) and the time-skipping test server, both from wheels.

Nothing here is mocked: workflows run on real servers and activities write to a
real PostgreSQL. Only the outside world (SMS gateway, dialer, ...) is the sandbox
provider, which records to the outbox table.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from dunning.localstack import stack
from dunning.settings import Settings
from dunning.temporal_client import connect, data_converter
from tests.api_support import serving
from worker import build_worker
from workflows.search import ALL_KEYS


def _test_server_path() -> str:
    found = shutil.which("temporal-test-server") or str(
        Path(sys.executable).parent / "temporal-test-server"
    )
    if not Path(found).exists():
        pytest.exit("temporal-test-server not installed: pip install -e '.[dev]'", returncode=3)
    return found


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A private embedded stack for the whole session, stopped at the end."""
    settings = stack.private_settings(tmp_path_factory.mktemp("stack"))
    stack.up(settings)
    try:
        yield settings
    finally:
        stack.down(settings)


@pytest.fixture(scope="session")
async def pool(stack_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The audit store as the worker and the API see it: the application role, which may
    append and read, never change or remove (tests/test_db_roles.py)."""
    async with asyncpg.create_pool(stack_settings.database_url, min_size=1, max_size=10) as p:
        yield p


@pytest.fixture(scope="session")
async def owner_pool(stack_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    """The schema's owner (a superuser on the embedded stack): for tests that play an
    attacker with database rights, or look at the catalogue."""
    async with asyncpg.create_pool(stack_settings.owner_database_url, min_size=1, max_size=2) as p:
        yield p


@pytest.fixture(scope="session")
async def dev_client(stack_settings: Settings) -> Client:
    return await connect(stack_settings)


@pytest.fixture
async def ts_env(stack_settings: Settings) -> AsyncIterator[WorkflowEnvironment]:
    """A fresh time-skipping test server per test (its clock is the test's own), with
    the project's search attributes registered; payloads encrypted as in production
    (the private stack's key)."""
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(stack_settings),
        test_server_existing_path=_test_server_path(),
    )
    await env.client.operator_service.add_search_attributes(
        AddSearchAttributesRequest(
            namespace=env.client.namespace,
            search_attributes={key.name: key.indexed_value_type for key in ALL_KEYS},
        )
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture
def task_queue() -> str:
    return f"test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def ts_worker(
    ts_env: WorkflowEnvironment, pool: asyncpg.Pool, stack_settings: Settings, task_queue: str
) -> AsyncIterator[Worker]:
    """A worker on the time-skipping server; activities write to the real PostgreSQL
    (as the application role), checkpoints signed with the private stack's key."""
    async with build_worker(ts_env.client, pool, task_queue, stack_settings) as worker:
        yield worker


@pytest.fixture
async def dev_worker(
    dev_client: Client, pool: asyncpg.Pool, stack_settings: Settings, task_queue: str
) -> AsyncIterator[Worker]:
    """A worker on the dev server (real time)."""
    async with build_worker(dev_client, pool, task_queue, stack_settings) as worker:
        yield worker


@pytest.fixture
async def base_url(
    dev_worker: Worker,
    dev_client: Client,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> AsyncIterator[str]:
    """The API and the console served on a loopback port, with a worker on the test's
    task queue."""
    settings = stack_settings.model_copy(update={"task_queue": task_queue})
    async with serving(settings, dev_client, pool) as url:
        yield url
