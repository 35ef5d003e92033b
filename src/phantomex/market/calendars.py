"""Exchange sessions (NYSE ``XNYS``, NASDAQ ``XNAS``, ...) through exchange-calendars.

A thin, cached wrapper: is the regular session open at a moment, and when does it next open.
Crypto and prediction instruments carry no calendar and trade around the clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import exchange_calendars as xcals
import pandas as pd
from exchange_calendars.errors import InvalidCalendarName

__all__ = ["CalendarError", "Session", "calendar_for", "session_at", "session_close"]

#: Sessions are known from here (exchange-calendars' default start moves with today's date, so a
#: fixed start keeps backtests of older data working whatever the date).
FIRST_SESSION = "2000-01-03"


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


@lru_cache(maxsize=16)
def calendar_for(name: str) -> xcals.ExchangeCalendar:
    """The exchange calendar ``name`` (an ISO MIC such as ``XNYS``), built once per process."""
    try:
        return xcals.get_calendar(name, start=FIRST_SESSION)
    except InvalidCalendarName as exc:
        raise CalendarError(f"unknown exchange calendar {name!r}") from exc


def session_at(name: str, at: datetime) -> Session:
    """The regular session of calendar ``name`` at the aware moment ``at``."""
    if at.tzinfo is None:
        raise CalendarError(f"{at} has no timezone")
    cal = calendar_for(name)
    ts = pd.Timestamp(at).tz_convert(UTC)
    if not cal.first_minute <= ts <= cal.last_minute:
        raise CalendarError(
            f"calendar {name} covers {cal.first_minute:%Y-%m-%d} .. {cal.last_minute:%Y-%m-%d}, "
            f"not {ts:%Y-%m-%d %H:%M} UTC"
        )
    if cal.is_open_at_time(ts):
        return Session(name, at, True)
    return Session(name, at, False, _next_open(name, ts.floor("min")))


@lru_cache(maxsize=4096)
def _next_open(name: str, minute: pd.Timestamp) -> datetime | None:
    cal = calendar_for(name)
    try:
        nxt: pd.Timestamp = cal.next_open(minute)
    except ValueError:  # beyond the calendar's last session
        return None
    return nxt.to_pydatetime()


@lru_cache(maxsize=65536)
def session_close(name: str, at: datetime) -> datetime | None:
    """The close of the regular session that is open at ``at`` (None when none is open)."""
    cal = calendar_for(name)
    try:
        session = cal.minute_to_session(pd.Timestamp(at).tz_convert(UTC).floor("min"), "none")
    except ValueError:  # not a trading minute, or outside the calendar
        return None
    close: pd.Timestamp = cal.session_close(session)
    return close.to_pydatetime()
