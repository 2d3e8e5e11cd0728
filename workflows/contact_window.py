"""Contact windows in the borrower's local time, DST-correct via zoneinfo."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from schemas.policy import ContactWindow


def next_opening(moment: datetime, window: ContactWindow, timezone: str) -> datetime:
    """`moment` if it falls inside the window, else the window's next opening (aware)."""
    zone = ZoneInfo(timezone)
    local = moment.astimezone(zone)
    if window.start <= local.time() < window.end:
        return moment
    day = local.date() if local.time() < window.start else local.date() + timedelta(days=1)
    opening = datetime.combine(day, window.start, tzinfo=zone)
    # A window opening inside a DST gap does not exist locally; round-trip through UTC
    # gives the first real instant after it.
    return opening.astimezone(moment.tzinfo)
