"""The collectors' pages over HTTP against a real server with a worker on the private
stack: a collector lands on their team's queue, claims the task of a case whose
agent call is due, is shown the phone number (the reveal recorded) where no one else
is, and completes the task with a promise the case records; every form refuses a
missing or wrong CSRF token; no URL or page title holds personal data."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.client import Client

from schemas.roles import Role
from tests.api_support import Caller, callers
from tests.call_queue_support import collector, open_agent_case, task_of, team
from tests.console_support import PERSONAL, csrf_of, title_of
from tests.console_support import sign_in as supervisor_sign_in
from tests.records import audit_events
from tests.test_api import poll

CLEAR_PHONE = "+8613800138000"


async def sign_in(http: httpx.AsyncClient, caller: Caller) -> None:
    page = await http.get("/ui/sign-in")
    answer = await http.post(
        "/ui/sign-in", data={"csrf": csrf_of(page.text), "token": caller.token, "language": "en"}
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/ui/queue", "collectors land on their queue"


def _clean(response: httpx.Response) -> None:
    """Neither the address nor the page's title names the borrower."""
    for part in (*PERSONAL, CLEAR_PHONE):
        assert part not in str(response.url), response.url
        if "<title>" in response.text:
            assert part not in title_of(response.text), title_of(response.text)
        assert part not in response.headers.get("location", "")


async def test_a_collector_claims_sees_the_phone_recorded_and_completes_with_a_promise(
    base_url: str,
    dev_client: Client,
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    task_queue: str,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    crew = team()
    me, colleague, elsewhere = (
        await collector(owner_pool, crew),
        await collector(owner_pool, crew),
        await collector(owner_pool, team()),
    )
    handle = await open_agent_case(dev_client, task_queue, crew, f"L-cq-{uuid.uuid4().hex[:8]}")
    task = await task_of(pool, handle.id)
    seen: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        seen.append(response)

    hooks = {"response": [keep]}
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30, event_hooks=hooks) as http,
        httpx.AsyncClient(base_url=base_url, timeout=30, event_hooks=hooks) as other,
        httpx.AsyncClient(base_url=base_url, timeout=30, event_hooks=hooks) as stranger,
    ):
        for client, who in ((http, me), (other, colleague), (stranger, elsewhere)):
            await sign_in(client, who)
        # The supervisors' dashboard counts the team's queue.
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as boss:
            await supervisor_sign_in(boss, (await callers(owner_pool))[Role.supervisor])
            board = await boss.get("/ui/dashboard")
            assert board.status_code == 200
            assert re.search(rf"<td>{crew}</td><td>1</td><td>\d+ min</td>", board.text)
        queue = await http.get("/ui/queue")
        assert queue.status_code == 200
        assert re.search(r'id="queue-depth">1<', queue.text), "one task waits"
        csrf = csrf_of(queue.text)
        # The cases are not a collector's: they are sent to their queue.
        listing = await http.get("/ui/cases")
        assert listing.status_code == 303 and listing.headers["location"] == "/ui/queue"

        for bad in ({}, {"csrf": "forged"}):
            refused = await http.post("/ui/queue/claim", data=bad)
            assert refused.status_code == 403 and "out of date" in refused.text
        assert await pool.fetchval("SELECT state FROM call_tasks WHERE id = $1", task) == "queued"
        # Another team's collector finds nothing to claim.
        empty = await stranger.post(
            "/ui/queue/claim", data={"csrf": csrf_of((await stranger.get("/ui/queue")).text)}
        )
        assert empty.status_code == 200 and 'id="queue-empty"' in empty.text

        claimed = await http.post("/ui/queue/claim", data={"csrf": csrf})
        assert claimed.status_code == 303, claimed.text
        assert claimed.headers["location"] == f"/ui/tasks/{task}"
        page = await http.get(f"/ui/tasks/{task}")
        assert page.status_code == 200 and "reminder" in page.text
        assert CLEAR_PHONE not in page.text, "the number only on asking"

        # Only the claiming collector: a colleague of the same team is told there is none.
        other_csrf = csrf_of((await other.get("/ui/queue")).text)
        assert (await other.get(f"/ui/tasks/{task}")).status_code == 404
        peek = await other.post(f"/ui/tasks/{task}/phone", data={"csrf": other_csrf})
        assert peek.status_code == 404 and CLEAR_PHONE not in peek.text
        steal = await other.post(
            f"/ui/tasks/{task}/complete", data={"csrf": other_csrf, "outcome": "no_answer"}
        )
        assert steal.status_code == 404

        for bad in ({}, {"csrf": "forged"}):
            refused = await http.post(f"/ui/tasks/{task}/phone", data=bad)
            assert refused.status_code == 403 and CLEAR_PHONE not in refused.text
        before = await owner_pool.fetchval(
            "SELECT count(*) FROM audit_reveals WHERE case_id = $1", handle.id
        )
        assert before == 0
        shown = await http.post(f"/ui/tasks/{task}/phone", data={"csrf": csrf})
        assert shown.status_code == 200 and CLEAR_PHONE in shown.text
        assert shown.headers["cache-control"] == "no-store"
        reveals = await owner_pool.fetch(
            "SELECT auditor, reason FROM audit_reveals WHERE case_id = $1", handle.id
        )
        assert [(r["auditor"], r["reason"]) for r in reveals] == [
            (me.name, f"call task {task}: the claiming collector's call")
        ]

        for bad in ({}, {"csrf": "forged"}):
            refused = await http.post(
                f"/ui/tasks/{task}/complete", data={**bad, "outcome": "no_answer"}
            )
            assert refused.status_code == 403
        wrong = await http.post(
            f"/ui/tasks/{task}/complete",
            data={"csrf": csrf, "outcome": "promise", "amount": "-3", "pay_by": "2026-12-20"},
        )
        assert wrong.status_code == 422 and "amount" in wrong.text
        assert await pool.fetchval("SELECT state FROM call_tasks WHERE id = $1", task) == "claimed"
        done = await http.post(
            f"/ui/tasks/{task}/complete",
            data={"csrf": csrf, "outcome": "promise", "amount": "300.00", "pay_by": "2026-12-20"},
        )
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"/ui/queue?completed={task}"
        row = await pool.fetchrow("SELECT * FROM call_tasks WHERE id = $1", task)
        assert row["state"] == "completed" and row["outcome"] == "promise"
        assert str(row["promise_amount"]) == "300.00"
    attempted: Any = await poll(lambda: _contact(pool, handle.id))
    assert attempted.outcome == "promise" and attempted.provider_ref == f"call-task-{task}"
    kinds = [e.type for e in await audit_events(pool, handle.id)]
    assert kinds.index("promise_made") < kinds.index("contact_attempted"), kinds
    for response in seen:
        _clean(response)
    await handle.terminate("test over")
    # No log line of the worker, the API or the console names the borrower.
    out, err = capfd.readouterr()
    lines = out + err + "\n".join(r.getMessage() for r in caplog.records)
    assert "claim" in lines or "call task" in lines or "outbound" in lines, "logs were captured"
    # (PERSONAL's short digit runs, 8000 and 5678, are in timestamps too.)
    for part in ("Wang", "Xiaoming", "Century", "138 0013", "13800138000", "139 1234"):
        assert part not in lines, part


async def _contact(pool: asyncpg.Pool, case_id: str) -> object | None:
    for event in await audit_events(pool, case_id):
        if event.type == "contact_attempted":
            return event
    return None


def test_the_console_has_every_collector_word_in_both_languages() -> None:
    from dunning.console.messages import _TEXT

    for key in ("queue", "claim", "task", "show_phone", "complete_task", "role.collector"):
        en, zh = _TEXT[key]
        assert en and zh and en != zh
    assert Role.collector.value == "collector"
