"""Operator actions on a live case: one command per row of `dunning.action_table`.

Each command's options are its action's terms (`schemas.commands.…Terms`), built
from the model's fields: the field rules are pydantic's, declared once. Bad input
exits with status 2 and names the field, before anything is sent. The case checks the
action; its refusal exits with the status of the refusal's kind (below) and prints
the case's reason. With `--json` the answer is what was recorded and the status, or
`{"rejected": "<reason>", "code": "<code>"}` / `{"invalid": "<field: problem>"}`.

Exit status: 0 accepted (a request waiting for approval included); 1 refused by the
case, unknown or closed; 2 invalid input; 3 needs another principal (four eyes);
75 a dependency did not answer (nothing recorded; retry).
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable
from typing import Any, NoReturn

import typer
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from dunning import case_client
from dunning.action_table import ACTIONS, Action, InvalidTerms
from dunning.cli.common import console, fail, field_errors, run, settings
from dunning.temporal_client import connect
from schemas.refusals import RefusalKind
from schemas.status import ActionResult

EXIT_FOR: dict[RefusalKind | None, int] = {
    None: 1,
    RefusalKind.conflict: 1,
    RefusalKind.invalid: 2,
    RefusalKind.forbidden: 3,
    RefusalKind.unavailable: 75,
}
CASE_HELP = "case id (case-<loan id>) or loan id"


class InvalidInput(ValueError):
    """Input that cannot become a command; the message names the field."""


def _refuse(message: str, as_json: bool, *, code: int, body: dict[str, str]) -> NoReturn:
    if as_json:
        print(json.dumps(body, ensure_ascii=False))
        raise typer.Exit(code)
    fail(message, code)


def perform(action: Action, case: str, terms: dict[str, Any], who: str, as_json: bool) -> None:
    """Validate the terms, run the action's update, print the answer; exits on any refusal."""
    try:
        command = action.build(action.terms.model_validate(terms), who)
    except ValidationError as exc:
        _refuse(field_errors(exc), as_json, code=2, body={"invalid": field_errors(exc)})
    except InvalidTerms as exc:
        _refuse(str(exc), as_json, code=2, body={"invalid": str(exc)})
    current = settings()
    case_id = case_client.normalise_case_id(case)

    async def go() -> ActionResult:
        return await case_client.act(await connect(current), case_id, action.update, command)

    try:
        result = run(go())
    except case_client.ActionRejected as exc:
        code = exc.code.value if exc.code is not None else "rejected"
        _refuse(
            f"rejected ({code}): {exc.reason}",
            as_json,
            code=EXIT_FOR[exc.code.kind if exc.code is not None else None],
            body={"rejected": exc.reason, "code": code},
        )
    except case_client.CaseError as exc:
        _refuse(str(exc), as_json, code=1, body={"rejected": str(exc), "code": "case"})
    if as_json:
        print(result.model_dump_json(indent=2))
        return
    from dunning.cli.render import status_panel

    pending = result.pending_approval
    done = action.cli.done if pending is None else f"request #{pending.request} waits for approval"
    console.print(f"[green]{done}[/]: {case_id}")
    for line in result.recorded:
        console.print(f"  recorded #{line.seq} {line.type}: {line.summary}", highlight=False)
    console.print(status_panel(result.status))


# --- building a command from the terms' fields ----------------------------------------


def _item_model(annotation: Any) -> type[BaseModel] | None:
    """The model of a tuple/list field's items (a plan's instalments), if any."""
    args = typing.get_args(annotation)
    item = args[0] if args else None
    return item if isinstance(item, type) and issubclass(item, BaseModel) else None


def _is_sequence(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (tuple, list)


def _choices(annotation: Any) -> list[str]:
    """The values of a Literal field (also inside `X | None`)."""
    if typing.get_origin(annotation) is typing.Literal:
        return [str(v) for v in typing.get_args(annotation)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [c for arg in typing.get_args(annotation) for c in _choices(arg)]
    return []


def _help(action: Action, name: str, info: FieldInfo) -> str:
    text = action.cli.helps.get(name) or info.description or name.replace("_", " ")
    choices = _choices(info.annotation)
    if choices:
        text += f" ({', '.join(choices)})"
    item = _item_model(info.annotation)
    if item is not None and name not in action.cli.helps:
        text += f"; {'@'.join(f.upper() for f in item.model_fields)}, repeat the option"
    return text


def _parameter(action: Action, name: str, info: FieldInfo) -> inspect.Parameter:
    helps = _help(action, name, info)
    if name in action.cli.positional:
        default: Any = typer.Argument(..., help=helps)
        return inspect.Parameter(
            name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=str
        )
    flag = action.cli.flags.get(name, "--" + name.replace("_", "-"))
    if _is_sequence(info.annotation):
        default = typer.Option(... if info.is_required() else None, flag, help=helps)
        kind: Any = list[str] if info.is_required() else list[str] | None
    else:
        default = typer.Option(... if info.is_required() else None, flag, help=helps)
        kind = str if info.is_required() else str | None
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)


def _terms_from_options(action: Action, options: dict[str, Any]) -> dict[str, Any]:
    """The CLI's strings as the terms' fields; pydantic does the checking."""
    terms: dict[str, Any] = {}
    for name, info in action.terms.model_fields.items():
        value = options.get(name)
        if value is None:
            continue
        item = _item_model(info.annotation)
        if item is not None:
            value = [_item_from_text(item, name, i, text) for i, text in enumerate(value)]
        terms[name] = value
    return terms


def _item_from_text(item: type[BaseModel], field: str, index: int, text: str) -> dict[str, str]:
    """`AMOUNT@YYYY-MM-DD` (an item's fields, joined by @) as the item's fields."""
    names = list(item.model_fields)
    parts = text.split("@")
    if len(parts) != len(names):
        shape = "@".join(n.upper() for n in names)
        raise InvalidInput(f"{field}.{index}: expected {shape}")
    return dict(zip(names, parts, strict=True))


def _command(action: Action) -> Callable[..., None]:
    def command(**options: Any) -> None:
        case, as_json = options.pop("case"), options.pop("as_json")
        who = "cli" if action.acting == "source" else options.pop("operator")
        try:
            terms = _terms_from_options(action, options)
        except InvalidInput as exc:
            _refuse(str(exc), as_json, code=2, body={"invalid": str(exc)})
        perform(action, case, terms, who, as_json)

    parameters = [
        inspect.Parameter(
            "case",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            default=typer.Argument(..., help=CASE_HELP),
            annotation=str,
        )
    ]
    fields = action.terms.model_fields
    ordered = [*action.cli.positional, *(n for n in fields if n not in action.cli.positional)]
    parameters += [_parameter(action, name, fields[name]) for name in ordered]
    if action.acting == "operator":
        parameters.append(
            inspect.Parameter(
                "operator",
                inspect.Parameter.KEYWORD_ONLY,
                default=typer.Option(..., help="who acts: an operator id (audited)"),
                annotation=str,
            )
        )
    parameters.append(
        inspect.Parameter(
            "as_json",
            inspect.Parameter.KEYWORD_ONLY,
            default=typer.Option(False, "--json", help="print what was recorded as JSON"),
            annotation=bool,
        )
    )
    command.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in parameters}
    command.__doc__ = action.summary + "."
    return command


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add a command per action to `app`; `dispute open` goes into the `dispute` group
    (made here unless `groups` has it, e.g. `policy`)."""
    for action in ACTIONS:
        group_name, _, name = action.name.rpartition(" ")
        target = app
        if group_name:
            if group_name not in groups:
                groups[group_name] = typer.Typer(
                    help=f"{group_name.capitalize()} actions on a case.", no_args_is_help=True
                )
                app.add_typer(groups[group_name], name=group_name)
            target = groups[group_name]
        target.command(name)(_command(action))
