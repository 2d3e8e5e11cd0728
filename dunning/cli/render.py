"""Rich rendering of case status and listings for terminals."""

from __future__ import annotations

from datetime import datetime

from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from schemas.status import CaseStatus

STATE_STYLE = {"open": "green", "paused": "yellow", "closed": "dim"}


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
    facts.add_row(
        "balance",
        f"{b.total} {b.currency}  (principal {b.principal}, interest {b.interest}, "
        f"fees {b.fees}, penalty {b.penalty})",
    )
    facts.add_row(
        "paid", f"{b.paid} {b.currency}" + (f", overpaid {b.overpaid}" if b.overpaid else "")
    )
    if status.paused is not None:
        p = status.paused
        facts.add_row("paused", f"since {_when(p.since)} by {p.operator}: {p.reason}")
    if status.next_action is not None:
        facts.add_row("next", f"{status.next_action.what} at {_when(status.next_action.at)}")
    counters = ", ".join(f"{k} {v}" for k, v in sorted(status.counters.items())) or "none yet"
    facts.add_row("contacts", counters)

    events = Table(title=f"last events ({status.events} in all)", expand=True)
    for column in ("seq", "at", "type", "actor", "summary"):
        events.add_column(column)
    for line in status.last_events:
        events.add_row(str(line.seq), _when(line.at), line.type, line.actor, line.summary)
    return Panel(Group(facts, events), title=status.case_id)


def cases_table(statuses: list[CaseStatus], title: str = "cases") -> Table:
    table = Table(title=title, expand=True)
    for column in ("case", "state", "stage", "dpd", "balance", "paid", "contacts", "next"):
        table.add_column(column)
    for s in statuses:
        state = s.state + (f" ({s.closed_reason})" if s.closed_reason else "")
        nxt = s.next_action
        table.add_row(
            s.case_id,
            f"[{STATE_STYLE[s.state]}]{state}[/]",
            s.stage or "-",
            str(s.days_past_due),
            f"{s.balance.total} {s.balance.currency}",
            str(s.balance.paid),
            ", ".join(f"{k} {v}" for k, v in sorted(s.counters.items())),
            f"{nxt.what} {_when(nxt.at)}" if nxt else "-",
        )
    return table
