"""Rich rendering of case status and listings for terminals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table

from schemas.status import CaseStatus

STATE_STYLE = {"open": "green", "paused": "yellow", "closed": "dim"}
CLOSED_LABEL = {"transferred_to_legal": "to legal"}


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M:%S") if moment else "-"


def status_panel(status: CaseStatus) -> Panel:
    b = status.balance
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    state = status.state + (f" ({status.closed_reason})" if status.closed_reason else "")
    facts.add_row("state", f"[{STATE_STYLE[status.state]}]{state}[/]")
    facts.add_row("stage", status.stage or "-")
    facts.add_row("days past due", str(status.days_past_due))
    facts.add_row("policy", status.policy)
    placed = status.assignment
    if placed is not None:
        experiment = f", experiment {placed.experiment}" if placed.experiment else ""
        facts.add_row(
            "strategy",
            f"{placed.strategy}: segment {placed.segment}{experiment}, arm {placed.arm} "
            f"({placed.policy})",
        )
    facts.add_row(
        "balance",
        f"{b.total} {b.currency}  (principal {b.principal}, interest {b.interest}, "
        f"fees {b.fees}, penalty {b.penalty})",
    )
    facts.add_row(
        "paid", f"{b.paid} {b.currency}" + (f", overpaid {b.overpaid}" if b.overpaid else "")
    )
    cur = b.currency
    if status.hard_stops:
        facts.add_row("hard stop", "[red]" + ", ".join(status.hard_stops) + "[/]: no contact")
    if status.ceased:
        facts.add_row("contact ceased", ", ".join(status.ceased))
    if status.unreachable:
        facts.add_row("borrower", "unreachable: emergency contacts may be messaged")
    if status.third_party_opt_outs:
        opted = ", ".join(str(i) for i in status.third_party_opt_outs)
        facts.add_row("third parties opted out", opted)
    if status.paused is not None:
        p = status.paused
        until = f" until {_when(p.until)}" if p.until else ""
        facts.add_row("paused", f"since {_when(p.since)}{until} by {p.operator}: {p.reason}")
    if status.promise is not None:
        pr = status.promise
        kept = "[green]kept[/]" if pr.kept else f"paid {pr.paid} {cur}"
        facts.add_row(
            "promise",
            f"{pr.amount} {cur} by {pr.pay_by} (holds until {_when(pr.hold_until)}), {kept}",
        )
    if status.plan is not None:
        pl = status.plan
        total = sum((i.amount for i in pl.instalments), Decimal(0))
        facts.add_row(
            "plan",
            f"{len(pl.instalments)} instalments, {total} {cur}; paid {pl.paid} {cur}"
            + (f", next due {pl.next_due}" if pl.next_due else ""),
        )
    if status.settlement is not None:
        st = status.settlement
        approved = f", approved by {st.supervisor}" if st.supervisor else ""
        facts.add_row(
            "settlement",
            f"{st.amount} {cur} by {st.pay_by}, waives {st.waiver} {cur}; "
            f"paid {st.paid} {cur}{approved}",
        )
    if status.dispute is not None:
        d = status.dispute
        facts.add_row("dispute", f"open since {_when(d.since)} by {d.operator}: {d.reason}")
    if status.visit is not None:
        v = status.visit
        facts.add_row(
            "visit",
            f"{_when(v.at)} with {', '.join(v.collectors)}"
            + (f": {v.outcome.replace('_', ' ')}" if v.outcome else ""),
        )
    if status.next_action is not None:
        facts.add_row("next", f"{status.next_action.what} at {_when(status.next_action.at)}")
    counters = ", ".join(f"{k} {v}" for k, v in sorted(status.counters.items())) or "none yet"
    facts.add_row("contacts", counters)

    events = Table(title=f"last events ({status.events} in all)", expand=True)
    for column in ("seq", "at", "type", "actor", "summary"):
        events.add_column(column)
    for line in status.last_events:
        events.add_row(str(line.seq), _when(line.at), line.type, line.actor, line.summary)
    parts: list[RenderableType] = [facts]
    if status.plan is not None:
        parts.append(plan_table(status))
    parts.append(events)
    return Panel(Group(*parts), title=status.case_id)


def plan_table(status: CaseStatus) -> Table:
    """The plan's schedule: each instalment, and whether the payments so far cover it."""
    assert status.plan is not None
    plan = status.plan
    table = Table(title="repayment plan")
    table.add_column("#", justify="right")
    table.add_column("due")
    table.add_column(f"amount ({status.balance.currency})", justify="right")
    table.add_column("")
    covered = Decimal(0)
    for index, instalment in enumerate(plan.instalments, start=1):
        covered += instalment.amount
        if plan.paid >= covered:
            mark = "[green]paid[/]"
        elif instalment.due == plan.next_due:
            mark = "[yellow]next[/]"
        else:
            mark = ""
        table.add_row(str(index), str(instalment.due), str(instalment.amount), mark)
    return table


def _until(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "-"
    seconds = (moment - now).total_seconds()
    if seconds <= 0:
        return "now"
    if seconds < 120:
        return f"in {seconds:.0f}s"
    if seconds < 2 * 3600:
        return f"in {seconds / 60:.0f}m"
    if seconds < 2 * 86400:
        return f"in {seconds / 3600:.0f}h"
    return f"in {seconds / 86400:.0f}d"


def cases_table(statuses: list[CaseStatus], title: str = "cases") -> Table:
    """One line per case, no wrapping, so a portfolio fits a terminal."""
    now = datetime.now(UTC)
    table = Table(title=title, expand=True, pad_edge=False, box=None, header_style="bold")
    table.add_column("case", no_wrap=True)
    table.add_column("state", no_wrap=True, overflow="ellipsis", ratio=2)
    table.add_column("stage", no_wrap=True, overflow="ellipsis", ratio=2)
    table.add_column("arm", no_wrap=True, overflow="ellipsis", ratio=2)
    table.add_column("dpd", justify="right", no_wrap=True)
    table.add_column("balance", justify="right", no_wrap=True, ratio=2)
    table.add_column("contacts", no_wrap=True, overflow="ellipsis", ratio=3)
    table.add_column("next", no_wrap=True, overflow="ellipsis", ratio=3)
    for s in statuses:
        state = CLOSED_LABEL.get(s.closed_reason or "", s.closed_reason or s.state)
        nxt = s.next_action
        table.add_row(
            s.case_id.removeprefix("case-"),
            f"[{STATE_STYLE[s.state]}]{state}[/]",
            s.stage or "-",
            s.assignment.arm if s.assignment is not None else "-",
            str(s.days_past_due),
            str(s.balance.total),
            " ".join(f"{k}:{v}" for k, v in sorted(s.counters.items())),
            f"{nxt.what} {_until(nxt.at, now)}" if nxt and s.state != "closed" else "-",
        )
    return table
