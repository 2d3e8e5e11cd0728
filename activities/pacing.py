"""The pacer at the call site: a paced partner's provider is called at most `rate` times
in any second by this process, whatever the worker was handed at once.

Temporal's limits (the partner queue's `max_task_queue_activities_per_second`, the
worker's `max_activities_per_second`) pace when attempts *start*. A worker that stalls
(replaying an uncached case holds the GIL) is then handed, at once, what the server
dispatched meanwhile, and would call the partner in a bunch. The pacer turns that into a
short wait: each call takes a turn, turns are at least `1 / rate` apart (times
`1 + MARGIN`), and are given in the order they were asked for. A turn is scheduled from
when the one before it was due, not from when it was given: a wake-up that a busy event
loop made late is caught up, by at most `CATCH_UP_S`, so a busy worker still calls at the
pacer's rate. Over any `rate` turns, the catch-up and the network's delay varying by
`JITTER_S` between calls together fit in the `MARGIN` second: the partner counts at most
`rate` calls in any second. No burst after an idle spell: only one late turn is caught up.

Waiting for a turn is cancellable: an attempt withdrawn meanwhile is never sent, and its
turn goes to the next one (docs/providers.md, Pacing).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable

# How much wider than `1 / rate` the turns are: `rate` turns span `1 + MARGIN` seconds,
# of which a late turn's catch-up may take back `CATCH_UP_S` and the calls' network delay
# may differ by `JITTER_S`, leaving at most `rate` arrivals in any second.
CATCH_UP_S = 0.03
JITTER_S = 0.02
MARGIN = CATCH_UP_S + JITTER_S
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
        self._due = float("-inf")
        # asyncio.Lock wakes its waiters in the order they came: the turns' order.
        self._lock = asyncio.Lock()

    async def turn(self) -> None:
        """Wait for this call's turn. Cancelled while waiting: no turn is used."""
        async with self._lock:
            wait = self._due - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
            # From when this turn was due, so a late wake-up (a busy event loop) costs
            # the rate nothing; but from no earlier than CATCH_UP_S before it was given,
            # so the next call follows it by at least `interval - CATCH_UP_S`, and after
            # an idle spell the turns are not given in a bunch.
            self._due = max(self._due, self._clock() - CATCH_UP_S) + self._interval
