"""The HTTP API end to end: a real uvicorn server on a free loopback port, the private
stack's Temporal and PostgreSQL, a worker on the test's task queue, httpx as client.

Opening one case and a batch, the problems (404 unknown, 409 already open or refused
by the case with its reason, 422 naming the field without echoing the value), the
actor recorded from the token, settlements past the approval threshold, the
Idempotency-Key, the masked history and the health check.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from dunning.api.app import create_app
from dunning.localstack.net import free_port
from dunning.samples import due_date_for
from dunning.settings import Settings
from schemas.roles import Role
from tests.api_support import Caller, callers, serving
from tests.factories import case_payload

PROBLEM = "application/problem+json"


@pytest.fixture
async def api(
    dev_worker: Worker,
    dev_client: Client,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
) -> AsyncIterator[httpx.AsyncClient]:
    settings = stack_settings.model_copy(update={"task_queue": task_queue})
    async with (
        serving(settings, dev_client, pool) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        yield http


@pytest.fixture(scope="module")
async def who(owner_pool: asyncpg.Pool) -> dict[Role, Caller]:
    return await callers(owner_pool)


def loan_id(tag: str) -> str:
    return f"L-api-{tag}-{uuid.uuid4().hex[:8]}"


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["type"] == f"urn:dunning:problem:{slug}", body
    assert body["title"]
    return body


async def poll(check: Callable[[], Awaitable[Any]], within: float = 20) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await check()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.3)


async def test_open_one_and_a_batch_then_read_the_status(
    api: httpx.AsyncClient, who: dict[Role, Caller]
) -> None:
    service = who[Role.service].headers
    loan, other, bad = loan_id("one"), loan_id("two"), loan_id("bad")

    opened = await api.post("/cases", json=case_payload(loan), headers=service)
    assert opened.status_code == 201, opened.text
    assert opened.json() == {"case_id": f"case-{loan}", "loan_id": loan, "outcome": "opened"}
    assert opened.headers["location"] == f"/cases/case-{loan}"

    again = await api.post("/cases", json=case_payload(loan), headers=service)
    assert f"case-{loan}" in assert_problem(again, 409, "already-open")["detail"]

    batch = {
        "cases": [
            case_payload(other),
            case_payload(loan),
            case_payload(bad, borrower={"timezone": "Mars/Olympus_Mons"}),
            "not a case",
        ]
    }
    answer = await api.post("/cases", json=batch, headers=service)
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["outcome"] for r in results] == ["opened", "already_open", "invalid", "invalid"]
    assert [r["row"] for r in results] == [1, 2, 3, 4]
    assert results[0]["case_id"] == f"case-{other}"
    assert results[2]["errors"][0]["field"] == "borrower.timezone"
    assert "Mars" not in answer.text
    assert answer.json()["counts"] == {
        "opened": 1,
        "already_open": 1,
        "already_closed": 0,
        "invalid": 2,
    }

    # By loan id or by case id; no personal data in a status.
    for ref in (loan, f"case-{loan}"):
        status = await api.get(f"/cases/{ref}", headers=service)
        assert status.status_code == 200, status.text
        assert status.json()["case_id"] == f"case-{loan}"
        assert status.json()["balance"]["total"] == "1070.00"
        assert "Wang" not in status.text


async def test_invalid_input_is_422_naming_the_field_and_never_echoing_it(
    api: httpx.AsyncClient, who: dict[Role, Caller]
) -> None:
    service = who[Role.service].headers
    secret_phone = "+86 000 1234 9876"
    case = case_payload(loan_id("inv"), borrower={"phones": [secret_phone]})
    case["loan"]["principal"] = "12.345"  # more decimals than CNY has
    answer = await api.post("/cases", json=case, headers=service)
    body = assert_problem(answer, 422, "invalid-input")
    fields = {e["field"] for e in body["errors"]}
    assert "borrower.phones[0]" in fields or "borrower.phones.0" in fields, fields
    assert any(f.startswith("loan") for f in fields), fields
    assert "9876" not in answer.text and "12.345" not in answer.text

    garbled = await api.post(
        "/cases", content=b"{not json", headers={**service, "content-type": "application/json"}
    )
    assert assert_problem(garbled, 422, "invalid-input")["errors"] == [
        {"field": "body", "problem": "not valid JSON"}
    ]

    # FastAPI's own validation (a route's body model) answers the same way.
    operator = who[Role.operator].headers
    pay = await api.post(
        "/cases/L-whatever/promises",
        json={"amount": "lots", "pay_by": "soon", "reason": "x", "extra": "SECRET-7"},
        headers=operator,
    )
    body = assert_problem(pay, 422, "invalid-input")
    assert {e["field"] for e in body["errors"]} == {"amount", "pay_by", "extra"}
    assert "lots" not in pay.text and "SECRET-7" not in pay.text


async def test_a_due_date_that_disagrees_with_days_past_due_is_422_and_opens_nothing(
    api: httpx.AsyncClient, who: dict[Role, Caller]
) -> None:
    """Issue 12, item 11: a loan due on 2099-12-31 "120 days past due" was opened and
    handed to legal at once."""
    service = who[Role.service].headers
    loan = loan_id("dates")
    case = case_payload(loan, loan={"due_date": "2099-12-31", "days_past_due": 120})
    answer = await api.post("/cases", json=case, headers=service)
    body = assert_problem(answer, 422, "invalid-input")
    assert [e["field"] for e in body["errors"]] == ["loan.due_date"], body
    assert_problem(await api.get(f"/cases/{loan}", headers=service), 404, "case-not-found")

    late = case_payload(loan_id("dates"), loan={"due_date": due_date_for(30), "days_past_due": 1})
    batch = await api.post("/cases", json={"cases": [late]}, headers=service)
    (row,) = batch.json()["results"]
    assert row["outcome"] == "invalid", row
    assert row["errors"][0]["field"] == "loan.days_past_due", row


async def test_unknown_case_is_404(api: httpx.AsyncClient, who: dict[Role, Caller]) -> None:
    operator = who[Role.operator].headers
    missing = loan_id("missing")
    assert_problem(await api.get(f"/cases/{missing}", headers=operator), 404, "case-not-found")
    assert_problem(
        await api.get(f"/cases/{missing}/history", headers=operator), 404, "case-not-found"
    )
    assert_problem(
        await api.post(f"/cases/{missing}/pause", json={"reason": "r"}, headers=operator),
        404,
        "case-not-found",
    )
    assert_problem(await api.get("/cases/%20no%20such", headers=operator), 404, "case-not-found")
    assert_problem(await api.get("/no/such/route", headers=operator), 404, "not-found")


async def test_actions_record_the_token_as_actor_and_refusals_are_409_with_the_reason(
    api: httpx.AsyncClient, who: dict[Role, Caller]
) -> None:
    loan = loan_id("act")
    operator, service = who[Role.operator], who[Role.service]
    contact = {"name": "Li Na", "phone": "+86 137 0013 7000", "relation": "sibling"}
    payload = case_payload(loan, borrower={"emergency_contacts": [contact]})
    assert (await api.post("/cases", json=payload, headers=service.headers)).is_success

    refused = await api.post(
        f"/cases/{loan}/resume", json={"reason": "back to work"}, headers=operator.headers
    )
    body = assert_problem(refused, 409, "refused:not_paused")
    assert body["detail"] == "the case is not paused" and body["code"] == "not_paused"

    paused = await api.post(
        f"/cases/{loan}/pause", json={"reason": "hardship review"}, headers=operator.headers
    )
    assert paused.status_code == 200, paused.text
    assert [line["type"] for line in paused.json()["recorded"]] == ["collection_paused"]
    assert paused.json()["status"]["state"] == "paused"
    assert paused.json()["status"]["paused"]["operator"] == operator.name

    paid = await api.post(
        f"/cases/{loan}/payments",
        json={"amount": "70.00", "reference": "PAY-1"},
        headers=service.headers,
    )
    assert paid.status_code == 200, paid.text
    assert paid.json()["status"]["balance"]["paid"] == "70.00"

    opted = await api.post(
        f"/cases/{loan}/third-party-opt-out",
        json={"contact": 0, "reason": "asked on the phone"},
        headers=operator.headers,
    )
    assert opted.status_code == 200, opted.text
    assert opted.json()["status"]["third_party_opt_outs"] == [0]
    ceased = await api.post(
        f"/cases/{loan}/cease", json={"channel": "call", "reason": "r"}, headers=operator.headers
    )
    assert ceased.json()["status"]["ceased"] == ["call"], ceased.text
    to_v2 = await api.post(
        f"/cases/{loan}/policy",
        json={"to": "default@2", "reason": "r"},
        headers=who[Role.supervisor].headers,
    )
    assert assert_problem(to_v2, 422, "invalid-input")["detail"].startswith("to: policy 'default'")

    # The audit log records who acted; the history masks the borrower.
    auditor = who[Role.auditor].headers

    async def history() -> list[dict[str, Any]] | None:
        answer = await api.get(f"/cases/case-{loan}/history", headers=auditor)
        assert answer.status_code == 200, answer.text
        assert "Wang Xiaoming" not in answer.text and "0013 8000" not in answer.text
        assert "Century Avenue" not in answer.text
        assert "Li Na" not in answer.text and "0013 7000" not in answer.text
        events: list[dict[str, Any]] = answer.json()["events"]
        types = {e["event_type"] for e in events}
        return events if {"collection_paused", "payment_received"} <= types else None

    events = await poll(history)
    by_type = {e["event_type"]: e for e in events}
    assert by_type["collection_paused"]["actor"] == f"operator:{operator.name}"
    assert by_type["payment_received"]["actor"] == f"service:{service.name}"
    borrower = by_type["case_opened"]["payload"]["case"]["borrower"]
    assert borrower["name"] == "W***"
    assert all(p.startswith("***") for p in borrower["phones"])
    assert borrower["address"] == "***"
    assert borrower["emergency_contacts"] == [
        {"name": "L***", "phone": "***00", "relation": "sibling"}
    ]


async def test_four_eyes_two_principals_from_two_tokens(
    api: httpx.AsyncClient, who: dict[Role, Caller]
) -> None:
    """A settlement past the approval share and a write-off are requested by one token
    and approved by another, a supervisor's; nobody approves their own request, and
    nobody names who approved."""
    loan = loan_id("settle")
    operator, supervisor = who[Role.operator], who[Role.supervisor]
    assert (
        await api.post("/cases", json=case_payload(loan), headers=who[Role.service].headers)
    ).is_success
    pay_by = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    # Waiving 270 of 1070 is past the default policy's 20% approval share.
    offer = {"amount": "800.00", "pay_by": pay_by, "reason": "one-off offer"}

    naming = await api.post(
        f"/cases/{loan}/settlements",
        json={**offer, "supervisor": supervisor.name},
        headers=operator.headers,
    )
    assert assert_problem(naming, 422, "invalid-input")["errors"][0]["field"] == "supervisor"
    other = await api.post(
        f"/cases/{loan}/settlements",
        json={**offer, "operator": "someone-else"},
        headers=operator.headers,
    )
    assert assert_problem(other, 422, "invalid-input")["errors"][0]["field"] == "operator"

    requested = await api.post(f"/cases/{loan}/settlements", json=offer, headers=operator.headers)
    assert requested.status_code == 202, requested.text
    [pending] = requested.json()["status"]["approvals"]
    assert pending["kind"] == "settlement" and pending["requested_by"] == operator.name
    assert requested.json()["status"]["settlement"] is None

    approval = {"request": pending["request"], "reason": "within mandate"}
    by_operator = await api.post(f"/cases/{loan}/approve", json=approval, headers=operator.headers)
    assert_problem(by_operator, 403, "forbidden")  # the role may not approve at all
    approved = await api.post(f"/cases/{loan}/approve", json=approval, headers=supervisor.headers)
    assert approved.status_code == 200, approved.text
    types = [line["type"] for line in approved.json()["recorded"]]
    assert types == ["approval_granted", "settlement_agreed", "agreement_recorded"]
    settlement = approved.json()["status"]["settlement"]
    assert settlement["waiver"] == "270.00"

    # A supervisor's own request needs another principal too.
    paid = await api.post(
        f"/cases/{loan}/payments",
        json={"amount": "800.00", "reference": "S-1"},
        headers=who[Role.service].headers,
    )
    assert paid.status_code == 200, paid.text

    async def settled() -> bool:
        status = await api.get(f"/cases/{loan}", headers=operator.headers)
        return bool(status.json()["closed_reason"] == "settled")

    await poll(settled)


async def test_a_write_off_needs_a_second_supervisor(
    api: httpx.AsyncClient, who: dict[Role, Caller], owner_pool: asyncpg.Pool
) -> None:
    loan = loan_id("writeoff")
    supervisor, operator = who[Role.supervisor], who[Role.operator]
    assert (
        await api.post("/cases", json=case_payload(loan), headers=who[Role.service].headers)
    ).is_success
    asked = await api.post(
        f"/cases/{loan}/write-off", json={"reason": "uncollectable"}, headers=supervisor.headers
    )
    assert asked.status_code == 202, asked.text
    request = asked.json()["status"]["approvals"][0]["request"]
    approval = {"request": request, "reason": "agreed"}
    alone = await api.post(f"/cases/{loan}/approve", json=approval, headers=supervisor.headers)
    assert "a different principal" in assert_problem(alone, 403, "refused:same_person")["detail"]
    second = (await callers(owner_pool))[Role.supervisor]
    written_off = await api.post(f"/cases/{loan}/approve", json=approval, headers=second.headers)
    assert written_off.status_code == 200, written_off.text
    assert written_off.json()["status"]["closed_reason"] == "written_off"
    closed = await api.post(
        f"/cases/{loan}/escalate", json={"reason": "r"}, headers=operator.headers
    )
    # Refused by the case as it closes, or as a case that has closed.
    assert closed.status_code == 409 and closed.json()["type"].endswith(
        ("case-closed", "refused:case_closed")
    ), closed.text


async def test_a_retried_post_with_the_same_idempotency_key_gets_the_original_answer(
    api: httpx.AsyncClient, who: dict[Role, Caller], pool: asyncpg.Pool
) -> None:
    service = who[Role.service].headers
    loan = loan_id("idem")
    key = {"Idempotency-Key": f"open-{uuid.uuid4()}"}
    body = json.dumps(case_payload(loan))
    send = {"content": body, "headers": {**service, **key, "content-type": "application/json"}}

    first, second = [await api.post("/cases", **send) for _ in range(2)]  # type: ignore[arg-type]
    assert first.status_code == second.status_code == 201, second.text
    assert first.content == second.content
    assert second.headers["idempotent-replayed"] == "true"
    # Without the key the same body is a second attempt, and the case is already open.
    assert_problem(
        await api.post(
            "/cases", content=body, headers={**service, "content-type": "application/json"}
        ),
        409,
        "already-open",
    )

    other = await api.post(
        "/cases",
        json=case_payload(loan_id("idem-other")),
        headers={**service, **key},
    )
    body_of = assert_problem(other, 422, "invalid-input")
    assert body_of["errors"][0]["field"] == "Idempotency-Key"

    # An action too: the payment is applied once, the retry answers the same status.
    pay = {"amount": "10.00", "reference": "P-idem"}
    pay_key = {**service, "Idempotency-Key": f"pay-{uuid.uuid4()}"}
    paid = [await api.post(f"/cases/{loan}/payments", json=pay, headers=pay_key) for _ in "ab"]
    assert paid[0].status_code == paid[1].status_code == 200
    assert paid[0].content == paid[1].content

    rows = await pool.fetchval(
        "SELECT count(*) FROM api_idempotency WHERE key = $1", key["Idempotency-Key"]
    )
    assert rows == 1


async def test_healthz_and_openapi(
    api: httpx.AsyncClient, stack_settings: Settings, dev_client: Client
) -> None:
    health = await api.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "temporal": "ok", "postgresql": "ok"}
    assert (await api.get("/docs")).status_code == 200
    document = (await api.get("/openapi.json")).json()
    assert "/cases/{case_id}/write-off" in document["paths"]

    # PostgreSQL down: 503, naming which.
    dead = await asyncpg.create_pool(
        f"postgresql://postgres@127.0.0.1:{free_port()}/dunning", min_size=0
    )
    try:
        app = create_app(stack_settings, client=dev_client, pool=dead)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            down = await http.get("/healthz")
        assert down.status_code == 503
        assert down.json()["temporal"] == "ok"
        assert down.json()["postgresql"].startswith("down")
    finally:
        await dead.close()
