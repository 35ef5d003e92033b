"""The clock port: a person's time (approval expiry, the time before the first tick).

The kernel never reads the wall clock itself: it is given a :class:`Clock`. Live servers pass
:class:`WallClock`; tests pass a :class:`SimulatedClock` and move it explicitly.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """A source of the current time (aware, UTC)."""

    def now(self) -> datetime: ...


class WallClock:
    """The real wall clock (UTC)."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class SimulatedClock:
    """A clock that moves only when told to."""

    def __init__(self, start: datetime) -> None:
        self.time = start

    def now(self) -> datetime:
        return self.time

    def set(self, time: datetime) -> None:
        self.time = time

    def advance(self, delta: timedelta) -> None:
        self.time += delta
