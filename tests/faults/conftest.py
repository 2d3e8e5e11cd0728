"""A private embedded stack for the fault tests alone (they stop its servers), so the
session stack other tests share is never disturbed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client

from dunning.localstack import stack
from dunning.settings import Settings
from dunning.temporal_client import connect
from tests.faults.harness import SECRET
from tests.webhook_gateway import Gateway, running_gateway


@pytest.fixture(scope="package")
def fault_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    settings = stack.private_settings(tmp_path_factory.mktemp("fault-stack"))
    stack.up(settings)
    try:
        yield settings
    finally:
        stack.down(settings)


@pytest.fixture
async def fault_client(fault_settings: Settings) -> AsyncIterator[Client]:
    yield await connect(fault_settings)


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    with running_gateway(SECRET) as gw:
        yield gw
