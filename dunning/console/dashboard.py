"""The supervisors' dashboard: cases by stage and state (the cases' search attributes,
as the listing reads them), and today's contacts by channel and deferrals and skips by
rule (the audit log, UTC day), and the collectors' queues: tasks waiting per team and
how long the oldest has waited (`dunning.work_queue.depths`, a table). Charts are
dunning.charts.svg's inline SVG, as the report's; each has its table beside it for
screen readers and exact numbers."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from temporalio.client import Client

from dunning import case_client, work_queue
from dunning.charts.svg import bar_chart
from dunning.console.messages import text
from dunning.console.sessions import Language

LISTED = 1000  # cases counted at most (the listing's limit)

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


@dataclass(frozen=True)
class Figure:
    title: str
    svg: str | None  # None: nothing to draw
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]


async def figures(client: Client, pool: asyncpg.Pool, language: Language) -> list[Figure]:
    listed = await case_client.list_cases(client, limit=LISTED)
    by_stage: Counter[tuple[str, str]] = Counter((c.stage, c.state) for c in listed)
    contacts = await pool.fetch(TODAY_CONTACTS)
    held = await pool.fetch(TODAY_HELD)
    queues = await work_queue.depths(pool)

    def t(key: str) -> str:
        return text(language, key)

    stages = sorted({stage for stage, _ in by_stage})
    states = sorted({state for _, state in by_stage})
    stage_series = {
        text(language, f"state.{state}"): [float(by_stage[(s, state)]) for s in stages]
        for state in states
    }
    rules = sorted({str(r["rule"]) for r in held})
    held_series = {
        t(kind.removeprefix("contact_")): [
            float(sum(r["n"] for r in held if r["event_type"] == kind and r["rule"] == rule))
            for rule in rules
        ]
        for kind in ("contact_deferred", "contact_skipped")
    }
    channels = [str(r["channel"]) for r in contacts]

    def draw() -> tuple[str | None, str | None, str | None]:
        return (
            bar_chart(
                stages,
                stage_series,
                title=t("cases_by_stage"),
                value_label=t("cases"),
                integer=True,
            )
            if stages
            else None,
            bar_chart(
                channels,
                {t("contacts"): [float(r["n"]) for r in contacts]},
                title=t("contacts_today"),
                value_label=t("count"),
                integer=True,
            )
            if channels
            else None,
            bar_chart(
                rules,
                held_series,
                title=t("held_today"),
                value_label=t("count"),
                horizontal=True,
                integer=True,
            )
            if rules
            else None,
        )

    stage_svg, contact_svg, held_svg = await asyncio.to_thread(draw)  # matplotlib is slow
    return [
        Figure(
            t("cases_by_stage"),
            stage_svg,
            (t("stage"), t("state"), t("count")),
            [
                (s, text(language, f"state.{state}"), str(n))
                for (s, state), n in sorted(by_stage.items())
            ],
        ),
        Figure(
            t("contacts_today"),
            contact_svg,
            (t("channel"), t("count")),
            [(str(r["channel"]), str(r["n"])) for r in contacts],
        ),
        Figure(
            t("held_today"),
            held_svg,
            (t("rule"), t("outcome"), t("count")),
            [
                (str(r["rule"]), t(str(r["event_type"]).removeprefix("contact_")), str(r["n"]))
                for r in held
            ],
        ),
        queue_figure(queues, language),
    ]


def queue_figure(queues: list[work_queue.Depth], language: Language) -> Figure:
    """The collectors' queues: a table only (team, tasks waiting, the oldest's wait)."""
    now = datetime.now(UTC)
    rows: list[tuple[str, ...]] = [
        (
            q.team,
            str(q.depth),
            text(language, "minutes", n=int((now - q.oldest).total_seconds() // 60))
            if q.oldest is not None
            else "-",
        )
        for q in queues
    ]
    return Figure(
        text(language, "queue_dashboard"),
        None,
        (text(language, "team"), text(language, "queue_depth"), text(language, "queue_oldest")),
        rows,
    )
