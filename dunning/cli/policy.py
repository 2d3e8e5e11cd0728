"""`dunning policy check FILE | show NAME`: policies are data, checked before use."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from dunning.cli.common import console, fail, settings
from dunning.policies import PolicyError, load, load_file
from schemas.policy import ActionSpec, Policy

policy_app = typer.Typer(
    help="Escalation policies: check a file, show a policy, move a case to another version.",
    no_args_is_help=True,
)


@policy_app.command()
def check(file: Path = typer.Argument(..., help="a policy .toml file")) -> None:
    """Validate a policy file and its templates; exit 1 naming the file, field and problem."""
    settings()
    try:
        policy = load_file(file)
    except PolicyError as exc:
        fail(str(exc))
    stages = " -> ".join(f"{s.name}@{s.from_dpd}" for s in policy.stages)
    console.print(f"ok: {policy.ref} ({stages})", highlight=False)


@policy_app.command()
def show(
    name: str = typer.Argument(..., help="NAME or NAME@VERSION"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show a policy: stages, each channel's cadence, the contact window, agreement terms."""
    settings()
    try:
        policy = load(name)
    except PolicyError as exc:
        fail(str(exc))
    if as_json:
        print(policy.model_dump_json(indent=2))
        return
    console.print(_table(policy))


def cadence(action: ActionSpec) -> str:
    if action.at_days is not None:
        return "on days " + ", ".join(str(d) for d in action.at_days)
    if action.every_days is not None:
        return f"every {action.every_days} days from day {action.start_day}"
    return f"once, on day {action.start_day}"


def _table(policy: Policy) -> Table:
    window = policy.contact_window
    hours = f"{window.start:%H:%M}-{window.end:%H:%M} borrower time" if window else "any time"
    table = Table(title=f"{policy.ref}: {policy.description}  (contact {hours})")
    for column in ("stage", "from dpd", "channel", "template", "cadence"):
        table.add_column(column)
    for stage in policy.stages:
        for i, action in enumerate(stage.actions):
            table.add_row(
                stage.name if i == 0 else "",
                str(stage.from_dpd) if i == 0 else "",
                action.channel,
                action.template or "-",
                cadence(action),
            )
    terms, aging = policy.agreements, policy.aging
    paused = "paused days excluded" if aging.exclude_paused_days else "paused days count"
    table.caption = (
        f"compliance {policy.compliance or 'none (rules 1)'}, quiet days {policy.quiet_days}; "
        f"promise grace {terms.promise_grace_days}d, plan grace {terms.plan_grace_days}d, "
        f"settlement floor {terms.settlement_floor:%}, supervisor past "
        f"{terms.settlement_approval_share:%} waived; {paused}, at most "
        f"{aging.max_stages_per_resume} stage(s) up on resume, "
        f"{aging.resume_grace_days}d grace after it"
    )
    return table
