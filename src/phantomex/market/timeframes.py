"""Candle sizes: between ccxt's names (``1m``, ``4h``, ``1d``) and spacings of bars."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from itertools import pairwise

from phantomex.domain.models import Bar

_UNITS = (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def timeframe_name(period: timedelta) -> str:
    """``timedelta(minutes=5)`` → ``5m``: the largest unit that divides it."""
    seconds = int(period.total_seconds())
    if seconds <= 0 or seconds != period.total_seconds():
        raise ValueError(f"not a candle size: {period}")
    for unit, size in _UNITS:
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: 1 second divides every whole number of seconds")


def timeframe_of(bars: Sequence[Bar]) -> str:
    """The candle size of a series: its most common spacing (1m when it has one bar)."""
    steps = Counter(b.time - a.time for a, b in pairwise(bars) if b.time > a.time)
    if not steps:
        return "1m"
    return timeframe_name(max(steps.items(), key=lambda kv: (kv[1], -kv[0]))[0])
