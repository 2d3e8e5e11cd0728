"""The browser console in a real browser: Debian's chromium, headless, driven by
Playwright (never a browser Playwright downloads; skipped without chromium, failing in
CI), against a real server on the private stack with a worker. An operator signs in,
finds a case by its loan id, pauses it, and sees the case's refusal when pausing it
again; requests a write-off, which a supervisor approves; an auditor has no form and a
crafted post is refused, and they reveal a case's masked fields with a reason
(recorded). Screenshots of the case page, the dashboard and the audit page are saved in
docs/screenshots/ (README, docs/console.md); the case page fits a phone's width.
Every page at 390x844 and 1280x800, in both languages: no sideways scroll, every field
labelled; a case paused by keyboard only, the focus ring visible at each stop."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx

from schemas.roles import Role
from tests.api_support import Caller, callers
from tests.console_support import PERSONAL, open_case
from tests.factories import case_payload
from tests.test_report_page import ARGS, SCREENSHOTS, chromium

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


ERRORS: list[str] = []  # the browser's console errors (a blocked script or style, ...)


async def sign_in(browser: Any, base_url: str, caller: Caller, viewport: dict[str, int]) -> Any:
    context = await browser.new_context(viewport=viewport, base_url=base_url)
    page = await context.new_page()
    page.on(
        "console",
        lambda message: ERRORS.append(message.text) if message.type == "error" else None,
    )
    page.on("pageerror", lambda error: ERRORS.append(str(error)))
    await page.goto("/ui/cases")  # sent to sign in
    assert page.url.endswith("/ui/sign-in")
    await page.get_by_label("API token").fill(caller.token)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url("**/ui/cases")
    return page


async def act(page: Any, action: str, button: str, fields: dict[str, str]) -> None:
    """Open an action's form on the case page, fill it by its labels, submit it."""
    form = page.locator(f"#action-{action}")
    await form.locator("summary").click()
    for label, value in fields.items():
        await form.get_by_label(label).fill(value)
    await form.get_by_role("button", name=button).click()


async def test_operators_supervisors_and_auditors_in_the_browser(
    base_url: str, owner_pool: asyncpg.Pool
) -> None:
    executable = chromium()
    from playwright.async_api import async_playwright, expect

    who = await callers(owner_pool)
    loan = f"L-uib-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        await open_case(http, who[Role.service], loan)
    urls: list[str] = []
    titles: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            page = await sign_in(browser, base_url, who[Role.operator], DESKTOP)
            page.on("request", lambda request: urls.append(request.url))
            # Find the case by its loan id.
            await page.get_by_label("Loan id").fill(loan)
            await page.get_by_role("button", name="Find").click()
            await page.wait_for_url(f"**/ui/cases/case-{loan}")
            await expect(page.locator("#case-state")).to_have_text("open")
            assert await page.evaluate("typeof window.htmx") == "object"  # loaded, allowed
            titles.append(await page.title())

            # Pause, then pause again: the case refuses, its reason in the form.
            await act(page, "pause", "Pause", {"reason (required)": "borrower in hospital"})
            await expect(page.locator("#case-state")).to_have_text("paused")
            await expect(page.get_by_role("status")).to_contain_text("Done: Pause.")
            await act(page, "pause", "Pause", {"reason (required)": "again"})
            refusal = page.locator("#action-pause .refusal")
            await expect(refusal).to_contain_text("already paused since")
            await expect(refusal).to_contain_text("already_paused")
            await expect(page.locator("#case-state")).to_have_text("paused")
            # Resume with the keyboard only: open the form, type the reason, submit.
            await page.locator("#action-resume summary").focus()
            await page.keyboard.press("Enter")
            await page.keyboard.press("Tab")
            await page.keyboard.type("discharged")
            await page.keyboard.press("Tab")
            await page.keyboard.press("Enter")
            await expect(page.locator("#case-state")).to_have_text("open")
            await expect(page.get_by_role("status")).to_contain_text("Done: Resume.")
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, overflow  # 1280 x 800: nothing scrolls sideways

            # The operator asks for a write-off: it waits for a supervisor.
            await act(page, "write-off", "Request a write-off", {"reason (required)": "deceased"})
            await expect(page.get_by_role("status")).to_contain_text("waits for a supervisor")
            await expect(page.locator("#approvals")).to_contain_text("write_off")
            await expect(page.locator("#approvals form")).to_have_count(0)  # not an operator's
            titles.append(await page.title())

            # A supervisor approves it.
            boss = await sign_in(browser, base_url, who[Role.supervisor], DESKTOP)
            boss.on("request", lambda request: urls.append(request.url))
            await boss.goto(f"/ui/cases/case-{loan}")
            approve = boss.locator("#approvals form[action$='/actions/approve']")
            await expect(approve).to_have_count(1)
            await approve.get_by_label("reason (required)").fill("estate confirmed")
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await boss.screenshot(path=str(SCREENSHOTS / "console-case.png"), full_page=True)
            await approve.get_by_role("button", name="Approve").click()
            await expect(boss.locator("#case-state")).to_contain_text("closed (written_off)")
            await expect(boss.locator("#actions")).not_to_contain_text("Pause")
            titles.append(await boss.title())

            # More cases for the dashboard: later stages, one paused.
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
                for index, days in enumerate((1, 16, 16, 31)):
                    more = f"L-uid-{uuid.uuid4().hex[:8]}"
                    opened = await http.post(
                        "/cases",
                        json=case_payload(more, loan={"days_past_due": days}),
                        headers=who[Role.service].headers,
                    )
                    assert opened.status_code == 201, opened.text
                    if index < 2:  # promises due today, one of them kept
                        promised = await http.post(
                            f"/cases/{more}/promises",
                            json={"amount": "300.00", "pay_by": shanghai_today(), "reason": "pay"},
                            headers=who[Role.operator].headers,
                        )
                        assert promised.status_code == 200, promised.text
                    if index == 1:
                        paid = await http.post(
                            f"/cases/{more}/payments",
                            json={"amount": "300.00", "reference": f"p-{more}"},
                            headers=who[Role.service].headers,
                        )
                        assert paid.status_code == 200, paid.text
                paused = await http.post(
                    f"/cases/{more}/pause",
                    json={"reason": "hardship"},
                    headers=who[Role.operator].headers,
                )
                assert paused.status_code == 200, paused.text
            await boss.get_by_role("link", name="Dashboard").click()
            await boss.wait_for_url("**/ui/dashboard")
            for _ in range(30):  # the listing follows the cases' search attributes
                kept = await boss.locator("#fig-promises").inner_text()
                if "paused" in await boss.locator("main table").first.inner_text() and (
                    "kept" in kept
                ):
                    break
                await boss.wait_for_timeout(300)
                await boss.reload()
            await expect(boss.locator("svg.chart").first).to_be_visible()
            await boss.screenshot(path=str(SCREENSHOTS / "console-dashboard.png"), full_page=True)
            titles.append(await boss.title())

            # An auditor reads, has no form, and a crafted post is refused.
            auditor = await sign_in(browser, base_url, who[Role.auditor], DESKTOP)
            await auditor.goto(f"/ui/cases/case-{loan}")
            await expect(auditor.locator("form[action*='/actions/']")).to_have_count(0)
            await expect(auditor.locator("#actions")).to_contain_text("closed")
            other = f"L-uia-{uuid.uuid4().hex[:8]}"
            async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
                await open_case(http, who[Role.service], other)
            await auditor.goto(f"/ui/cases/case-{other}")
            await expect(auditor.locator("#actions")).to_contain_text("reads only")
            # Their audit page: the verify result, then a reveal with a reason.
            auditor.on("request", lambda request: urls.append(request.url))
            await auditor.locator("#audit-link").click()
            await auditor.wait_for_url(f"**/ui/cases/case-{other}/audit")
            await expect(auditor.locator("#verify-result")).to_contain_text("Intact")
            await expect(auditor.locator("main")).not_to_contain_text("Wang Xiaoming")
            await auditor.screenshot(path=str(SCREENSHOTS / "console-audit.png"), full_page=True)
            titles.append(await auditor.title())
            reveal = auditor.locator("#form-reveal")
            await reveal.get_by_label("reason (required)").fill("complaint 2026-88")
            await reveal.get_by_role("button", name="Reveal (recorded)").click()
            await expect(auditor.locator("#clear-name")).to_have_text("Wang Xiaoming")
            await expect(auditor.get_by_role("status")).to_contain_text("Recorded:")
            titles.append(await auditor.title())
            await auditor.goto(f"/ui/cases/case-{other}")
            await auditor.evaluate(
                """(loan) => {
                    const form = document.createElement('form');
                    form.method = 'post';
                    form.action = `/ui/cases/case-${loan}/actions/pause`;
                    for (const [name, value] of [
                        ['csrf', document.querySelector('input[name=csrf]').value],
                        ['reason', 'not an auditor\\'s to do']]) {
                        const input = document.createElement('input');
                        input.type = 'hidden'; input.name = name; input.value = value;
                        form.appendChild(input);
                    }
                    document.body.appendChild(form);
                    form.submit();
                }""",
                other,
            )
            await expect(auditor.get_by_role("alert")).to_contain_text("may not do this")

            # The case page at a phone's width: nothing scrolls sideways; in Chinese.
            phone = await sign_in(browser, base_url, who[Role.operator], PHONE)
            await phone.goto(f"/ui/cases/case-{other}")
            await phone.get_by_label("Language").select_option("zh-CN")
            await phone.get_by_role("button", name="Change").click()
            await expect(phone.locator("html")).to_have_attribute("lang", "zh-CN")
            await expect(phone.locator("#h-status")).to_have_text("概况")
            overflow = await phone.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, overflow
        finally:
            await browser.close()
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        status = await http.get(f"/cases/case-{other}", headers=who[Role.auditor].headers)
        assert status.json()["paused"] is None  # the auditor's post did nothing
    async with owner_pool.acquire() as conn:
        recorded = await conn.fetch(
            "SELECT auditor, reason FROM audit_reveals WHERE case_id = $1", f"case-{other}"
        )
    assert [(r["auditor"], r["reason"]) for r in recorded] == [
        (who[Role.auditor].name, "complaint 2026-88")
    ]
    assert urls and titles
    # Nothing the content security policy blocked, no script error; the expected
    # refusals (409, 403) are the only failed loads.
    unexpected = [e for e in ERRORS if "status of 409" not in e and "status of 403" not in e]
    assert not unexpected, unexpected
    for text in urls + titles:
        for needle in PERSONAL:
            assert needle not in text, (text, needle)


# Every visible form control that has no accessible name: no <label for> (or wrapping
# label) with text, no aria-label, no aria-labelledby naming an element with text.
UNLABELLED = """() => [...document.querySelectorAll('input, select, textarea')]
    .filter((el) => el.type !== 'hidden' && el.getClientRects().length > 0)
    .filter((el) => {
        const labelled = [...(el.labels || [])].some((l) => l.textContent.trim());
        const aria = (el.getAttribute('aria-label') || '').trim();
        const by = (el.getAttribute('aria-labelledby') || '').split(/\\s+/).filter(Boolean)
            .some((id) => (document.getElementById(id)?.textContent || '').trim());
        return !(labelled || aria || by);
    })
    .map((el) => el.outerHTML.slice(0, 120))"""
# What sticks out of the viewport sideways: the page's extra width, and the charts or
# tables whose right edge is past it (a table may scroll inside its card instead).
OVERFLOW = """() => ({
    page: document.documentElement.scrollWidth - window.innerWidth,
    out: [...document.querySelectorAll('svg.chart, table, .card')]
        .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 0.5)
        .filter((el) => !el.closest('.scroll') || el.closest('.scroll')
            .getBoundingClientRect().right > window.innerWidth + 0.5)
        .map((el) => el.tagName + '.' + el.getAttribute('class')),
})"""
FOCUSED = """() => {
    const el = document.activeElement;
    const style = getComputedStyle(el);
    return {
        tag: el.tagName, text: (el.textContent || '').trim().slice(0, 40),
        id: el.id, form: el.closest('form')?.id || null, type: el.type || null,
        details: el.closest('details')?.id || null,
        outline: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2,
    };
}"""


async def tab_to(page: Any, wanted: dict[str, str], limit: int = 300) -> list[dict[str, Any]]:
    """Press Tab until the focused element matches `wanted` (FOCUSED's fields); every
    element focused on the way, which must each show the focus ring."""
    seen = []
    for _ in range(limit):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUSED)
        seen.append(focused)
        if all(focused.get(k) == v for k, v in wanted.items()):
            return seen
    raise AssertionError(f"Tab never reached {wanted}: {seen[-5:]}")


async def test_every_page_fits_a_phone_and_a_desktop_is_labelled_and_works_by_keyboard(
    base_url: str, owner_pool: asyncpg.Pool
) -> None:
    """The sign-in page, the cases, a case (every action's form opened), its audit page
    and the dashboard (a promise due today listed), at 390x844 and 1280x800, in English
    and Chinese: nothing scrolls the page sideways, charts and cards stay inside it,
    every visible field has a label; the skip link comes first; a case is paused with
    the keyboard only (Tab and Enter), the focus ring visible at every stop."""
    executable = chromium()
    from playwright.async_api import async_playwright, expect

    who = await callers(owner_pool)
    loan = f"L-uik-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        await open_case(http, who[Role.service], loan)
        promised = await http.post(
            f"/cases/{loan}/promises",
            json={"amount": "300.00", "pay_by": shanghai_today(), "reason": "payday"},
            headers=who[Role.operator].headers,
        )
        assert promised.status_code == 200, promised.text
    case_page, audit_page = f"/ui/cases/case-{loan}", f"/ui/cases/case-{loan}/audit"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            for viewport in (PHONE, DESKTOP):
                for language in ("en", "zh-CN"):
                    anonymous = await browser.new_context(viewport=viewport, base_url=base_url)
                    visits = [(await anonymous.new_page(), "/ui/sign-in")]
                    boss = await sign_in(browser, base_url, who[Role.supervisor], viewport)
                    auditor = await sign_in(browser, base_url, who[Role.auditor], viewport)
                    for page in (boss, auditor):
                        await page.get_by_label("Language").select_option(language)
                        await page.get_by_role("button", name="Change").click()
                        await expect(page.locator("html")).to_have_attribute("lang", language)
                    visits += [(boss, "/ui/cases"), (boss, case_page), (boss, "/ui/dashboard")]
                    visits.append((auditor, audit_page))
                    for page, path in visits:
                        await page.goto(path)
                        where = (viewport["width"], language, path)
                        if path == "/ui/dashboard":
                            mine = page.locator(f"#fig-promises a[href='{case_page}']")
                            await expect(mine).to_have_count(1)
                            await expect(page.locator("#fig-promises svg.chart")).to_be_visible()
                        # Every action's form open: all their fields are on the page.
                        await page.evaluate(
                            "() => document.querySelectorAll('details').forEach("
                            "(d) => { d.open = true; })"
                        )
                        sticking = await page.evaluate(OVERFLOW)
                        assert sticking["page"] <= 0 and not sticking["out"], (where, sticking)
                        assert await page.evaluate(UNLABELLED) == [], where
                        fields = await page.locator("input:visible, select:visible").count()
                        assert fields >= 1, where  # the language switch at least
                    await anonymous.close()
                    for page in (boss, auditor):
                        await page.context.close()

            # By keyboard only, at a phone's width: the skip link first, then to the
            # pause form, open it, type the reason, submit it.
            page = await sign_in(browser, base_url, who[Role.operator], PHONE)
            await page.goto(case_page)
            await page.locator("body").focus()
            await page.keyboard.press("Tab")
            first = await page.evaluate(FOCUSED)
            assert first["text"] == "Skip to content" and first["outline"], first
            await page.keyboard.press("Enter")
            assert await page.evaluate("document.activeElement.id") == "main"
            stops = await tab_to(page, {"tag": "SUMMARY", "details": "action-pause"})
            await page.keyboard.press("Enter")
            stops += await tab_to(page, {"tag": "TEXTAREA", "form": "form-pause"})
            await page.keyboard.type("borrower asked for a week")
            stops += await tab_to(page, {"tag": "BUTTON", "form": "form-pause"})
            await page.keyboard.press("Enter")
            await expect(page.locator("#case-state")).to_have_text("paused")
            await expect(page.get_by_role("status")).to_contain_text("Done: Pause.")
            unringed = [stop for stop in stops if not stop["outline"]]
            assert not unringed, unringed  # the focus is visible at every stop
            assert len(stops) >= 3
        finally:
            await browser.close()
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        status = await http.get(f"/cases/{loan}", headers=who[Role.operator].headers)
    assert status.json()["paused"]["reason"] == "borrower asked for a week"


def shanghai_today() -> str:
    """Today where the sample borrower lives (Asia/Shanghai): a promise due today."""
    return datetime.now(ZoneInfo("Asia/Shanghai")).date().isoformat()
