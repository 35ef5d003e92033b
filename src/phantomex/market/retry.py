"""Polling politely: ``Retry-After``, back-off, and a blocking poll run off the event loop."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from phantomex.domain.models import Tick


def retry_after_seconds(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the delta form; an HTTP date or garbage gives None)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


class Backoff:
    """The wait before the next poll: ``base`` after a good round, doubling per failed round up
    to ``maximum``, and never shorter than a rate limit's ``Retry-After``."""

    def __init__(self, base: float, maximum: float) -> None:
        self.base = base
        self.maximum = max(maximum, base)
        self.failed_rounds = 0
        self.delay = 0.0  # the first poll goes at once

    def record(self, answered: bool, retry_after: float | None = None) -> float:
        """Account for one polling round (``answered``: at least one request succeeded)."""
        self.failed_rounds = 0 if answered else self.failed_rounds + 1
        self.delay = min(self.base * 2 ** min(self.failed_rounds, 16), self.maximum)
        if retry_after is not None:
            self.delay = max(self.delay, retry_after)
        return self.delay


async def polled_tick(
    is_closed: Callable[[], bool], delay: float, poll: Callable[[], Tick]
) -> Tick | None:
    """Wait ``delay``, then run a feed's blocking ``poll`` in a thread; None once it is closed."""
    if is_closed():
        return None
    await asyncio.sleep(delay)
    if is_closed():
        return None
    try:
        return await asyncio.to_thread(poll)
    except RuntimeError:  # httpx refuses a request once close() has run
        if is_closed():
            return None
        raise
