"""The market port: feeds deliver ticks; brains read history through a window up to the clock."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import Protocol, overload, runtime_checkable

import numpy as np

from phantomex.domain.models import Bar, Instrument, Tick

__all__ = ["BarSource", "BarSpan", "HistoryView", "MarketFeed", "PriceHistory", "Tick"]


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


@runtime_checkable
class PacedFeed(Protocol):
    """A replay paced at ``speed`` market seconds per wall second (0: as fast as it goes)."""

    speed: float


@runtime_checkable
class ResolvingFeed(Protocol):
    """A feed of markets that resolve (prediction markets): their payouts once resolved."""

    def resolutions(self) -> dict[str, Decimal]:
        """Symbol -> payout of every outcome token whose market has resolved."""
        ...


class BarSource(Protocol):
    """One symbol's bars by position, each built when asked (a replay's columns)."""

    @property
    def floats(self) -> np.ndarray:
        """Every close as a float (``float`` of the exact close)."""
        ...

    def bar(self, k: int) -> Bar: ...

    def time(self, k: int) -> datetime:
        """The open time of bar ``k`` (without building it)."""
        ...


class BarSpan(Sequence[Bar]):
    """The bars ``start`` to ``stop`` (excluded) of a :class:`BarSource`, built when read: the
    price history keeps a span of a replay's skipped ticks without building its bars."""

    def __init__(self, source: BarSource, start: int, stop: int) -> None:
        self.source, self.start, self.stop = source, start, max(start, stop)

    def __len__(self) -> int:
        return self.stop - self.start

    @overload
    def __getitem__(self, i: int) -> Bar: ...
    @overload
    def __getitem__(self, i: slice) -> BarSpan: ...
    def __getitem__(self, i: int | slice) -> Bar | BarSpan:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step != 1:
                raise ValueError("BarSpan slices take every bar (step 1)")
            return BarSpan(self.source, self.start + start, self.start + stop)
        j = i + len(self) if i < 0 else i
        if not 0 <= j < len(self):
            raise IndexError(i)
        return self.source.bar(self.start + j)


class FloatColumn:
    """The latest closes of a symbol (at most ``max_bars``) as floats, contiguous in one array
    (at most twice as long, moved down when full), so any window of them is a slice."""

    __slots__ = ("_buf", "_end", "_max")

    def __init__(self, max_bars: int) -> None:
        self._max = max_bars
        self._buf = np.empty(max(1, min(2 * max_bars, 256)), dtype=np.float64)
        self._end = 0  # the values are self._buf[max(0, end - max) : end]

    def __len__(self) -> int:
        return min(self._end, self._max)

    def append(self, value: float) -> None:
        if self._end == len(self._buf):
            self._make_room(1)
        self._buf[self._end] = value
        self._end += 1

    def extend(self, values: np.ndarray) -> None:
        """Append ``values`` (float64) in order; only the latest ``max_bars`` are kept."""
        n = len(values)
        if n >= self._max:
            if len(self._buf) < self._max:
                self._buf = np.empty(min(2 * self._max, 2 * n), dtype=np.float64)
            self._buf[: self._max] = values[n - self._max :]
            self._end = self._max
            return
        if self._end + n > len(self._buf):
            self._make_room(n)
        self._buf[self._end : self._end + n] = values
        self._end += n

    def _make_room(self, n: int) -> None:
        """Keep the live values at the start of a buffer with room for ``n`` more (< max)."""
        keep = len(self)
        size = len(self._buf)
        while size < keep + n and size < 2 * self._max:
            size = min(2 * size, 2 * self._max)
        live = self._buf[self._end - keep : self._end]
        if size > len(self._buf):
            buf = np.empty(size, dtype=np.float64)
            buf[:keep] = live
            self._buf = buf
        else:
            self._buf[:keep] = live.copy()
        self._end = keep

    def window(self, later: int, limit: int | None) -> np.ndarray:
        """The values but the ``later`` latest, the last ``limit`` of them (all when None):
        a view, not a copy."""
        end = self._end
        first = end - self._max if end > self._max else 0
        stop = end - later if end - later > first else first
        if limit is None or stop - limit < first:
            return self._buf[first:stop]
        return self._buf[stop - limit : stop]


class _Run:
    """A symbol's whole history as one run of positions of a source (``start`` to ``stop``,
    excluded; the latest ``max_bars`` of them kept): spans that follow one another, as a
    backtest's skipped and visited ticks do, extend it by moving ``stop``."""

    __slots__ = ("_max", "source", "start", "stop")

    def __init__(self, source: BarSource, start: int, stop: int, max_bars: int) -> None:
        self.source, self.start, self.stop, self._max = source, start, stop, max_bars

    def positions(self) -> range:
        return range(max(self.start, self.stop - self._max), self.stop)

    def window(self, later: int, limit: int | None) -> np.ndarray:
        """As :meth:`FloatColumn.window`: a view of the source's floats."""
        first = max(self.start, self.stop - self._max)
        stop = max(first, self.stop - later)
        if limit is not None and stop - limit > first:
            first = stop - limit
        return self.source.floats[first:stop]


class PriceHistory:
    """Bounded per-symbol bar history, appended by the kernel as ticks arrive.

    Only bars the kernel has already processed are in here, so a brain can never see a bar later
    than the kernel's clock. Closes are also kept as floats, for indicators. Bars of a
    :class:`BarSpan` are kept as their positions in its source and built when read; a symbol
    whose every bar so far came in spans of one source that follow one another is kept as
    one run of positions (:class:`_Run`), until a bar that does not continue it arrives."""

    def __init__(self, max_bars: int = 5000) -> None:
        self._bars: dict[str, deque[Bar | int]] = {}
        self._closes: dict[str, FloatColumn] = {}
        self._sources: dict[str, BarSource] = {}
        self._runs: dict[str, _Run] = {}
        self._max = max_bars

    def append(self, bars: Iterable[Bar]) -> None:
        for bar in bars:
            if bar.symbol in self._runs:
                self._end_run(bar.symbol)
            series, closes = self._open(bar.symbol)
            if series and bar.time <= self._time(bar.symbol, series[-1]):
                continue  # out-of-order or duplicate bar from a feed: ignore it
            series.append(bar)
            closes.append(float(bar.close))

    def extend(self, symbol: str, bars: Sequence[Bar]) -> None:
        """Append one symbol's bars, already in strictly increasing time order (a replay's
        skipped ticks), in one step; bars not after the latest one are ignored (as in
        :meth:`append`)."""
        if isinstance(bars, BarSpan) and self._run(symbol, bars):
            return
        if symbol in self._runs:
            self._end_run(symbol)
        series, closes = self._open(symbol)
        if isinstance(bars, BarSpan) and self._sources.setdefault(symbol, bars.source) is (
            bars.source
        ):
            if not bars:
                return
            if series and not self._after(symbol, bars, series[-1]):
                self.append(bars)
                return
            start = max(bars.start, bars.stop - self._max)
            series.extend(range(start, bars.stop))
            closes.extend(bars.source.floats[start : bars.stop])
            return
        if series and bars and bars[0].time <= self._time(symbol, series[-1]):
            self.append(bars)
            return
        kept = list(bars[-self._max :])
        series.extend(kept)
        closes.extend(np.array([float(b.close) for b in kept], dtype=np.float64))

    def _run(self, symbol: str, span: BarSpan) -> bool:
        """Keep ``span`` in the symbol's run, or start one (an empty history); False when it
        does not continue the run (or there is none and bars are already kept)."""
        run = self._runs.get(symbol)
        if run is None:
            if symbol in self._bars or span.stop <= span.start:
                return False
            self._runs[symbol] = _Run(span.source, span.start, span.stop, self._max)
            self._sources[symbol] = span.source
            return True
        if span.source is not run.source or span.start != run.stop:
            return span.source is run.source and span.stop <= span.start  # empty: nothing
        run.stop = span.stop
        return True

    def _end_run(self, symbol: str) -> None:
        """Keep the symbol's run as positions, to go on bar by bar."""
        run = self._runs.pop(symbol)
        series, closes = self._open(symbol)
        kept = run.positions()
        series.extend(kept)
        closes.extend(run.source.floats[kept.start : kept.stop])

    def _after(self, symbol: str, span: BarSpan, last: Bar | int) -> bool:
        """Whether ``span`` (of the symbol's source) opens after the history's ``last`` bar:
        a position in the same source (its bars in time order) is compared as a position."""
        if isinstance(last, int):
            return span.start > last
        return span.source.time(span.start) > self._time(symbol, last)

    def _open(self, symbol: str) -> tuple[deque[Bar | int], FloatColumn]:
        series = self._bars.get(symbol)
        if series is None:
            series = self._bars[symbol] = deque(maxlen=self._max)
            self._closes[symbol] = FloatColumn(self._max)
        return series, self._closes[symbol]

    def view(self, now: datetime) -> HistoryView:
        return HistoryView(self, now)

    def _bar(self, symbol: str, item: Bar | int) -> Bar:
        return item if isinstance(item, Bar) else self._sources[symbol].bar(item)

    def _time(self, symbol: str, item: Bar | int) -> datetime:
        return item.time if isinstance(item, Bar) else self._sources[symbol].time(item)

    def _series(self, symbol: str) -> Sequence[Bar | int]:
        run = self._runs.get(symbol)
        if run is not None:
            return run.positions()
        return self._bars.get(symbol, deque())

    def _column(self, symbol: str) -> FloatColumn | _Run | None:
        """The symbol's closes as floats (a :meth:`FloatColumn.window` of them)."""
        run = self._runs.get(symbol)
        return run if run is not None else self._closes.get(symbol)


class HistoryView:
    """Read-only window on :class:`PriceHistory` that ends at ``now``."""

    def __init__(self, history: PriceHistory, now: datetime) -> None:
        self._history = history
        self.now = now

    def bars(self, symbol: str, limit: int | None = None) -> list[Bar]:
        """The most recent bars (oldest first) whose open time is before ``now``."""
        history = self._history
        series = history._series(symbol)
        later = self._later(symbol, series)
        kept = islice(reversed(series), later, None if limit is None else later + limit)
        out = [history._bar(symbol, item) for item in kept]
        out.reverse()
        return out

    def closes(self, symbol: str, limit: int | None = None) -> np.ndarray:
        """Close prices of :meth:`bars` as float64 (for indicators only; money stays
        Decimal)."""
        history = self._history
        column = history._column(symbol)
        if column is None:
            return np.empty(0, dtype=np.float64)
        return column.window(self._later(symbol, history._series(symbol)), limit).copy()

    def close_list(self, symbol: str, limit: int) -> list[float]:
        """The last ``limit`` values of :meth:`closes` as a list (a short window read in plain
        Python, without an array)."""
        history = self._history
        column = history._column(symbol)
        if column is None:
            return []
        out: list[float] = column.window(
            self._later(symbol, history._series(symbol)), limit
        ).tolist()
        return out

    def _later(self, symbol: str, series: Sequence[Bar | int]) -> int:
        """How many of the latest bars open at or after ``now`` (a view older than the
        history: a decision that started before the latest ticks)."""
        time = self._history._time
        if not series or time(symbol, series[-1]) < self.now:
            return 0  # the usual view: of the latest tick
        later = 0
        for item in reversed(series):
            if time(symbol, item) < self.now:
                break
            later += 1
        return later
