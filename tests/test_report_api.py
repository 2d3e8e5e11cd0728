"""The effectiveness figures over HTTP (`GET /reports/effectiveness` and its `.html`
page): the same report as the library, bad periods named in a problem, no personal
data. Which roles may call them is in tests/test_api_roles.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from temporalio.client import Client

from dunning.api.tokens import Role
from dunning.report.period import parse_period
from dunning.report.query import effectiveness
from dunning.settings import Settings
from tests.api_support import callers, serving
from tests.report_fixture import PERIOD, load_report_fixture

QUERY = {"from": PERIOD[0], "to": PERIOD[1]}


@pytest.fixture(scope="module")
async def api(
    dev_client: Client, pool: asyncpg.Pool, owner_pool: asyncpg.Pool, stack_settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    await load_report_fixture(owner_pool)
    auditor = (await callers(owner_pool))[Role.auditor]
    async with (
        serving(stack_settings, dev_client, pool) as url,
        httpx.AsyncClient(base_url=url, timeout=60, headers=auditor.headers) as http,
    ):
        yield http


async def test_json_equals_the_report(api: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    answer = await api.get("/reports/effectiveness", params=QUERY)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    expected = await effectiveness(pool, parse_period(*PERIOD))
    expected_json = expected.model_dump(mode="json", exclude={"generated_at"})
    assert {k: v for k, v in body.items() if k != "generated_at"} == expected_json
    assert "Test Borrower" not in answer.text and "+86" not in answer.text


async def test_html_page(api: httpx.AsyncClient) -> None:
    answer = await api.get("/reports/effectiveness.html", params={**QUERY, "lang": "zh-CN"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in answer.text
    assert answer.text.count('data-chart="heat_map"') >= 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "2020-03-05", "to": "2020-03-01"}, "to"),
        ({"tz": "Nowhere/City"}, "tz"),
        ({"to": "9999-12-31"}, "to"),
    ],
)
async def test_bad_period_is_a_problem(
    api: httpx.AsyncClient, query: dict[str, str], field: str
) -> None:
    answer = await api.get("/reports/effectiveness", params=query)
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert [e["field"] for e in answer.json()["errors"]] == [field]
