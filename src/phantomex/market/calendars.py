"""Exchange sessions (NYSE ``XNYS``, NASDAQ ``XNAS``, ...) through exchange-calendars.

A thin, cached wrapper: is the regular session open at a moment, and when does it next open.
The session opens and closes are read once per calendar and searched with bisect (a few
microseconds per question, where ``is_open_at_time`` takes about a millisecond). Calendars with
a lunch break (``XHKG`` ...) are asked through exchange-calendars itself. Crypto and prediction
instruments carry no calendar and trade around the clock."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # exchange-calendars and pandas load on the first calendar question
    import exchange_calendars as xcals

__all__ = ["CalendarError", "Session", "calendar_for", "session_at", "session_close"]

#: Sessions are known from here (exchange-calendars' default start moves with today's date, so a
#: fixed start keeps backtests of older data working whatever the date).
FIRST_SESSION = "2000-01-03"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class CalendarError(ValueError):
    """An unknown calendar name, or a moment the calendar does not cover."""


@dataclass(frozen=True, slots=True)
class Session:
    """Whether the market is open at ``at``; ``next_open`` is set when it is closed."""

    calendar: str
    at: datetime
    open: bool
    next_open: datetime | None = None

    def reason(self) -> str:
        """A human-readable hold reason (``market closed: next open 2020-09-08 13:30 UTC``)."""
        if self.open:
            return f"market open ({self.calendar})"
        nxt = self.next_open.strftime("%Y-%m-%d %H:%M UTC") if self.next_open else "unknown"
        return f"market closed: next open {nxt} ({self.calendar})"


@dataclass(frozen=True, slots=True)
class _Schedule:
    """Session opens and closes in UTC nanoseconds, sorted."""

    calendar: Any  # exchange_calendars.ExchangeCalendar
    opens: list[int]
    closes: list[int]
    has_breaks: bool


@lru_cache(maxsize=16)
def calendar_for(name: str) -> xcals.ExchangeCalendar:
    """The exchange calendar ``name`` (an ISO MIC such as ``XNYS``), built once per process."""
    import exchange_calendars as xcals
    from exchange_calendars.errors import InvalidCalendarName

    try:
        return xcals.get_calendar(name, start=FIRST_SESSION)
    except InvalidCalendarName as exc:
        raise CalendarError(f"unknown exchange calendar {name!r}") from exc


@lru_cache(maxsize=16)
def _schedule(name: str) -> _Schedule:
    cal = calendar_for(name)
    return _Schedule(
        cal,
        [int(v) for v in cal.opens_nanos],
        [int(v) for v in cal.closes_nanos],
        bool(cal.break_starts.notna().any()),
    )


def _ns(at: datetime) -> int:
    if at.tzinfo is None:
        raise CalendarError(f"{at} has no timezone")
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 10**9 + delta.microseconds * 1000


def _dt(ns: int) -> datetime:
    return _EPOCH + timedelta(microseconds=ns // 1000)


def session_at(name: str, at: datetime) -> Session:
    """The regular session of calendar ``name`` at the aware moment ``at``."""
    sched = _schedule(name)
    t = _ns(at)
    if not sched.opens[0] <= t <= sched.closes[-1]:
        raise CalendarError(
            f"calendar {name} covers {_dt(sched.opens[0]):%Y-%m-%d} .. "
            f"{_dt(sched.closes[-1]):%Y-%m-%d}, not {at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
        )
    if sched.has_breaks:
        import pandas as pd

        cal, ts = sched.calendar, pd.Timestamp(at)
        if cal.is_open_at_time(ts):
            return Session(name, at, True)
        nxt = cal.minute_to_trading_minute(ts.floor("min"), "next")  # after a break too
        return Session(name, at, False, nxt.to_pydatetime())
    i = bisect_right(sched.opens, t) - 1  # the last session that opened at or before t
    if i >= 0 and t < sched.closes[i]:
        return Session(name, at, True)
    nxt = _dt(sched.opens[i + 1]) if i + 1 < len(sched.opens) else None
    return Session(name, at, False, nxt)


def session_close(name: str, at: datetime) -> datetime | None:
    """The close of the regular session that has opened by ``at`` and not yet closed (None
    when the market is closed at ``at``)."""
    sched = _schedule(name)
    t = _ns(at)
    i = bisect_right(sched.opens, t) - 1
    return _dt(sched.closes[i]) if i >= 0 and t < sched.closes[i] else None
