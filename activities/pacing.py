"""The pacer at the call site: a paced partner's provider is called at most `rate` times
in any second by this process, whatever the worker was handed at once.

Temporal's limits (the partner queue's `max_task_queue_activities_per_second`, the
worker's `max_activities_per_second`) pace when attempts *start*. A worker that stalls
(replaying an uncached case holds the GIL) is then handed, at once, what the server
dispatched meanwhile, and would call the partner in a bunch. The pacer turns that into a
short wait: each call takes a turn, and turns are given in the order they were asked for.

The turns are a sliding window: at most `per_window(rate)` turns (the limit's whole
calls a second) in any `window_s(rate)` seconds (one second times `1 + MARGIN`, so
that the calls' network delay may vary by `MARGIN` seconds and the partner still
counts at most `rate` in any second). A turn given late (a busy event loop wakes up
late) delays only the turn `per_window` places after it, by as much, not every turn
after it: the drain keeps the rate where turns spaced from when they were given lost
each wake-up's delay (bench/scale.py, 7.9 of 9.5 a second). And no two turns are
closer than half of `window_s / per_window`, so a second's turns after an idle spell
go out over half a second, not in one instant.

Waiting for a turn is cancellable: an attempt withdrawn meanwhile is never sent, and its
turn goes to the next one (docs/providers.md, Pacing).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

# How much wider than one second the window is: over any second, this many seconds of
# difference in the calls' network delay still leave at most `rate` arrivals.
MARGIN = 0.05
# A paced partner's worker holds at most this many seconds of its rate at once (calls
# waiting for a turn or in flight): the backlog stays in the server's queue, in order,
# where a try's start-to-close timeout does not run. Held without this bound (the 100
# activity slots), a busy worker whose turns come late held 100 tries each waiting
# longer than its 10 s timeout, and none was sent (bench/scale.py, 6,000 cases).
HOLD_S = 3.0


def per_window(rate: float) -> int:
    """How many turns the pacer gives in any window: the whole calls a second the limit
    allows (2 for a limit of 2.5, whose third call would make 3 in a second), or one
    for a limit under one a second."""
    return max(1, math.floor(rate))


def window_s(rate: float) -> float:
    """The window's length in seconds: one second (with the margin) for a limit of one
    call a second or more, and the time one call is allowed below that."""
    return (1.0 + MARGIN) * per_window(rate) / min(rate, per_window(rate))


def paced_rate(rate: float) -> float:
    """The calls per second the pacer gives, at most, a partner whose limit is `rate`."""
    return per_window(rate) / window_s(rate)


def paced_slots(rate: float) -> int:
    """How many attempts a worker holds at once for a partner paced at `rate`."""
    return max(1, math.ceil(min(rate, per_window(rate)) * HOLD_S - 1e-9))


class Pacer:
    """At most `per_window(rate)` turns in any `window_s(rate)` seconds, first asked,
    first given, none closer than half their mean spacing."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be more than 0 calls a second, not {rate!r}")
        self.rate = rate
        self._window = window_s(rate)
        self._gap = self._window / per_window(rate) / 2
        self._clock = clock
        # When the last `per_window` turns were given, oldest first.
        self._given: deque[float] = deque(maxlen=per_window(rate))
        # asyncio.Lock wakes its waiters in the order they came: the turns' order.
        self._lock = asyncio.Lock()

    def _due(self) -> float:
        """The earliest instant the next turn may be given."""
        due = float("-inf")
        if self._given:
            due = self._given[-1] + self._gap
            if len(self._given) == self._given.maxlen:
                due = max(due, self._given[0] + self._window)
        return due

    async def turn(self) -> None:
        """Wait for this call's turn. Cancelled while waiting: no turn is used."""
        async with self._lock:
            due = self._due()
            wait = due - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            # The turn is counted from when it is given (never before it was due): a
            # late wake-up can never put more than `per_window` turns into a window.
            self._given.append(max(self._clock(), due))
