"""The table of actions agrees with the workflow, the rules, the CLI and the API.

`dunning.action_table.ACTIONS` is the one list of what a caller can do to a case: the
CLI commands and API routes are built from it, and the workflow's updates must match
it one for one. A command's wire shape is its terms plus who acts.
"""

from __future__ import annotations

import typing

from temporalio.workflow import _Definition

from dunning.action_table import ACTIONS, BY_NAME
from dunning.api.app import create_app
from dunning.cli.main import app as cli_app
from dunning.settings import Settings
from schemas.commands import MigratePolicy, MigrateTerms
from workflows.actions import RULES
from workflows.loan_collection import LoanCollection


def test_every_update_of_the_workflow_is_a_row_and_every_row_an_update() -> None:
    updates = _Definition.from_class(LoanCollection).updates
    assert {a.update_name for a in ACTIONS} == set(updates)


def test_each_row_names_the_command_its_update_takes_and_that_command_has_a_rule() -> None:
    for action in ACTIONS:
        hints = typing.get_type_hints(action.update)
        assert hints["command"] is action.command, action.name
        assert action.command in RULES, f"{action.command.__name__} has no rule"


def test_a_command_is_its_terms_and_who_acts() -> None:
    for action in ACTIONS:
        if action.terms is MigrateTerms:
            continue  # the caller names the policy; the command carries it loaded
        extra = set(action.command.model_fields) - set(action.terms.model_fields)
        assert issubclass(action.command, action.terms), action.name
        assert action.acting in extra, action.name
        # What else a command holds is legacy wire only (a supervisor named in one step).
        assert extra - {action.acting} <= {"supervisor"}, action.name
    assert BY_NAME["policy migrate"].command is MigratePolicy


def test_the_api_has_one_route_per_row_with_the_terms_as_its_body() -> None:
    document = create_app(Settings()).openapi()
    posts = {
        path: spec["post"]
        for path, spec in document["paths"].items()
        if path.startswith("/cases/{case_id}/") and "post" in spec
    }
    # Not an action: the auditors' export (dunning/api/routes_audit.py) changes no case.
    assert "audit" in posts.pop("/cases/{case_id}/export")["tags"]
    for action in ACTIONS:
        operation = posts.pop(f"/cases/{{case_id}}/{action.path}")
        body = operation["requestBody"]["content"]["application/json"]["schema"]
        assert body["$ref"].rsplit("/", 1)[-1] == action.terms.__name__, action.name
        assert operation["summary"] == action.summary
    assert not posts, f"routes without a row: {sorted(posts)}"


def test_the_cli_has_one_command_per_row() -> None:
    import typer.main

    command = typer.main.get_command(cli_app)
    names: set[str] = set()
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        names.add(name)
        for inner in getattr(sub, "commands", {}):
            names.add(f"{name} {inner}")
    assert {a.name for a in ACTIONS} <= names
