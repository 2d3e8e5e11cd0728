"""Borrower-local dates to instants: when a day, plus its grace, is over."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def end_of_day(day: date, timezone: str, grace_days: int, day_length: timedelta) -> datetime:
    """The borrower's local midnight ending `day`, plus the grace in policy days (a policy
    day is 24 h except in accelerated demo policies)."""
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=ZoneInfo(timezone))
    return midnight + grace_days * day_length


def local_date(moment: datetime, timezone: str) -> date:
    return moment.astimezone(ZoneInfo(timezone)).date()
