"""The market port: feeds deliver ticks; brains read history through a window up to the clock."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime
from typing import Protocol

import numpy as np

from phantomex.domain.models import Bar, Instrument, Tick

__all__ = ["HistoryView", "MarketFeed", "PriceHistory", "Tick"]


class MarketFeed(Protocol):
    """A source of ticks. Replay and live feeds differ only here and in the clock."""

    @property
    def instruments(self) -> dict[str, Instrument]: ...

    def warmup(self) -> list[Tick]:
        """Ticks from before the start, for indicator history; never traded on."""
        ...

    async def next_tick(self) -> Tick | None:
        """Wait for and return the next tick; None when the feed has ended."""
        ...

    def close(self) -> None: ...


class PriceHistory:
    """Bounded per-symbol bar history, appended by the kernel as ticks arrive.

    Only bars the kernel has already processed are in here, so a brain can never see a bar later
    than the kernel's clock."""

    def __init__(self, max_bars: int = 5000) -> None:
        self._bars: dict[str, deque[Bar]] = {}
        self._max = max_bars
        # closes per (symbol, now, limit) since the last append: the agents of a tick share them
        self._closes: dict[tuple[str, datetime, int | None], np.ndarray] = {}

    def append(self, bars: Iterable[Bar]) -> None:
        self._closes.clear()
        for bar in bars:
            series = self._bars.setdefault(bar.symbol, deque(maxlen=self._max))
            if series and bar.time <= series[-1].time:
                continue  # out-of-order or duplicate bar from a feed: ignore it
            series.append(bar)

    def view(self, now: datetime) -> HistoryView:
        return HistoryView(self, now)

    def _series(self, symbol: str) -> deque[Bar]:
        return self._bars.get(symbol, deque())


class HistoryView:
    """Read-only window on :class:`PriceHistory` that ends at ``now``."""

    def __init__(self, history: PriceHistory, now: datetime) -> None:
        self._history = history
        self.now = now

    def bars(self, symbol: str, limit: int | None = None) -> list[Bar]:
        """The most recent bars (oldest first) whose open time is before ``now``."""
        series = self._history._series(symbol)
        out: list[Bar] = []
        for bar in reversed(series):
            if bar.time >= self.now:
                continue
            out.append(bar)
            if limit is not None and len(out) >= limit:
                break
        out.reverse()
        return out

    def closes(self, symbol: str, limit: int | None = None) -> np.ndarray:
        """Close prices as float64 (for indicators only; money stays Decimal). Each call gets
        its own array; the conversion is done once per symbol, window and history state."""
        key = (symbol, self.now, limit)
        cached = self._history._closes.get(key)
        if cached is None:
            cached = np.array([float(b.close) for b in self.bars(symbol, limit)], dtype=np.float64)
            self._history._closes[key] = cached
        return cached.copy()
