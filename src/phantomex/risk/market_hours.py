"""The market-hours rule: no buy or sell of an instrument while its exchange is closed.

Instruments without a calendar (crypto, prediction markets) trade around the clock."""

from __future__ import annotations

from datetime import datetime

from phantomex.domain.models import Instrument
from phantomex.market.calendars import CalendarError, session_at


def market_closed(instrument: Instrument | None, now: datetime) -> str | None:
    """Why ``instrument`` cannot trade at ``now`` (``market closed: next open …``), or None."""
    if instrument is None or instrument.calendar is None:
        return None
    try:
        session = session_at(instrument.calendar, now)
    except CalendarError as exc:  # unknown calendar or date: refuse rather than guess
        return f"market hours of {instrument.symbol} unknown: {exc}"
    return None if session.open else session.reason()
