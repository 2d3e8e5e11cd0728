"""The console's action forms, made from the table of actions (`dunning.action_table`):
one form per row, its fields from the row's `…Terms` model (the field's description is
its hint, its type the input), and the posted form read back into those terms.

Nothing here names an action: a new row in the table is a new form.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from dunning.action_table import Action

ITEM_SEPARATOR = "@"


@dataclass(frozen=True)
class FormField:
    name: str
    label: str  # the field's name, in words
    hint: str  # the Terms field's description
    kind: str  # text, number, date, datetime, select, lines, textarea, hidden
    required: bool
    choices: tuple[str, ...] = ()
    default: str = ""
    item_shape: str = ""  # lines: what each line holds, e.g. AMOUNT@DUE

    @property
    def input_id(self) -> str:
        return f"f-{self.name}"


@dataclass(frozen=True)
class ActionForm:
    action: Action
    fields: tuple[FormField, ...]

    @property
    def slug(self) -> str:
        """The form's id and the last part of its URL (`dispute resolve` → `dispute-resolve`)."""
        return slug(self.action)


def slug(action: Action) -> str:
    return action.name.replace(" ", "-")


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """The annotation without `| None`, and whether None was allowed."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return annotation, False


def _choices(annotation: Any) -> tuple[str, ...]:
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(str(v) for v in typing.get_args(annotation))
    return ()


def _item_model(annotation: Any) -> type[BaseModel] | None:
    args = typing.get_args(annotation)
    if args and isinstance(args[0], type) and issubclass(args[0], BaseModel):
        return args[0]
    return None


def _base(annotation: Any) -> Any:
    """`Annotated[X, ...]` → X (pydantic keeps constraints in metadata, not here)."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def form_field(name: str, info: FieldInfo, hidden: bool = False) -> FormField:
    annotation, optional = _unwrap(_base(info.annotation))
    annotation = _base(annotation)
    required = info.is_required()
    default = "" if required or info.default is None else str(info.default)
    hint = info.description or ""
    label = name.replace("_", " ")
    if hidden:
        return FormField(name, label, hint, "hidden", required, default=default)
    choices = _choices(annotation)
    if choices:
        return FormField(name, label, hint, "select", required, choices, default)
    if typing.get_origin(annotation) in (tuple, list):
        item = _item_model(annotation)
        shape = ITEM_SEPARATOR.join(f.upper() for f in item.model_fields) if item else ""
        return FormField(name, label, hint, "lines", required, item_shape=shape)
    if isinstance(annotation, type) and issubclass(annotation, datetime):
        return FormField(name, label, hint, "datetime", required and not optional, default=default)
    if isinstance(annotation, type) and issubclass(annotation, date):
        return FormField(name, label, hint, "date", required, default=default)
    if annotation is int:
        return FormField(name, label, hint, "number", required, default=default)
    if annotation is Decimal:
        return FormField(name, label, hint, "decimal", required, default=default)
    if name == "reason":
        return FormField(name, label, hint, "textarea", required, default=default)
    return FormField(name, label, hint, "text", required, default=default)


def action_form(action: Action, hidden: frozenset[str] = frozenset()) -> ActionForm:
    """The form of a row: every field of its terms, in the model's order; `hidden` ones
    are hidden inputs (an approval's request number, set by the page)."""
    fields = tuple(
        form_field(name, info, name in hidden) for name, info in action.terms.model_fields.items()
    )
    return ActionForm(action, fields)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def terms_from_form(action: Action, posted: dict[str, str]) -> BaseModel:
    """The row's terms from a posted form; raises pydantic's ValidationError (the field
    named) for what does not fit. An empty optional field is left out."""
    data: dict[str, Any] = {}
    for name, info in action.terms.model_fields.items():
        value = posted.get(name, "").strip()
        annotation, _ = _unwrap(_base(info.annotation))
        annotation = _base(annotation)
        if typing.get_origin(annotation) in (tuple, list):
            item = _item_model(annotation)
            lines = _lines(posted.get(name, ""))
            if item is None:
                data[name] = lines
                continue
            names = list(item.model_fields)
            data[name] = [
                dict(zip(names, line.split(ITEM_SEPARATOR), strict=False)) for line in lines
            ]
            continue
        if value == "":
            continue
        data[name] = value
    return action.terms.model_validate(data)


def field_errors(exc: ValidationError) -> dict[str, str]:
    """Each failing field (its top-level name) with the problem; the value is not echoed."""
    found: dict[str, str] = {}
    for error in exc.errors(include_input=False, include_url=False):
        where = str(error["loc"][0]) if error["loc"] else "(form)"
        found.setdefault(where, str(error["msg"]))
    return found
