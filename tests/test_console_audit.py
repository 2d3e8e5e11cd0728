"""The auditors' page of the console over HTTP (httpx on a real uvicorn server, the
private stack, a worker): a reveal is refused without the CSRF token or a reason (the
field named) and then nothing is recorded or shown; a reveal is recorded in
`audit_reveals`, with its reason, before anything is shown (with the insert refused,
nothing is); the clear fields are on the reveal's answer only (no-store), never in a
URL or title; the export's zip matches its manifest and the audit rows and is recorded
too; a row changed by a superuser shows as broken; non-auditors have no audit page and
are refused if they post a reveal or an export."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import re
import uuid
import zipfile

import asyncpg
import httpx
import pytest

from activities.audit_store import read_rows
from schemas.roles import Role
from tests.api_support import Caller, callers
from tests.console_support import csrf_of, open_case, sign_in, title_of

HREF = re.compile(r'(?:href|action)="([^"]+)"')
CLEAR = ("Wang Xiaoming", "Century Avenue")
# The sample borrower's name, phones (as stored and as given) and address, in forms a
# hash, a token or an id (hex, base64) cannot hold by chance (console_support.PERSONAL
# has bare 4-digit tails too, which a hex hash on the audit page may).
PERSONAL = (
    "Wang",
    "Xiaoming",
    "8613800138000",
    "8613912345678",
    "138 0013",
    "0013 8000",
    "1234 5678",
    "Century",
)


@pytest.fixture(scope="module")
async def who(owner_pool: asyncpg.Pool) -> dict[Role, Caller]:
    return await callers(owner_pool)


def browser(base_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, timeout=30, follow_redirects=False)


async def opened(http: httpx.AsyncClient, who: dict[Role, Caller], pool: asyncpg.Pool) -> str:
    """A new case with its first audit rows written; its case id."""
    loan = f"L-uiaud-{uuid.uuid4().hex[:8]}"
    await open_case(http, who[Role.service], loan)
    case_id = f"case-{loan}"
    for _ in range(100):
        async with pool.acquire() as conn:
            if await read_rows(conn, case_id):
                return case_id
        await asyncio.sleep(0.1)
    raise AssertionError(f"{case_id}: no audit rows")


async def reveals(owner_pool: asyncpg.Pool, case_id: str) -> list[tuple[str, str]]:
    """The case's recorded reveals (read as the owner: the application may only add)."""
    async with owner_pool.acquire() as conn:
        found = await conn.fetch(
            "SELECT auditor, reason FROM audit_reveals WHERE case_id = $1 ORDER BY id", case_id
        )
    return [(r["auditor"], r["reason"]) for r in found]


def no_personal_data(text: str) -> None:
    for needle in PERSONAL:
        assert needle not in text, (needle, text[:200])


async def test_a_reveal_needs_the_csrf_token_and_a_reason(
    base_url: str, who: dict[Role, Caller], pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    async with browser(base_url) as http:
        case_id = await opened(http, who, pool)
        await sign_in(http, who[Role.auditor])
        page = await http.get(f"/ui/cases/{case_id}/audit")
        assert page.status_code == 200, page.text
        good = csrf_of(page.text)
        for path in ("reveal", "export"):
            for sent in ({}, {"csrf": "forged"}, {"csrf": good + "x"}):
                answer = await http.post(
                    f"/ui/cases/{case_id}/audit/{path}", data={**sent, "reason": "subpoena 7"}
                )
                assert answer.status_code == 403, (path, sent, answer.text)
                assert "out of date" in answer.text
                no_personal_data(answer.text)
            for reason in (None, "", "   ", "\u200b", "x" * 501):
                data = {"csrf": good} | ({"reason": reason} if reason is not None else {})
                answer = await http.post(f"/ui/cases/{case_id}/audit/{path}", data=data)
                assert answer.status_code == 422, (path, reason, answer.text)
                assert answer.headers["content-type"].startswith("text/html")
                assert "Check the form: reason" in answer.text
                assert 'class="field-error"' in answer.text
                no_personal_data(answer.text)
    assert await reveals(owner_pool, case_id) == []


async def test_a_reveal_is_recorded_before_anything_is_shown(
    base_url: str,
    who: dict[Role, Caller],
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    capfd: pytest.CaptureFixture[str],
) -> None:
    auditor = who[Role.auditor]
    async with browser(base_url) as http:
        case_id = await opened(http, who, pool)
        await sign_in(http, auditor)
        case_page = await http.get(f"/ui/cases/{case_id}")
        assert f'href="/ui/cases/{case_id}/audit"' in case_page.text
        page = await http.get(f"/ui/cases/{case_id}/audit")
        assert page.status_code == 200, page.text
        no_personal_data(page.text)  # masked until revealed
        assert 'id="form-reveal"' in page.text
        csrf = csrf_of(page.text)

        # The record cannot be written: nothing is shown.
        async with owner_pool.acquire() as conn:
            await conn.execute("REVOKE INSERT ON audit_reveals FROM dunning_app")
        try:
            refused = await http.post(
                f"/ui/cases/{case_id}/audit/reveal", data={"csrf": csrf, "reason": "ticket 1"}
            )
        finally:
            async with owner_pool.acquire() as conn:
                await conn.execute("GRANT INSERT ON audit_reveals TO dunning_app")
        assert refused.status_code == 500
        no_personal_data(refused.text)
        assert await reveals(owner_pool, case_id) == []

        shown = await http.post(
            f"/ui/cases/{case_id}/audit/reveal",
            data={"csrf": csrf, "reason": "  court order 2026/117  "},
        )
        assert shown.status_code == 200, shown.text
        assert shown.headers["cache-control"] == "no-store"
        for clear in CLEAR:
            assert clear in shown.text, clear
        assert await reveals(owner_pool, case_id) == [(auditor.name, "court order 2026/117")]
        no_personal_data(title_of(shown.text))
        for url in HREF.findall(shown.text):
            no_personal_data(url)

        # Shown on that answer only: the audit page, the case page, a reload are masked.
        for path in (f"/ui/cases/{case_id}/audit", f"/ui/cases/{case_id}"):
            again = await http.get(path)
            assert again.status_code == 200, again.text
            no_personal_data(again.text)
        reload = await http.get(f"/ui/cases/{case_id}/audit/reveal")
        assert reload.status_code == 303
        assert reload.headers["location"] == f"/ui/cases/{case_id}/audit"
    assert len(await reveals(owner_pool, case_id)) == 1
    logged = "".join(capfd.readouterr())  # the server's and the worker's lines, this test's
    assert "audit appended" in logged  # the capture sees the log
    no_personal_data(logged)


async def test_the_export_download_matches_its_manifest_and_is_recorded(
    base_url: str,
    who: dict[Role, Caller],
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    capfd: pytest.CaptureFixture[str],
) -> None:
    auditor = who[Role.auditor]
    async with browser(base_url) as http:
        case_id = await opened(http, who, pool)
        await sign_in(http, auditor)
        page = await http.get(f"/ui/cases/{case_id}/audit")
        answer = await http.post(
            f"/ui/cases/{case_id}/audit/export",
            data={"csrf": csrf_of(page.text), "reason": "annual review"},
        )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/zip"
    assert answer.headers["cache-control"] == "no-store"
    disposition = answer.headers["content-disposition"]
    assert disposition.startswith("attachment;")
    assert f'filename="audit-export-{case_id}.zip"' in disposition
    no_personal_data(disposition)
    assert await reveals(owner_pool, case_id) == [(auditor.name, "export: annual review")]

    packed = zipfile.ZipFile(io.BytesIO(answer.content))
    names = packed.namelist()
    assert all(name.startswith(f"{case_id}/") for name in names), names
    manifest = json.loads(packed.read(f"{case_id}/manifest.json"))
    files = {name.removeprefix(f"{case_id}/") for name in names} - {"manifest.json"}
    assert set(manifest["files"]) == files and "audit.jsonl" in files
    assert any(name.startswith("history-001-") for name in files), files
    for name, digest in manifest["files"].items():
        assert hashlib.sha256(packed.read(f"{case_id}/{name}")).hexdigest() == digest, name
    lines = packed.read(f"{case_id}/audit.jsonl").decode().splitlines()
    exported = [json.loads(line) for line in lines]
    async with pool.acquire() as conn:
        rows = await read_rows(conn, case_id)
    assert len(exported) == manifest["rows"] >= 1
    assert exported == [row.as_json() for row in rows[: len(exported)]]
    assert manifest["head_hash"] == exported[-1]["hash"]
    assert manifest["case_id"] == case_id and len(manifest["runs"]) >= 1
    assert any("Wang Xiaoming" in packed.read(f"{case_id}/{name}").decode() for name in files)
    logged = "".join(capfd.readouterr())
    assert "audit appended" in logged
    no_personal_data(logged)


async def test_verify_shows_a_row_changed_by_a_superuser_as_broken(
    base_url: str, who: dict[Role, Caller], pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    async with browser(base_url) as http:
        case_id = await opened(http, who, pool)
        await sign_in(http, who[Role.auditor])
        clean = await http.get(f"/ui/cases/{case_id}/audit")
        assert clean.status_code == 200, clean.text
        assert "Intact" in clean.text and 'id="problems"' not in clean.text

        async with owner_pool.acquire() as conn, conn.transaction():
            # A superuser can switch the trigger off: the chain is what still tells.
            await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
            await conn.execute(
                "UPDATE audit_events SET actor = 'someone-else' WHERE case_id = $1 AND seq = 1",
                case_id,
            )
            await conn.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")

        broken = await http.get(f"/ui/cases/{case_id}/audit")
    assert broken.status_code == 200, broken.text
    assert "Broken:" in broken.text
    problems = broken.text.split('id="problems"', 1)[1].split("</table>", 1)[0]
    assert "<td>1</td><td>chain</td><td>hash does not match the row&#39;s content</td>" in (
        problems
    ), problems


async def test_non_auditors_have_no_audit_page_and_cannot_post_to_it(
    base_url: str, who: dict[Role, Caller], pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    for role in (Role.operator, Role.supervisor):
        async with browser(base_url) as http:
            case_id = await opened(http, who, pool)
            await sign_in(http, who[role])
            case_page = await http.get(f"/ui/cases/{case_id}")
            assert case_page.status_code == 200, case_page.text
            assert "/audit" not in case_page.text and "reveal" not in case_page.text.lower()
            csrf = csrf_of(case_page.text)
            page = await http.get(f"/ui/cases/{case_id}/audit")
            assert page.status_code == 403, page.text
            assert "for auditors" in page.text
            for path in ("reveal", "export"):
                answer = await http.post(
                    f"/ui/cases/{case_id}/audit/{path}", data={"csrf": csrf, "reason": "curious"}
                )
                assert answer.status_code == 403, (role, path, answer.text)
                no_personal_data(answer.text)
                assert answer.headers["content-type"].startswith("text/html")
            assert await reveals(owner_pool, case_id) == []
    # Not signed in: sent to sign in.
    async with browser(base_url) as http:
        answer = await http.get(f"/ui/cases/{case_id}/audit")
        assert (answer.status_code, answer.headers["location"]) == (303, "/ui/sign-in")


async def test_an_unknown_case_is_not_found(base_url: str, who: dict[Role, Caller]) -> None:
    async with browser(base_url) as http:
        await sign_in(http, who[Role.auditor])
        page = await http.get("/ui/cases/case-L-nobody-here/audit")
        assert page.status_code == 404, page.text
        csrf = csrf_of(page.text)
        for path in ("reveal", "export"):
            answer = await http.post(
                f"/ui/cases/case-L-nobody-here/audit/{path}", data={"csrf": csrf, "reason": "r"}
            )
            assert answer.status_code == 404, (path, answer.text)


# --- the same over the HTTP API -----------------------------------------------------


async def test_the_api_verifies_and_exports_for_auditors(
    base_url: str, who: dict[Role, Caller], pool: asyncpg.Pool, owner_pool: asyncpg.Pool
) -> None:
    auditor = who[Role.auditor]
    async with browser(base_url) as http:
        case_id = await opened(http, who, pool)
        clean = await http.get(f"/cases/{case_id}/verify", headers=auditor.headers)
        assert clean.status_code == 200, clean.text
        report = clean.json()
        assert report["ok"] is True and report["problems"] == [], report
        assert report["case_id"] == case_id and report["rows"] >= 1
        assert report["live"] == "open"

        for body in ({}, {"reason": ""}, {"reason": "x" * 501}):
            refused = await http.post(
                f"/cases/{case_id}/export", json=body, headers=auditor.headers
            )
            assert refused.status_code == 422, refused.text
            assert "reason" in refused.text
        replayable = await http.post(
            f"/cases/{case_id}/export",
            json={"reason": "audit 9"},
            headers={**auditor.headers, "Idempotency-Key": "export-once"},
        )
        assert replayable.status_code == 422, replayable.text
        assert "Idempotency-Key" in replayable.text
        assert await reveals(owner_pool, case_id) == []

        download = await http.post(
            f"/cases/{case_id}/export", json={"reason": "audit 9"}, headers=auditor.headers
        )
        assert download.status_code == 200, download.text
        assert download.headers["content-type"] == "application/zip"
        assert download.headers["cache-control"] == "no-store"
        assert f'filename="audit-export-{case_id}.zip"' in download.headers["content-disposition"]
        packed = zipfile.ZipFile(io.BytesIO(download.content))
        manifest = json.loads(packed.read(f"{case_id}/manifest.json"))
        for name, digest in manifest["files"].items():
            assert hashlib.sha256(packed.read(f"{case_id}/{name}")).hexdigest() == digest, name
        assert manifest["head_hash"] == report["head_hash"] or manifest["rows"] > report["rows"]
        assert await reveals(owner_pool, case_id) == [(auditor.name, "export: audit 9")]

        async with owner_pool.acquire() as conn, conn.transaction():
            await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
            await conn.execute(
                "UPDATE audit_events SET actor = 'someone-else' WHERE case_id = $1 AND seq = 1",
                case_id,
            )
            await conn.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
        broken = await http.get(f"/cases/{case_id}/verify", headers=auditor.headers)
        assert broken.status_code == 200, broken.text
        assert broken.json()["ok"] is False
        assert broken.json()["problems"][0] == {
            "seq": 1,
            "check": "chain",
            "detail": "hash does not match the row's content",
        }
        for role in (Role.operator, Role.supervisor, Role.service):
            for method, path in (("GET", "verify"), ("POST", "export")):
                answer = await http.request(
                    method,
                    f"/cases/{case_id}/{path}",
                    json={"reason": "curious"} if method == "POST" else None,
                    headers=who[role].headers,
                )
                assert answer.status_code == 403, (role, path, answer.text)
        unknown = await http.get("/cases/case-L-nobody-here/verify", headers=auditor.headers)
        assert unknown.status_code == 404, unknown.text
    assert len(await reveals(owner_pool, case_id)) == 1
