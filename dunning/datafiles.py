"""Versioned data files (policies, strategies, response models): TOML validated into a
pydantic model, found by `NAME` (the current version, `NAME.toml`) or `NAME@VERSION`
(the current file if it has that version, else an earlier one kept as
`NAME@VERSION.toml` beside it), in a list of folders searched in order."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, TypeVar

from pydantic import BaseModel, ValidationError


class Versioned(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def version(self) -> int: ...

    @property
    def ref(self) -> str: ...


M = TypeVar("M", bound=BaseModel)
V = TypeVar("V", bound=Versioned)


def describe(exc: ValidationError) -> str:
    """`field.path: problem; ...` from a validation error, input values left out."""
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '(file)'}: "
        f"{err['msg'].removeprefix('Value error, ')}"
        for err in exc.errors(include_input=False, include_url=False)
    )


def read_toml(path: Path, model: type[M], error: type[ValueError]) -> M:
    """The file as `model`, or `error` naming the file, the field and the problem."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise error(f"{path}: {exc}") from exc
    return parse_toml(path, content, model, error)


def parse_toml(path: Path, content: bytes, model: type[M], error: type[ValueError]) -> M:
    """`content` (read from `path`) as `model`, or `error` naming the file, the field
    and the problem."""
    try:
        data = tomllib.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise error(f"{path}: {exc}") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(f"{path}: {describe(exc)}") from exc


def find_versioned(
    ref: str,
    folders: Sequence[Path],
    load_file: Callable[[Path], V],
    error: type[ValueError],
    kind: str,
) -> V:
    """Load `NAME` or `NAME@VERSION` from the first folder that has it."""
    name, _, version = ref.partition("@")
    if version and not version.isdigit():
        raise error(f"{ref!r}: the version must be a number, as in {name}@2")
    current: V | None = None
    for folder in folders:
        kept = folder / f"{name}@{version}.toml"
        if version and kept.is_file():
            found = load_file(kept)
            if found.name != name or found.version != int(version):
                raise error(f"{kept}: holds {found.ref}, not {ref}")
            return found
        path = folder / f"{name}.toml"
        if path.is_file():
            current = load_file(path)
            if not version or int(version) == current.version:
                return current
    if current is not None:
        raise error(
            f"{kind} {name!r} is at version {current.version}; no {name}@{version}.toml kept"
        )
    raise error(f"no {kind} named {name!r}")
