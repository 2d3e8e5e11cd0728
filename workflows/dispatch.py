"""One function per event type, checked complete: how `evolve` applies events and how
the status view describes them, without a chain of isinstance tests to drift.

`ByEvent.check_complete()` runs at import of each table's module, so an event type
added to `schemas.events.Event` without its handler fails every import (and the
tests) instead of surfacing as "unknown event" in a running case. A function may be
registered for a base class on purpose (`schemas.events.TimelineEvent`: events that
only go into the case file, changing nothing else); an event type finds the function
of the nearest class in its MRO that has one.
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
        found = self._table.get(kind)
        if found is None:
            found = self._resolve(kind)
            self._table[kind] = found  # resolved once
        return found

    def _resolve(self, kind: type[BaseModel]) -> F:
        for base in kind.__mro__[1:]:
            if base in self._table:
                return self._table[base]
        raise KeyError(f"{self._what}: no function for {kind.__name__}")

    def check_complete(self) -> None:
        missing = []
        for kind in EVENT_TYPES:
            try:
                self[kind]
            except KeyError:
                missing.append(kind.__name__)
        if missing:
            raise TypeError(f"{self._what}: no function for {', '.join(missing)}")
