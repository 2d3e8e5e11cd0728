"""The dashboard's promises due today over HTTP (httpx on a real uvicorn server, the
private stack, a worker): promises made through the API on borrowers at both ends of
the world's time zones (UTC+14 and UTC-11, whose local dates always differ) are listed
when their date to pay by is today *where the borrower lives*, and not when it is the
borrower's tomorrow (at UTC-11, the UTC date for 11 hours of each day); each is kept,
awaiting payment (with what was paid so far) or in a closed case; the counts and
amounts per currency add up the listed promises; each links to its case by case id;
no personal data on the page, in its title or links, or in the server's log lines;
every message the figures use is in the catalogue."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest

from dunning.console import dashboard, messages
from schemas.roles import Role
from tests.api_support import Caller, callers
from tests.console_support import PERSONAL, sign_in, title_of
from tests.factories import case_payload

EAST, WEST = "Pacific/Kiritimati", "Pacific/Pago_Pago"  # UTC+14, UTC-11
SECTION = re.compile(r'<section[^>]*id="fig-promises".*?</section>', re.S)
TABLE = re.compile(r"<table>.*?</table>", re.S)
ROW = re.compile(r"<tr>(.*?)</tr>", re.S)
CELL = re.compile(r"<t[dh][^>]*>(.*?)</t[dh]>", re.S)
LINK = re.compile(r'<a href="([^"]+)">([^<]+)</a>')
HREF = re.compile(r'(?:href|action)="([^"]+)"')


@pytest.fixture(scope="module")
async def who(owner_pool: asyncpg.Pool) -> dict[Role, Caller]:
    return await callers(owner_pool)


def local_today(zone: str) -> date:
    return datetime.now(UTC).astimezone(ZoneInfo(zone)).date()


def tables(html: str) -> list[list[list[str]]]:
    """The promises figure's tables, as rows of cell texts (a link as `href|text`)."""
    section = SECTION.search(html)
    assert section, "the dashboard has no promises figure"
    found = []
    for table in TABLE.findall(section.group(0)):
        rows = []
        for row in ROW.findall(table):
            cells = []
            for cell in CELL.findall(row):
                link = LINK.search(cell)
                cells.append(f"{link.group(1)}|{link.group(2)}" if link else cell.strip())
            rows.append(cells)
        found.append(rows)
    return found


async def promised(
    http: httpx.AsyncClient,
    who: dict[Role, Caller],
    zone: str,
    pay_by: date,
    amount: str,
    currency: str = "CNY",
) -> str:
    """A new case in `zone` with a promise of `amount` by `pay_by`; its case id."""
    loan = f"L-uidue-{uuid.uuid4().hex[:8]}"
    parts: dict[str, Any] = {"currency": currency}
    if currency == "JPY":
        parts.update(principal="5000", interest="0", fees="0")
    opened = await http.post(
        "/cases",
        json=case_payload(loan, borrower={"timezone": zone}, loan=parts),
        headers=who[Role.service].headers,
    )
    assert opened.status_code == 201, opened.text
    made = await http.post(
        f"/cases/{loan}/promises",
        json={"amount": amount, "pay_by": pay_by.isoformat(), "reason": "salary on Friday"},
        headers=who[Role.operator].headers,
    )
    assert made.status_code == 200, made.text
    return f"case-{loan}"


async def test_promises_due_today_are_the_borrowers_local_today_with_their_outcome(
    base_url: str, who: dict[Role, Caller], capfd: pytest.CaptureFixture[str]
) -> None:
    east, west = local_today(EAST), local_today(WEST)
    assert east > west  # 25 hours apart: never the same date
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        awaiting = await promised(http, who, EAST, east, "300.00")
        kept = await promised(http, who, WEST, west, "200.00")
        partly = await promised(http, who, EAST, east, "1000", currency="JPY")
        closed = await promised(http, who, WEST, west, "100.00")
        tomorrow_east = await promised(http, who, EAST, east + timedelta(days=1), "50.00")
        # The borrower's tomorrow: the UTC date for part of each day, never their today.
        tomorrow_west = await promised(http, who, WEST, west + timedelta(days=1), "60.00")
        for case_id, amount in ((kept, "200.00"), (partly, "400")):
            paid = await http.post(
                f"/cases/{case_id}/payments",
                json={"amount": amount, "reference": f"pay-{uuid.uuid4().hex[:6]}"},
                headers=who[Role.service].headers,
            )
            assert paid.status_code == 200, paid.text
        shut = await http.post(
            f"/cases/{closed}/close",
            json={"reason": "handled outside"},
            headers=who[Role.operator].headers,
        )
        assert shut.status_code == 200, shut.text

        await sign_in(http, who[Role.supervisor])
        expected = {
            awaiting: ["CNY", "300.00", "0.00", "awaiting payment"],
            kept: ["CNY", "200.00", "200.00", "kept"],
            partly: ["JPY", "1000", "400", "awaiting payment"],
        }
        listed: dict[str, list[str]] = {}
        for _ in range(60):  # the worker writes the audit rows after each update
            page = await http.get("/ui/dashboard")
            assert page.status_code == 200, page.text
            summary, by_case = tables(page.text)
            listed = {row[0]: row[1:] for row in by_case[1:]}
            mine = {c: listed.get(f"/ui/cases/{c}|{c}") for c in expected}
            closed_row = listed.get(f"/ui/cases/{closed}|{closed}")
            if all(mine[c] == expected[c] for c in expected) and closed_row:
                break
            await asyncio.sleep(0.5)
        assert mine == expected, listed
        assert closed_row is not None and closed_row[:3] == ["CNY", "100.00", "0.00"]
        assert closed_row[3].startswith("case closed (")
        for other in (tomorrow_east, tomorrow_west):
            assert other not in page.text  # not due today where its borrower lives

        # The figure's head: per currency, the listed promises counted and added up.
        head = summary[0]
        assert head == [
            "Currency",
            "Promises",
            "Promised",
            "Paid so far",
            "kept",
            "awaiting payment",
            "case closed",
        ]
        rows = list(listed.values())
        for currency, count, amount, paid, *outcomes in summary[1:]:
            of = [r for r in rows if r[0] == currency]
            assert int(count) == len(of) >= 1
            assert Decimal(amount) == sum(Decimal(r[1]) for r in of)
            assert Decimal(paid) == sum(Decimal(r[2]) for r in of)
            for label, n in zip(head[4:], outcomes, strict=True):
                assert int(n) == sum(r[3].startswith(label) for r in of), (currency, label)
        assert {row[0] for row in summary[1:]} >= {"CNY", "JPY"}
        assert 'data-chart="bars"' in SECTION.search(page.text).group(0)  # type: ignore[union-attr]

        # No personal data on the page, in its title or its links, or in a log line.
        for needle in PERSONAL:
            assert needle not in page.text, needle
            assert needle not in title_of(page.text), needle
            for url in HREF.findall(page.text):
                assert needle not in url, (url, needle)
        # The case each row links to opens.
        opened = await http.get(f"/ui/cases/{awaiting}")
        assert opened.status_code == 200
        # In Chinese too.
        chinese = await http.post(
            "/ui/language",
            data={
                "csrf": re.search(r'name="csrf" value="([^"]+)"', page.text).group(1),  # type: ignore[union-attr]
                "language": "zh-CN",
                "back": "/ui/dashboard",
            },
        )
        assert chinese.status_code == 303
        zh = await http.get("/ui/dashboard")
        assert "今日到期的还款承诺" in zh.text and "待还款" in zh.text
    logged = "".join(capfd.readouterr())
    assert "audit appended" in logged  # the capture sees the server's and worker's lines
    for needle in PERSONAL:
        assert needle not in logged, needle


def test_every_message_key_the_dashboard_uses_is_in_the_catalogue() -> None:
    """The figures' words are looked up in Python (dashboard.py), not the templates."""
    source = open(dashboard.__file__, encoding="utf-8").read()
    used = set(re.findall(r"""\bt\(\s*f?["']([a-z_.{}]+)["']""", source))
    used |= set(re.findall(r"""text\(\s*language,\s*f?["']([a-z_.{}]+)["']""", source))
    expanded = set()
    for key in used:
        if "{o}" in key:
            expanded |= {key.replace("{o}", o) for o in dashboard.OUTCOMES}
        elif "{" not in key:
            expanded.add(key)
    assert len(expanded) > 15, expanded
    missing = expanded - messages.keys()
    assert not missing, sorted(missing)


async def test_the_promises_due_today_are_found_through_their_index(pool: asyncpg.Pool) -> None:
    """The query's candidates come from the partial index on promise_made's pay_by
    (migration 0013), not from a scan of the whole log: the index matches the query's
    expression and predicate (with sequential scans priced out, as on a large log)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {dashboard.PROMISES_DUE_TODAY}"))
    lines = plan.splitlines()
    scans = [i for i, line in enumerate(lines) if "using audit_events_promise_pay_by" in line]
    assert len(scans) == 1, plan
    # A range of dates read from the index (not every promise ever made).
    condition = lines[scans[0] + 1].strip()
    assert condition.startswith("Index Cond: (((payload ->> 'pay_by'::text) >="), plan
