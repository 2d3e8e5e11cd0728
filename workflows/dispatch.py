"""One function per event type, checked complete: how `evolve` applies events and how
the status view describes them, without a chain of isinstance tests to drift.

`ByEvent.check_complete()` runs at import of each table's module, so an event type
added to `schemas.events.Event` without its handler fails every import (and the
tests) instead of surfacing as "unknown event" in a running case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar, get_args

from pydantic import BaseModel

from schemas.events import Event

F = TypeVar("F", bound=Callable[..., Any])

EVENT_TYPES: tuple[type[BaseModel], ...] = get_args(get_args(Event)[0])


class ByEvent(Generic[F]):
    """A table from event type to a function of it."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._table: dict[type[BaseModel], F] = {}

    def on(self, *types: type[BaseModel]) -> Callable[[F], F]:
        """Register the decorated function for each of `types`."""

        def register(fn: F) -> F:
            for kind in types:
                if kind in self._table:
                    raise TypeError(f"{self._what}: a second function for {kind.__name__}")
                self._table[kind] = fn
            return fn

        return register

    def __getitem__(self, kind: type[BaseModel]) -> F:
        return self._table[kind]

    def check_complete(self) -> None:
        missing = [t.__name__ for t in EVENT_TYPES if t not in self._table]
        if missing:
            raise TypeError(f"{self._what}: no function for {', '.join(missing)}")
