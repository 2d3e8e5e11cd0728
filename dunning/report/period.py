"""The report's period, from what a manager types: `--from 2026-10-01 --to 2026-10-31`.

A date means the whole day in the time zone given (UTC unless said): `--from` its
start, `--to` its end, so both days are in. A time without an offset is in that time
zone too. The period is half-open, [from, to). Without `--to` it ends now; without
`--from` it starts 30 days before its end.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo

DEFAULT_DAYS = 30


class PeriodError(ValueError):
    """A bound that is not a date or time, or a period that ends before it starts;
    the message names the field."""


@dataclass(frozen=True)
class Period:
    start: datetime
    end: datetime


def _zone(name: str) -> tzinfo:
    if name.upper() == "UTC":
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise PeriodError("tz: must be an IANA time zone such as Asia/Shanghai") from None


def _bound(field: str, value: str, zone: tzinfo, *, end: bool) -> datetime:
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            if end:
                day += timedelta(days=1)
            return datetime.combine(day, time(0), zone)
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise PeriodError(
            f"{field}: not a date (YYYY-MM-DD) or an ISO 8601 time such as 2026-10-01T08:00+08:00"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def parse_period(
    start: str | None, end: str | None, tz: str = "UTC", now: datetime | None = None
) -> Period:
    zone = _zone(tz)
    stop = _bound("to", end, zone, end=True) if end else (now or datetime.now(UTC))
    try:
        begin = (
            _bound("from", start, zone, end=False) if start else stop - timedelta(days=DEFAULT_DAYS)
        )
    except OverflowError:
        raise PeriodError("to: too early for a period of 30 days before it") from None
    try:
        period = Period(begin.astimezone(UTC), stop.astimezone(UTC))
    except OverflowError:
        raise PeriodError("from: outside the years 1 to 9999") from None
    if period.start >= period.end:
        raise PeriodError("to: must be after from")
    return period
