"""The browser console over HTTP (httpx on a real uvicorn server, the private stack, a
worker): every form refuses a missing or wrong CSRF token and nothing is recorded; an
idle or forged session is sent to sign in; a revoked token ends its session; an
auditor has no action and cannot post one; no personal data in any URL or page title
(every link and form of every page followed), and the case page masks it."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from temporalio.client import Client
from temporalio.worker import Worker

from dunning.action_table import ACTIONS
from dunning.api import tokens
from dunning.case_client import CASE_STATES
from dunning.console.forms import slug
from dunning.console.sessions import COOKIE, Signer, new_session
from dunning.settings import Settings
from schemas.roles import Role
from tests.api_support import Caller, callers, serving
from tests.console_support import PERSONAL, csrf_of, open_case, sign_in, title_of

HREF = re.compile(r'href="([^"]+)"')
ACTION = re.compile(r'action="([^"]+)"')


@pytest.fixture(scope="module")
async def who(owner_pool: asyncpg.Pool) -> dict[Role, Caller]:
    return await callers(owner_pool)


def loan_id(tag: str) -> str:
    return f"L-ui-{tag}-{uuid.uuid4().hex[:8]}"


def browser(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=30, follow_redirects=False)


async def test_every_form_refuses_a_missing_or_wrong_csrf_token(
    base_url: str, who: dict[Role, Caller]
) -> None:
    loan = loan_id("csrf")
    async with browser(base_url) as http:
        await open_case(http, who[Role.service], loan)
        # Signing in: the anonymous session's token.
        await http.get("/ui/sign-in")
        for sent in ({}, {"csrf": "forged"}):
            refused = await http.post(
                "/ui/sign-in", data={**sent, "token": who[Role.supervisor].token}
            )
            assert refused.status_code == 403, refused.text
            assert "set-cookie" not in refused.headers or "." in refused.headers["set-cookie"]
        await sign_in(http, who[Role.supervisor])
        case_page = await http.get(f"/ui/cases/case-{loan}")
        assert case_page.status_code == 200, case_page.text
        good = csrf_of(case_page.text)
        posts = [f"/ui/cases/case-{loan}/actions/{slug(a)}" for a in ACTIONS]
        posts += ["/ui/language", "/ui/sign-out"]
        # Every action form is on the page (a supervisor may use all but none here).
        for action in ACTIONS:
            assert f"/actions/{slug(action)}" in case_page.text or action.name in (
                "approve",
                "decline",  # only under a pending approval
            ), action.name
        for path in posts:
            for sent in ({}, {"csrf": "forged"}, {"csrf": good + "x"}):
                answer = await http.post(path, data={**sent, "reason": "r", "language": "zh-CN"})
                assert answer.status_code == 403, (path, sent, answer.text)
                assert "out of date" in answer.text
        # Nothing happened: still signed in, in English, and the case has no new event.
        after = await http.get(f"/ui/cases/case-{loan}")
        assert after.status_code == 200 and 'lang="en"' in after.text
        assert ">open<" in after.text
        status = await http.get(f"/cases/case-{loan}", headers=who[Role.supervisor].headers)
        assert status.json()["state"] == "open" and status.json()["paused"] is None
        # The right token works.
        paused = await http.post(
            f"/ui/cases/case-{loan}/actions/pause", data={"csrf": good, "reason": "asked"}
        )
        assert paused.status_code == 303, paused.text


async def test_an_idle_forged_or_revoked_session_is_sent_to_sign_in(
    base_url: str, who: dict[Role, Caller], owner_pool: asyncpg.Pool, stack_settings: Settings
) -> None:
    async with browser(base_url) as http:
        assert (await http.get("/ui/cases")).headers["location"] == "/ui/sign-in"
        await sign_in(http, who[Role.operator])
        assert (await http.get("/ui/cases")).status_code == 200
        cookie = http.cookies[COOKIE]
        body, _, mac = cookie.partition(".")
        http.cookies.set(COOKIE, f"{body}.{mac[:-2]}AA", path="/ui")
        forged = await http.get("/ui/cases")
        assert (forged.status_code, forged.headers["location"]) == (303, "/ui/sign-in")

    # A session last used longer ago than the idle limit, signed with the app's key.
    async with browser(base_url) as http:
        await sign_in(http, who[Role.operator])
        app_signer = Signer(stack_settings)  # another key: a cookie it signs is forged
        stale = new_session("en", tokens.token_hash(who[Role.operator].token))
        old = stale.touched(int(time.time()) - stack_settings.console_idle_minutes * 60 - 5)
        http.cookies.set(COOKIE, app_signer.dump(old), path="/ui")
        assert (await http.get("/ui/cases")).headers["location"] == "/ui/sign-in"

    # Revoking the token ends its sessions at the next request.
    name = f"op-revoked-{uuid.uuid4().hex[:6]}"
    token = await tokens.create(owner_pool, Role.operator, name)
    async with browser(base_url) as http:
        await sign_in(http, Caller(Role.operator, name, token))
        assert (await http.get("/ui/cases")).status_code == 200
        await tokens.revoke(owner_pool, name)
        assert (await http.get("/ui/cases")).headers["location"] == "/ui/sign-in"


async def test_an_expired_session_is_sent_to_sign_in_saying_so(
    dev_worker: Worker,
    dev_client: Client,
    pool: asyncpg.Pool,
    stack_settings: Settings,
    task_queue: str,
    who: dict[Role, Caller],
) -> None:
    """The app's own cookie, aged past the idle limit by the app's own signer."""
    settings = stack_settings.model_copy(
        update={
            "task_queue": task_queue,
            "console_secret": SecretStr("k" * 40),
            "console_idle_minutes": 1,
        }
    )
    async with serving(settings, dev_client, pool) as url, browser(url) as http:
        await sign_in(http, who[Role.operator])
        keys = Signer(settings)  # the same secret: the app's key
        session = keys.load(http.cookies[COOKIE])
        assert session is not None and session.signed_in
        http.cookies.set(COOKIE, keys.dump(session.touched(int(time.time()) - 61)), path="/ui")
        expired = await http.get("/ui/cases")
        assert (expired.status_code, expired.headers["location"]) == (
            303,
            "/ui/sign-in?expired=1",
        )
        page = await http.get(expired.headers["location"])
        assert "idle too long" in page.text
        http.cookies.set(COOKIE, keys.dump(session.touched(int(time.time()) - 30)), path="/ui")
        assert (await http.get("/ui/cases")).status_code == 200


async def test_a_service_token_or_a_wrong_one_does_not_sign_in(
    base_url: str, who: dict[Role, Caller]
) -> None:
    async with browser(base_url) as http:
        for token, says in ((who[Role.service].token, "for backends"), ("nope", "unknown")):
            page = await http.get("/ui/sign-in")
            answer = await http.post(
                "/ui/sign-in", data={"csrf": csrf_of(page.text), "token": token}
            )
            assert answer.status_code == 401 and says in answer.text, answer.text
            assert (await http.get("/ui/cases")).status_code == 303


async def test_an_auditor_has_no_action_and_cannot_post_one(
    base_url: str, who: dict[Role, Caller]
) -> None:
    loan = loan_id("aud")
    async with browser(base_url) as http:
        await open_case(http, who[Role.service], loan)
        await sign_in(http, who[Role.auditor])
        page = await http.get(f"/ui/cases/case-{loan}")
        assert page.status_code == 200 and "/actions/" not in page.text
        assert "reads only" in page.text
        answer = await http.post(
            f"/ui/cases/case-{loan}/actions/pause",
            data={"csrf": csrf_of(page.text), "reason": "not mine"},
        )
        assert answer.status_code == 403 and "may not" in answer.text
        dashboard = await http.get("/ui/dashboard")
        assert dashboard.status_code == 403
    status = await httpx.AsyncClient(base_url=base_url).get(
        f"/cases/case-{loan}", headers=who[Role.auditor].headers
    )
    assert status.json()["paused"] is None


async def test_no_personal_data_in_any_url_or_title_and_the_case_page_masks_it(
    base_url: str, who: dict[Role, Caller]
) -> None:
    loan = loan_id("pii")
    async with browser(base_url) as http:
        await open_case(http, who[Role.service], loan)
        await sign_in(http, who[Role.supervisor])
        # Something on the record with the case's own words, and a pending approval.
        page = await http.get(f"/ui/cases/case-{loan}")
        asked = await http.post(
            f"/ui/cases/case-{loan}/actions/write-off",
            data={"csrf": csrf_of(page.text), "reason": "uncollectable"},
        )
        assert asked.status_code == 303
        seen: set[str] = set()
        queue = ["/ui/cases", f"/ui/cases/case-{loan}", f"/ui/cases?loan={loan}", "/ui/dashboard"]
        while queue:
            url = queue.pop()
            if url in seen or not url.startswith("/ui") or url.startswith("/ui/static"):
                continue
            seen.add(url)
            answer = await http.get(url)
            if answer.status_code == 303:
                queue.append(answer.headers["location"])
                continue
            assert answer.status_code == 200, (url, answer.status_code)
            for needle in PERSONAL:
                assert needle not in title_of(answer.text), (url, needle)
                assert needle not in answer.text, (url, needle)  # masked on every page
            for link in HREF.findall(answer.text) + ACTION.findall(answer.text):
                for needle in PERSONAL:
                    assert needle not in link, (url, link)
            for link in HREF.findall(answer.text):  # the GETs a visitor can follow
                parts = urlsplit(link)
                if parts.path.startswith("/ui/cases/") and loan not in parts.path:
                    continue  # other tests' cases: their workers are gone
                queue.append(parts.path + (f"?{parts.query}" if parts.query else ""))
        assert f"/ui/cases/case-{loan}" in seen and "/ui/dashboard" in seen
        # The timeline shows what was recorded, masked as `dunning audit history` masks it.
        case_page = (await http.get(f"/ui/cases/case-{loan}")).text
        assert '"name": "W***"' in case_page and '"***00"' in case_page


async def test_the_list_filters_by_state_and_policy_and_a_form_names_a_bad_field(
    base_url: str, who: dict[Role, Caller]
) -> None:
    paused, other = loan_id("flt-p"), loan_id("flt-o")
    async with browser(base_url) as http:
        for loan in (paused, other):
            await open_case(http, who[Role.service], loan)
        await sign_in(http, who[Role.operator])
        page = await http.get(f"/ui/cases/case-{paused}")
        done = await http.post(
            f"/ui/cases/case-{paused}/actions/pause",
            data={"csrf": csrf_of(page.text), "reason": "hardship"},
        )
        assert done.headers["location"] == f"/ui/cases/case-{paused}?done=pause"

        async def listed(**query: str) -> str:
            answer = await http.get("/ui/cases", params=query)
            assert answer.status_code == 200, answer.text
            return answer.text

        # The same listing as the API's (search attributes, updated as the case waits).
        by_api = await http.get(
            "/cases", params={"state": "paused"}, headers=who[Role.operator].headers
        )
        assert by_api.status_code == 200, by_api.text
        for _ in range(50):
            if f"case-{paused}" in await listed(state="paused"):
                break
            await asyncio.sleep(0.2)
        text = await listed(state="paused", policy="default@1")
        assert f"case-{paused}" in text and f"case-{other}" not in text
        assert f"case-{other}" in await listed(state="open")
        assert f"case-{paused}" not in await listed(policy="early-negotiation@1")
        bad = await http.get("/ui/cases", params={"policy": "not a policy"})
        assert bad.status_code == 400 and "policy: NAME@VERSION" in bad.text
        # Days past due, as the case last published them (1 here), both ends included.
        assert f"case-{paused}" in await listed(state="paused", dpd_from="1", dpd_to="1")
        assert f"case-{paused}" not in await listed(state="paused", dpd_from="2")
        assert f"case-{paused}" not in await listed(state="paused", dpd_to="0")
        for query, named in (({"dpd_from": "soon"}, "dpd_from"), ({"dpd_to": "-1"}, "dpd_to")):
            refused = await http.get("/ui/cases", params=query)
            assert refused.status_code == 400 and f"{named}: a whole number of days" in refused.text
        upside_down = await http.get("/ui/cases", params={"dpd_from": "9", "dpd_to": "2"})
        assert (
            upside_down.status_code == 400 and "dpd_to: 2 is below dpd_from (9)" in upside_down.text
        )
        by_days = await http.get(
            "/cases",
            params={"state": "paused", "dpd_from": 1, "dpd_to": 1},
            headers=who[Role.operator].headers,
        )
        assert f"case-{paused}" in by_days.text
        api_days = await http.get(
            "/cases", params={"dpd_from": 9, "dpd_to": 2}, headers=who[Role.operator].headers
        )
        assert api_days.status_code == 422 and api_days.json()["errors"][0]["field"] == "dpd_to"
        api_bad = await http.get(
            "/cases", params={"state": "asleep"}, headers=who[Role.operator].headers
        )
        assert api_bad.status_code == 422 and api_bad.json()["errors"][0]["field"] == "state"

        # A field that does not fit is named at the field; nothing is recorded.
        page = await http.get(f"/ui/cases/case-{other}")
        wrong = await http.post(
            f"/ui/cases/case-{other}/actions/promise",
            data={"csrf": csrf_of(page.text), "reason": "r", "amount": "-3", "pay_by": "soon"},
        )
        assert wrong.status_code == 422, wrong.text
        assert "Check the form: amount, pay_by" in wrong.text
        # The case refuses what does not fit it: more than the balance.
        plan = await http.post(
            f"/ui/cases/case-{other}/actions/plan",
            data={
                "csrf": csrf_of(page.text),
                "reason": "r",
                "instalments": "5000.00@2099-01-01\n",
            },
        )
        assert plan.status_code in (409, 422), plan.text
        assert "The case refused" in plan.text and "code " in plan.text
        status = await http.get(f"/cases/case-{other}", headers=who[Role.operator].headers)
        assert status.json()["promise"] is None and status.json()["plan"] is None

        # In Chinese, chosen on any page, kept in the session.
        switched = await http.post(
            "/ui/language",
            data={"csrf": csrf_of(page.text), "language": "zh-CN", "back": "/ui/cases"},
        )
        assert switched.headers["location"] == "/ui/cases"
        assert "案件" in (await http.get("/ui/cases")).text
        away = await http.post(
            "/ui/language",
            data={"csrf": csrf_of(page.text), "language": "en", "back": "//elsewhere.example"},
        )
        assert away.headers["location"] == "/ui/cases"


async def test_a_dependency_not_answering_is_a_page_under_ui_and_a_problem_elsewhere() -> None:
    from temporalio.service import RPCError, RPCStatusCode

    from dunning.api.app import create_app

    app = create_app(Settings())

    async def down() -> None:
        raise RPCError("unavailable", RPCStatusCode.UNAVAILABLE, b"")

    app.add_api_route("/ui/down", down)
    app.add_api_route("/down", down)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # no lifespan
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as http:
        page = await http.get("/ui/down", headers={"Accept-Language": "zh-CN"})
        assert page.status_code == 503 and page.headers["content-type"].startswith("text/html")
        assert "依赖服务未响应" in page.text
        problem = await http.get("/down")
        assert problem.status_code == 503
        assert problem.headers["content-type"].startswith("application/problem+json")


def test_every_word_on_the_pages_is_in_both_languages() -> None:
    """The templates' message keys, every action of the table and every field of its
    terms, every role: each has an English and a Chinese text (no fallback shown)."""
    from pathlib import Path

    from dunning.console import messages

    folder = Path(messages.__file__).parent / "templates"
    used = {
        key
        for template in folder.glob("*.j2")
        for key in re.findall(r"""\bt\(\s*["']([a-z_.]+)["']""", template.read_text())
        if not key.endswith(".")  # a prefix: the table's names, below
    }
    assert len(used) > 50, used  # the pattern finds the templates' keys
    used |= {f"action.{a.name}" for a in ACTIONS}
    used |= {f"field.{name}" for a in ACTIONS for name in a.terms.model_fields}
    used |= {f"role.{role.value}" for role in Role}
    used |= {f"state.{state}" for state in CASE_STATES}
    missing = used - messages.keys()
    assert not missing, sorted(missing)
    for key in used:
        assert messages.text("en", key) != messages.text("zh-CN", key), key
