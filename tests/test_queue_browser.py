"""The collectors' queue in a real browser (Debian's chromium, headless, Playwright),
against a real server and worker on the private stack: a collector signs in and lands
on their team's queue, claims the call task of a case whose agent call is due, asks
for the phone number (recorded), completes the task with a promise, and the promise
shows on the case page an operator opens. No URL or page title names the borrower."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import asyncpg
from temporalio.client import Client

from schemas.roles import Role
from tests.api_support import callers
from tests.call_queue_support import collector, open_agent_case, task_of, team
from tests.console_support import PERSONAL
from tests.test_console_browser import DESKTOP, ERRORS
from tests.test_console_browser import sign_in as operator_sign_in
from tests.test_report_page import ARGS, SCREENSHOTS, chromium

CLEAR_PHONE = "+8613800138000"


async def test_a_collector_claims_a_call_task_and_completes_it_with_a_promise(
    base_url: str,
    dev_client: Client,
    pool: asyncpg.Pool,
    owner_pool: asyncpg.Pool,
    task_queue: str,
) -> None:
    executable = chromium()
    from playwright.async_api import async_playwright, expect

    crew = team()
    me = await collector(owner_pool, crew)
    operator = (await callers(owner_pool))[Role.operator]
    loan = f"L-qb-{uuid.uuid4().hex[:8]}"
    handle = await open_agent_case(dev_client, task_queue, crew, loan)
    task = await task_of(pool, handle.id)
    pay_by = (date.today() + timedelta(days=7)).isoformat()
    urls: list[str] = []
    titles: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=ARGS)
        try:
            context = await browser.new_context(viewport=DESKTOP, base_url=base_url)
            page = await context.new_page()
            page.on("request", lambda request: urls.append(request.url))
            page.on("pageerror", lambda error: ERRORS.append(str(error)))
            await page.goto("/ui/queue")  # sent to sign in
            await page.get_by_label("API token").fill(me.token)
            await page.get_by_role("button", name="Sign in").click()
            await page.wait_for_url("**/ui/queue")
            await expect(page.locator("h1")).to_contain_text(crew)
            await expect(page.locator("#queue-depth")).to_have_text("1")
            titles.append(await page.title())

            await page.get_by_role("button", name="Claim the next task").click()
            await page.wait_for_url(f"**/ui/tasks/{task}")
            await expect(page.locator("#task-state")).to_have_text("claimed by you")
            await expect(page.locator("#task-balance")).to_have_text("1070.00 CNY")
            await expect(page.locator("main")).not_to_contain_text(CLEAR_PHONE)
            titles.append(await page.title())

            await page.get_by_role("button", name="Show the phone number (recorded)").click()
            await expect(page.locator("#task-phone")).to_have_text(CLEAR_PHONE)
            titles.append(await page.title())

            form = page.locator("#form-complete")
            await form.get_by_label("outcome (required)").select_option("promise")
            await form.get_by_label("amount").fill("300.00")
            await form.get_by_label("pay by").fill(pay_by)
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOTS / "console-task.png"), full_page=True)
            await form.get_by_role("button", name="Complete the task").click()
            await page.wait_for_url(f"**/ui/queue?completed={task}")
            await expect(page.get_by_role("status")).to_contain_text(f"Task {task} completed.")
            await expect(page.locator("#queue-depth")).to_have_text("0")
            titles.append(await page.title())

            # The promise is the case's: an operator sees it on the case page.
            boss = await operator_sign_in(browser, base_url, operator, DESKTOP)
            boss.on("request", lambda request: urls.append(request.url))
            await boss.goto(f"/ui/cases/{handle.id}")
            await expect(boss.locator("#holds")).to_contain_text(f"promise of 300.00 by {pay_by}")
            await expect(boss.locator("main")).to_contain_text("agent_call")
            titles.append(await boss.title())
        finally:
            await browser.close()
    assert await pool.fetchval("SELECT outcome FROM call_tasks WHERE id = $1", task) == "promise"
    reveals = await owner_pool.fetchval(
        "SELECT count(*) FROM audit_reveals WHERE case_id = $1 AND auditor = $2",
        handle.id,
        me.name,
    )
    assert reveals == 1
    assert urls and titles
    for text in urls + titles:
        for needle in (*PERSONAL, CLEAR_PHONE):
            assert needle not in text, (text, needle)
    await handle.terminate("test over")
