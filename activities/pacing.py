"""The pacer at the call site: a paced partner's provider is called at most `rate` times
in any second by this process, whatever the worker was handed at once.

Temporal's limits (the partner queue's `max_task_queue_activities_per_second`, the
worker's `max_activities_per_second`) pace when attempts *start*. A worker that stalls
(replaying an uncached case holds the GIL) is then handed, at once, what the server
dispatched meanwhile, and would call the partner in a bunch. The pacer turns that into a
short wait: each call takes a turn, turns are at least `1 / rate` apart (times
`1 + MARGIN`, so that the network's delay may vary by `MARGIN` seconds between calls and
the partner still counts at most `rate` in any second), and are given in the order they
were asked for. A turn is a token bucket of capacity one: no burst after an idle spell.
A turn is held until its call begins, and the next is spaced from that too, so a call
delayed between its turn and the provider (a worker stall) does not bring the next one
closer.

Waiting for a turn is cancellable: an attempt withdrawn meanwhile is never sent, and its
turn goes to the next one (docs/providers.md, Pacing).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

# How much wider than `1 / rate` the turns are: over any second, this many seconds of
# difference in the calls' network delay still leave at most `rate` arrivals.
MARGIN = 0.05
# A paced partner's worker holds at most this many seconds of its rate at once (calls
# waiting for a turn or in flight): the backlog stays in the server's queue, in order,
# where a try's start-to-close timeout does not run. Held without this bound (the 100
# activity slots), a busy worker whose turns come late held 100 tries each waiting
# longer than its 10 s timeout, and none was sent (bench/scale.py, 6,000 cases).
HOLD_S = 3.0


def paced_rate(rate: float) -> float:
    """The calls per second the pacer gives a partner whose limit is `rate`."""
    return rate / (1.0 + MARGIN)


def paced_slots(rate: float) -> int:
    """How many attempts a worker holds at once for a partner paced at `rate`."""
    return max(1, math.ceil(rate * HOLD_S))


class Pacer:
    """Turns at most `paced_rate(rate)` per second, first asked, first given."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be more than 0 calls a second, not {rate!r}")
        self.rate = rate
        self._interval = 1.0 / paced_rate(rate)
        self._clock = clock
        self._next = float("-inf")
        # asyncio.Lock wakes its waiters in the order they came: the turns' order.
        self._lock = asyncio.Lock()

    async def turn(self) -> None:
        """Wait for this call's turn and hold it: the next turn is not given before
        `began` (the call is made) or `passed` (it is not). Cancelled while waiting: no
        turn is used."""
        await self._lock.acquire()
        try:
            wait = self._next - self._clock()  # the turn before has begun: final
            if wait > 0:
                await asyncio.sleep(wait)
        except BaseException:
            self._lock.release()
            raise
        # From when the turn is given, not when it was due: a late wake-up (a busy
        # event loop) does not let the next call follow closer than the interval.
        self._next = self._clock() + self._interval

    def began(self) -> None:
        """The call holding the turn begins now, just before the provider is asked: the
        next turn is an interval after this too. A stall between a turn and its call
        (the seconds with few calls in bench/scale.py's burst) then delays the next call
        instead of letting it follow closer than the interval."""
        self._next = max(self._next, self._clock() + self._interval)
        self._lock.release()

    def passed(self) -> None:
        """The call holding the turn is not made (withdrawn, no time left): the next
        turn comes when it would have."""
        self._lock.release()
