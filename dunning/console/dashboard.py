"""The supervisors' dashboard: one figure per question, each a chart (dunning.charts.svg's
inline SVG, as the report's) with its tables beside it for screen readers and exact
numbers.

- cases by stage and state (the cases' search attributes, as the listing reads them);
- today's contacts by channel, and deferrals and skips by rule (the audit log, UTC day);
- the promises due today (the audit log; "today" is the borrower's local date, as the
  promise's `pay_by` is: docs/console.md);
- the collectors' queues: tasks waiting per team and how long the oldest has waited
  (`dunning.work_queue.depths`).

A figure is an async function of the sources and the language returning a `Figure`;
`FIGURES` is the page's order. Adding one is its function and one line there.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import quote

import asyncpg
from temporalio.client import Client

from dunning import case_client, work_queue
from dunning.charts.svg import bar_chart
from dunning.console.messages import text
from dunning.console.sessions import PATH, Language
from workflows.calendar import local_date

LISTED = 1000  # cases counted at most (the listing's limit)
PROMISES_LISTED = 200  # promises due today listed one by one at most (all are counted)

TODAY_CONTACTS = """
SELECT payload->>'channel' AS channel, count(*) AS n
FROM audit_events
WHERE event_type = 'contact_attempted'
  AND occurred_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
GROUP BY 1 ORDER BY 1
"""
TODAY_HELD = """
SELECT event_type, coalesce(payload->>'rule', '-') AS rule, count(*) AS n
FROM audit_events
WHERE event_type IN ('contact_deferred', 'contact_skipped')
  AND occurred_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
GROUP BY 1, 2 ORDER BY 2, 1
"""
# The promises whose `pay_by` (a borrower-local date) is today in the borrower's time
# zone. Local dates lie within a day of the UTC date (offsets -12 h to +14 h), so the
# candidates come from the partial index audit_events_promise_pay_by (migration 0013)
# by that three-day range, and each is kept if its date is its borrower's today (in
# Python, with workflows.calendar.local_date: the zone database that checked the
# borrower's time zone at opening and that the case's own deadlines use). A
# promise made later in the case replaces none (the case refuses a second agreement
# while one is in force), and none due today has ended yet (it ends at the borrower's
# midnight at the earliest): the events after it are its own. Kept: the case recorded
# `promise_kept` (paid at least the amount), or closed as paid in full.
PROMISES_DUE_TODAY = """
WITH due AS (
    SELECT m.case_id, m.seq, (m.payload ->> 'amount')::numeric AS amount,
           (m.payload ->> 'pay_by')::date AS pay_by
    FROM audit_events m
    WHERE m.event_type = 'promise_made'
      AND m.payload ->> 'pay_by'
          BETWEEN to_char((now() AT TIME ZONE 'UTC')::date - 1, 'YYYY-MM-DD')
              AND to_char((now() AT TIME ZONE 'UTC')::date + 1, 'YYYY-MM-DD')
)
SELECT d.case_id, d.amount, d.pay_by, o.currency, o.timezone, x.kept, x.paid, x.closed
FROM due d
     CROSS JOIN LATERAL (
         SELECT c.payload #>> '{case,loan,currency}' AS currency,
                c.payload #>> '{case,borrower,timezone}' AS timezone
         FROM audit_events c
         WHERE c.case_id = d.case_id AND c.event_type = 'case_opened'
         ORDER BY c.seq LIMIT 1
     ) o
     CROSS JOIN LATERAL (
         SELECT coalesce(bool_or(e.event_type = 'promise_kept'), false) AS kept,
                coalesce(sum((e.payload ->> 'amount')::numeric
                             - coalesce((e.payload ->> 'overpaid')::numeric, 0))
                         FILTER (WHERE e.event_type = 'payment_received'), 0) AS paid,
                max(e.payload ->> 'reason') FILTER (WHERE e.event_type = 'case_closed')
                    AS closed
         FROM audit_events e
         WHERE e.case_id = d.case_id AND e.seq > d.seq
           AND e.event_type IN ('promise_kept', 'payment_received', 'case_closed')
     ) x
ORDER BY d.case_id, d.seq
"""


@dataclass(frozen=True)
class Link:
    """A table cell that links to a console page (addressed by case id: no personal data)."""

    text: str
    href: str


Cell = str | Link


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: Sequence[tuple[Cell, ...]]
    caption: str | None = None


@dataclass(frozen=True)
class Figure:
    title: str
    svg: str | None  # None: nothing to draw (no table either: the `empty` text instead)
    columns: tuple[str, ...]
    rows: Sequence[tuple[Cell, ...]]
    key: str = ""  # the section's id, `fig-<key>` (the figure's place when empty)
    note: str | None = None  # under the title: what is counted, and from when
    more: tuple[Table, ...] = ()  # further tables, after the first
    empty: str | None = None  # shown when there is nothing to draw; default "nothing yet"


@dataclass(frozen=True)
class Sources:
    client: Client
    pool: asyncpg.Pool


FigureOf = Callable[[Sources, Language], Awaitable[Figure]]


def case_link(case_id: str) -> Link:
    return Link(case_id, f"{PATH}/cases/{quote(case_id, safe='')}")


async def cases_by_stage(sources: Sources, language: Language) -> Figure:
    listed = await case_client.list_cases(sources.client, limit=LISTED)
    by_stage: Counter[tuple[str, str]] = Counter((c.stage, c.state) for c in listed)
    stages = sorted({stage for stage, _ in by_stage})
    states = sorted({state for _, state in by_stage})
    series = {
        text(language, f"state.{state}"): [float(by_stage[(s, state)]) for s in stages]
        for state in states
    }
    title = text(language, "cases_by_stage")
    svg = (
        await asyncio.to_thread(  # matplotlib is slow
            bar_chart,
            stages,
            series,
            title=title,
            value_label=text(language, "cases"),
            integer=True,
        )
        if stages
        else None
    )
    return Figure(
        title,
        svg,
        (text(language, "stage"), text(language, "state"), text(language, "count")),
        [
            (s, text(language, f"state.{state}"), str(n))
            for (s, state), n in sorted(by_stage.items())
        ],
        key="stages",
    )


async def contacts_today(sources: Sources, language: Language) -> Figure:
    contacts = await sources.pool.fetch(TODAY_CONTACTS)
    channels = [str(r["channel"]) for r in contacts]
    title = text(language, "contacts_today")
    svg = (
        await asyncio.to_thread(
            bar_chart,
            channels,
            {text(language, "contacts"): [float(r["n"]) for r in contacts]},
            title=title,
            value_label=text(language, "count"),
            integer=True,
        )
        if channels
        else None
    )
    return Figure(
        title,
        svg,
        (text(language, "channel"), text(language, "count")),
        [(str(r["channel"]), str(r["n"])) for r in contacts],
        key="contacts",
    )


async def held_today(sources: Sources, language: Language) -> Figure:
    held = await sources.pool.fetch(TODAY_HELD)
    rules = sorted({str(r["rule"]) for r in held})
    series = {
        text(language, kind.removeprefix("contact_")): [
            float(sum(r["n"] for r in held if r["event_type"] == kind and r["rule"] == rule))
            for rule in rules
        ]
        for kind in ("contact_deferred", "contact_skipped")
    }
    title = text(language, "held_today")
    svg = (
        await asyncio.to_thread(
            bar_chart,
            rules,
            series,
            title=title,
            value_label=text(language, "count"),
            horizontal=True,
            integer=True,
        )
        if rules
        else None
    )
    return Figure(
        title,
        svg,
        (text(language, "rule"), text(language, "outcome"), text(language, "count")),
        [
            (
                str(r["rule"]),
                text(language, str(r["event_type"]).removeprefix("contact_")),
                str(r["n"]),
            )
            for r in held
        ],
        key="held",
    )


OUTCOMES = ("kept", "awaiting", "closed")  # a promise due today: see PROMISES_DUE_TODAY


@dataclass(frozen=True)
class DuePromise:
    case_id: str
    currency: str
    amount: Decimal
    paid: Decimal
    outcome: str  # one of OUTCOMES
    closed: str | None  # the case's closing reason, if it closed


def due_promise(row: asyncpg.Record) -> DuePromise:
    closed = row["closed"]
    if row["kept"] or closed == "paid":
        outcome = "kept"
    elif closed is not None:
        outcome = "closed"
    else:
        outcome = "awaiting"
    return DuePromise(
        case_id=str(row["case_id"]),
        currency=str(row["currency"]),
        amount=row["amount"],
        # In the amount's minor units when nothing was paid (0.00, not 0).
        paid=Decimal(0).quantize(row["amount"]) + row["paid"],
        outcome=outcome,
        closed=str(closed) if closed is not None else None,
    )


async def promises_due_today(sources: Sources, language: Language) -> Figure:
    def t(key: str, **values: object) -> str:
        return text(language, key, **values)

    now = datetime.now(UTC)
    due = [
        due_promise(row)
        for row in await sources.pool.fetch(PROMISES_DUE_TODAY)
        if row["pay_by"] == local_date(now, str(row["timezone"]))
    ]
    currencies = sorted({p.currency for p in due})
    mine = {c: [p for p in due if p.currency == c] for c in currencies}
    counts = {
        o: [float(sum(p.outcome == o for p in mine[c])) for c in currencies] for o in OUTCOMES
    }
    title = t("promises_today")
    svg = (
        await asyncio.to_thread(
            bar_chart,
            currencies,
            {t(f"promise.{o}"): counts[o] for o in OUTCOMES},
            title=title,
            value_label=t("promises"),
            integer=True,
        )
        if due
        else None
    )
    summary = [
        (
            c,
            str(len(mine[c])),
            str(sum((p.amount for p in mine[c]), Decimal(0))),
            str(sum((p.paid for p in mine[c]), Decimal(0))),
            *(str(sum(p.outcome == o for p in mine[c])) for o in OUTCOMES),
        )
        for c in currencies
    ]
    listed: list[tuple[Cell, ...]] = [
        (
            case_link(p.case_id),
            p.currency,
            str(p.amount),
            str(p.paid),
            t(f"promise.{p.outcome}") + (f" ({p.closed})" if p.outcome == "closed" else ""),
        )
        for p in due[:PROMISES_LISTED]
    ]
    return Figure(
        title,
        svg,
        (
            t("currency"),
            t("promises"),
            t("promised"),
            t("paid_so_far"),
            *(t(f"promise.{o}") for o in OUTCOMES),
        ),
        summary,
        key="promises",
        note=t("promises_today_note"),
        more=(
            Table(
                (t("case"), t("currency"), t("promised"), t("paid_so_far"), t("outcome")),
                listed,
                caption=t("promises_listed", shown=len(listed), total=len(due)),
            ),
        ),
        empty=t("no_promises_today"),
    )


async def queues(sources: Sources, language: Language) -> Figure:
    """The collectors' queues: tasks waiting per team, and the oldest one's wait."""
    depths = await work_queue.depths(sources.pool)
    now = datetime.now(UTC)
    title = text(language, "queue_dashboard")
    teams = [q.team for q in depths]
    svg = (
        await asyncio.to_thread(
            bar_chart,
            teams,
            {text(language, "queue_depth"): [float(q.depth) for q in depths]},
            title=title,
            value_label=text(language, "count"),
            integer=True,
        )
        if depths
        else None
    )
    rows: list[tuple[Cell, ...]] = [
        (
            q.team,
            str(q.depth),
            text(language, "minutes", n=int((now - q.oldest).total_seconds() // 60))
            if q.oldest is not None
            else "-",
        )
        for q in depths
    ]
    return Figure(
        title,
        svg,
        (text(language, "team"), text(language, "queue_depth"), text(language, "queue_oldest")),
        rows,
        key="queues",
    )


FIGURES: tuple[FigureOf, ...] = (
    cases_by_stage,
    contacts_today,
    held_today,
    promises_due_today,
    queues,
)


async def figures(client: Client, pool: asyncpg.Pool, language: Language) -> list[Figure]:
    sources = Sources(client, pool)
    return list(await asyncio.gather(*(figure(sources, language) for figure in FIGURES)))
