"""Every (role, endpoint) pair of the HTTP API, allowed or denied, from one table.

Without a token, with an unknown or a revoked one: 401. With a role the endpoint does
not allow: 403. With one it allows, the request gets past authorisation: here that
is the unknown case's 404 (the requests name a case that does not exist, so nothing
is changed), the invalid body's 422 for opening, or the listing's 200.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio.client import Client

from dunning.api import tokens
from dunning.settings import Settings
from schemas.roles import Role
from tests.api_support import Caller, callers, serving
from tests.test_opening import DUNNING, cli_env

SVC, OP, SUP, AUD = "service", "operator", "supervisor", "auditor"
MISSING = f"L-roles-{uuid.uuid4().hex[:8]}"
REASON = {"reason": "why"}


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    roles: frozenset[str]
    allowed_status: int
    body: dict[str, Any] | None = None


def action(path: str, roles: set[str], **body: Any) -> Endpoint:
    return Endpoint("POST", f"/cases/{MISSING}/{path}", frozenset(roles), 404, {**REASON, **body})


# The roles table of the README, endpoint by endpoint.
ENDPOINTS = {
    "open": Endpoint("POST", "/cases", frozenset({SVC}), 422, {}),
    "status": Endpoint("GET", f"/cases/{MISSING}", frozenset({SVC, OP, SUP, AUD}), 404),
    "list": Endpoint("GET", "/cases?stage=reminder", frozenset({OP, SUP, AUD}), 200),
    "history": Endpoint("GET", f"/cases/{MISSING}/history", frozenset({OP, SUP, AUD}), 404),
    "payments": Endpoint(
        "POST",
        f"/cases/{MISSING}/payments",
        frozenset({SVC, OP, SUP}),
        404,
        {"amount": "1.00", "reference": "R-1"},
    ),
    "pause": action("pause", {OP, SUP}),
    "resume": action("resume", {OP, SUP}),
    "promises": action("promises", {OP, SUP}, amount="1.00", pay_by="2030-01-01"),
    "plans": action("plans", {OP, SUP}, instalments=[{"amount": "1.00", "due": "2030-01-01"}]),
    "settlements": action("settlements", {OP, SUP}, amount="1.00", pay_by="2030-01-01"),
    "disputes": action("disputes", {OP, SUP}),
    "disputes/resolve": action("disputes/resolve", {OP, SUP}, outcome="for_lender"),
    "visits": action("visits", {OP, SUP}, at="2030-01-01T10:00:00+08:00", collectors=["a", "b"]),
    "visits/report": action("visits/report", {OP, SUP}, outcome="met"),
    "escalate": action("escalate", {OP, SUP}),
    "deescalate": action("deescalate", {OP, SUP}),
    "close": action("close", {OP, SUP}),
    "write-off": action("write-off", {OP, SUP}),
    "approve": action("approve", {SUP}, request=1),
    "decline": action("decline", {SUP}, request=1),
    "cease": action("cease", {OP, SUP}, channel="sms"),
    "hard-stop": action("hard-stop", {OP, SUP}, kind="deceased"),
    "third-party-opt-out": action("third-party-opt-out", {OP, SUP}, contact=0),
    "policy": action("policy", {SUP}, to="default@1"),
    "notes": action("notes", {OP, SUP}, topic="call"),
    "verify": Endpoint("GET", f"/cases/{MISSING}/verify", frozenset({AUD}), 404),
    "export": Endpoint("POST", f"/cases/{MISSING}/export", frozenset({AUD}), 404, REASON),
    "report": Endpoint(
        "GET", "/reports/effectiveness?from=2020-01-01&to=2020-01-31", frozenset({SUP, AUD}), 200
    ),
    "report page": Endpoint(
        "GET",
        "/reports/effectiveness.html?from=2020-01-01&to=2020-01-31",
        frozenset({SUP, AUD}),
        200,
    ),
}
CALLERS = [SVC, OP, SUP, AUD, "no token", "unknown token", "revoked token"]


@pytest.fixture(scope="module")
async def api(
    dev_client: Client, pool: asyncpg.Pool, stack_settings: Settings
) -> AsyncIterator[httpx.AsyncClient]:
    """No worker: every request is refused, or stops at an unknown case."""
    settings = stack_settings.model_copy(update={"task_queue": f"roles-{uuid.uuid4().hex[:6]}"})
    async with (
        serving(settings, dev_client, pool) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as http,
    ):
        yield http


@pytest.fixture(scope="module")
async def headers(owner_pool: asyncpg.Pool) -> dict[str, dict[str, str]]:
    by_role: dict[Role, Caller] = await callers(owner_pool)
    found = {role.value: caller.headers for role, caller in by_role.items()}
    found["no token"] = {}
    found["unknown token"] = {"Authorization": "Bearer not-a-token"}
    revoked = f"gone-{uuid.uuid4().hex[:6]}"
    token = await tokens.create(owner_pool, Role.supervisor, revoked)
    assert await tokens.revoke(owner_pool, revoked) == 1
    found["revoked token"] = {"Authorization": f"Bearer {token}"}
    return found


@pytest.mark.parametrize("who", CALLERS)
@pytest.mark.parametrize("name", list(ENDPOINTS))
async def test_role_table(
    api: httpx.AsyncClient, headers: dict[str, dict[str, str]], name: str, who: str
) -> None:
    endpoint = ENDPOINTS[name]
    answer = await api.request(
        endpoint.method, endpoint.path, json=endpoint.body, headers=headers[who]
    )
    if who not in Role.__members__:
        expected = 401
    elif who in endpoint.roles:
        expected = endpoint.allowed_status
    else:
        expected = 403
    assert answer.status_code == expected, f"{who} {endpoint.method} {name}: {answer.text}"
    if expected == 401:
        assert answer.headers["www-authenticate"] == "Bearer"
    if expected in (401, 403):
        assert answer.headers["content-type"].startswith("application/problem+json")


def test_the_table_covers_every_route() -> None:
    from dunning.api.app import create_app

    app = create_app(Settings())
    routes = {
        (method, path)
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if path != "/healthz"
    }
    covered = {
        (e.method.lower(), e.path.split("?")[0].replace(MISSING, "{case_id}"))
        for e in ENDPOINTS.values()
    }
    assert routes == covered


async def test_tokens_from_the_command_line(
    api: httpx.AsyncClient, stack_settings: Settings
) -> None:
    env = cli_env(stack_settings)
    name = f"aud-{uuid.uuid4().hex[:6]}"

    async def dunning(*args: str) -> subprocess.CompletedProcess[str]:
        return await asyncio.to_thread(
            subprocess.run, [DUNNING, "token", *args], env=env, capture_output=True, text=True
        )

    created = await dunning("create", "--role", "auditor", "--name", name)
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert len(token) >= 43 and "\n" not in token  # 32 bytes, urlsafe base64; alone on stdout
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await api.get("/cases", headers=bearer)).status_code == 200
    listed = await dunning("list", "--json")
    assert name in listed.stdout and token not in listed.stdout

    assert (await dunning("revoke", name)).returncode == 0
    assert (await api.get("/cases", headers=bearer)).status_code == 401
    assert (await dunning("create", "--role", "root", "--name", "x")).returncode == 2
    assert (await dunning("create", "--role", "auditor", "--name", "no spaces")).returncode == 2
