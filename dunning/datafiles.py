"""Versioned data files (policies, strategies, response models): TOML validated into a
pydantic model, found by `NAME` (the current version, `NAME.toml`) or `NAME@VERSION`
(the current file if it has that version, else an earlier one kept as
`NAME@VERSION.toml` beside it), in a list of folders searched in order."""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol, TypeVar

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


# What `find_versioned` found inside `read_once()`: (kind, ref, folders) -> the file loaded.
_ONCE: ContextVar[dict[tuple[str, str, tuple[Path, ...]], Any] | None] = ContextVar(
    "dunning_read_once", default=None
)


@contextmanager
def read_once() -> Iterator[None]:
    """Within this block (and the tasks it starts), each `NAME` or `NAME@VERSION` is
    found, read and checked once: a batch of openings opens on one view of its policy,
    strategy and template files, and a row costs no file reads of its own (reading and
    checking them was 0.8 ms of the 3 ms of client CPU an opening cost). A file that
    could not be loaded is not remembered: each row reports its error. Outside, every
    load reads the files as they are now."""
    token = _ONCE.set({})
    try:
        yield
    finally:
        _ONCE.reset(token)


def find_versioned(
    ref: str,
    folders: Sequence[Path],
    load_file: Callable[[Path], V],
    error: type[ValueError],
    kind: str,
) -> V:
    """Load `NAME` or `NAME@VERSION` from the first folder that has it (once per
    `read_once()` block)."""
    memo = _ONCE.get()
    key = (kind, ref, tuple(folders))
    if memo is not None and key in memo:
        found: V = memo[key]
        return found
    loaded = _find_versioned(ref, folders, load_file, error, kind)
    if memo is not None:
        memo[key] = loaded
    return loaded


def _find_versioned(
    ref: str,
    folders: Sequence[Path],
    load_file: Callable[[Path], V],
    error: type[ValueError],
    kind: str,
) -> V:
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
