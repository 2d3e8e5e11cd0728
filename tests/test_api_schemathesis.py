"""Schemathesis against the running API's /openapi.json: no generated request, valid or
not, gets a 5xx, and every answer conforms to the document (status codes, content
types, bodies).

Schemathesis is synchronous (requests): it runs in a thread while the server and the
worker keep going on the test's event loop. A supervisor's token authenticates
everything but opening cases, which only a service's token may do (with a
supervisor's, every case body would stop at 403 and never reach validation).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from temporalio.client import Client
from temporalio.worker import Worker

from dunning.settings import Settings
from schemas.roles import Role
from tests.api_support import callers, serving

EXAMPLES_PER_MODE = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
async def api_url(
    dev_worker: Worker,
    dev_client: Client,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> AsyncIterator[str]:
    settings = stack_settings.model_copy(update={"task_queue": task_queue})
    async with serving(settings, dev_client, pool) as url:
        yield url


def fuzz_operation(
    url: str,
    operation: Any,
    mode: schemathesis.GenerationMode,
    headers: dict[str, str],
) -> None:
    @hypothesis_settings(
        max_examples=EXAMPLES_PER_MODE,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def check(case: Any) -> None:
        response = case.call(base_url=url, headers=headers, timeout=30)
        case.validate_response(response, checks=CHECKS, headers=headers)

    check()


def fuzz(url: str, supervisor: dict[str, str], service: dict[str, str]) -> list[str]:
    """Every operation, positive and negative examples; the failures as text."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: list[str] = []
    results: list[Any] = list(schema.get_all_operations())
    for result in results:
        operation = result.ok()  # an invalid schema fails here
        headers = (
            service if (operation.method, operation.path) == ("post", "/cases") else supervisor
        )
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            try:
                fuzz_operation(url, operation, mode, headers)
            except Unsatisfiable:
                # Nothing invalid to send (GET /healthz has no parameters): fine.
                if mode is not schemathesis.GenerationMode.NEGATIVE:
                    raise
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(
                    f"{operation.method.upper()} {operation.path} ({mode.value}): {exc}"
                )
    return failures


async def test_no_generated_request_gets_a_server_error(
    api_url: str, owner_pool: asyncpg.Pool
) -> None:
    by_role = await callers(owner_pool)
    started = time.monotonic()
    failures = await asyncio.to_thread(
        fuzz, api_url, by_role[Role.supervisor].headers, by_role[Role.service].headers
    )
    assert not failures, "\n\n".join(failures)
    assert time.monotonic() - started < 90
