"""Replay historical bars as a market feed (:class:`~phantomex.market.base.MarketFeed`).

Clock and alignment
    The bars of all symbols are aligned on the union of their open times. The tick for open time
    ``t`` carries every bar that opens at ``t`` and has ``Tick.time = t + period``: the *close*
    time, so a decision made on that tick sees the bar's close and nothing later. A symbol with no
    bar at ``t`` is absent from ``Tick.bars`` and keeps its previous snapshot (whose ``time`` is
    then older than ``Tick.time``: the price is stale). A symbol has no snapshot before its first
    bar.

Snapshots
    ``price`` is the close of the symbol's latest bar, ``time`` that bar's close time, and
    ``change_24h_pct = (close / close_24h_ago - 1) * 100`` where ``close_24h_ago`` is the close of
    the latest bar of the symbol opening at or before ``t - 24h`` (so only data at or before the
    tick is used); None when there is no such bar.

Looping
    With ``loop=True`` the data restart from the beginning when they run out, every time shifted
    forward by ``span + period`` per lap (``span`` = last open time minus first open time), so the
    clock keeps increasing strictly and one ``period`` separates the last bar of a lap from the
    first bar of the next. Prices repeat exactly; bars in later laps are copies with shifted
    ``time``. The 24-hour change follows this virtual timeline, so early in a later lap it
    compares with the end of the previous lap (just like a price history built from the ticks).

Warmup and resume
    ``warmup()`` returns the ``warmup_bars`` ticks immediately before the first tick that
    ``next_tick()`` returns (never traded on). ``start_after`` skips every tick with
    ``time <= start_after`` (in any lap), so a restarted replay resumes exactly after the last
    tick it processed; without it, ``next_tick()`` starts right after the warmup ticks.

Pacing
    ``speed`` is market seconds per wall second: at ``speed=60`` one-minute bars arrive one per
    wall second. ``0`` or ``inf`` means as fast as possible (the feed still yields to the event
    loop every few ticks). Ticks are scheduled at ``origin + k * period / speed`` against a
    monotonic clock, so sleep overshoot never accumulates; gaps in the data are not replayed as
    pauses. A consumer that falls more than ``max(1 s, 4 intervals)`` behind gets the schedule
    re-anchored instead of a burst of catch-up ticks (e.g. after being paused).
"""

from __future__ import annotations

import asyncio
import math
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from phantomex.domain.models import Bar, Instrument, Snapshot
from phantomex.domain.money import MAX_PRICE, ZERO
from phantomex.market.base import BarSpan, Tick
from phantomex.market.health import SourceHealth
from phantomex.market.loaders import load_bars, load_dataset
from phantomex.market.replay_rows import DEFAULT_PERIOD, SymbolRows, datetimes_of, infer_period

__all__ = ["DEFAULT_PERIOD", "ReplayFeed", "replay_dataset", "replay_from_files"]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
_DAY_US = 86_400_000_000
_HUNDRED = Decimal(100)
_ONE = Decimal(1)
_YIELD_AFTER = 0.01  # seconds: a replay behind its clock gives other tasks (the API) a turn


def _us(dt: datetime) -> int:
    return (dt - _EPOCH) // _ONE_US


class ReplayFeed:
    """A :class:`~phantomex.market.base.MarketFeed` replaying bars (see the module docstring).

    ``bars`` maps symbol -> bars (any order; duplicates by time keep the first); each bar's
    ``symbol`` must equal its key and its ``time`` (open time) must be timezone-aware. Bars
    given as columns (:class:`~phantomex.market.columns.BarColumns`) are read as arrays, and a
    :class:`Bar` is built only when one is handed on (:mod:`.replay_rows`).
    ``period`` defaults to the most common spacing between consecutive bars (1 minute when it
    cannot be inferred). ``instruments`` overrides the default crypto ``Instrument(symbol)``
    (quoted in USD). ``clock`` is the monotonic clock used for pacing (injectable for tests).
    """

    def __init__(
        self,
        bars: Mapping[str, Sequence[Bar]],
        *,
        period: timedelta | None = None,
        speed: float = 0.0,
        loop: bool = False,
        warmup_bars: int = 0,
        start_after: datetime | None = None,
        instruments: Mapping[str, Instrument] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not bars:
            raise ValueError("ReplayFeed needs bars for at least one symbol")
        if warmup_bars < 0:
            raise ValueError(f"warmup_bars must be >= 0, got {warmup_bars}")
        series = {symbol: SymbolRows.of(symbol, b) for symbol, b in bars.items()}
        self._symbols: tuple[str, ...] = tuple(series)
        if period is None:
            period = infer_period(r.opens_us for r in series.values())
        if period <= timedelta(0):
            raise ValueError(f"period must be positive, got {period}")
        self._period = period
        period_us = period // _ONE_US

        # Union of open times -> each symbol's bar at each union position (-1: none).
        union_idx: dict[str, Sequence[int]] = {}
        at: dict[str, Sequence[int]] = {}
        if len(series) == 1:
            (only,) = series.values()
            times, times_us = only.opens, only.opens_us
            n = len(times)
            union_idx[only.symbol] = at[only.symbol] = range(n)
        else:
            union = np.unique(np.concatenate([r.opens_us for r in series.values()]))
            times, times_us = union.tolist(), union
            n = len(times)
            for symbol, r in series.items():
                idx = np.searchsorted(union, r.opens_us)
                row = np.full(n, -1, dtype=np.int64)
                row[idx] = np.arange(idx.size)
                union_idx[symbol], at[symbol] = idx.tolist(), row.tolist()

        self._n = n
        self._times_us = times  # open times, lap 0
        close_us = times_us + period_us
        self._close_us = close_us  # tick times, lap 0
        self._close_dt = datetimes_of(close_us)
        self._lap_us = times[-1] - times[0] + period_us  # span + period
        self._lap = timedelta(microseconds=self._lap_us)
        self._series = series
        # bars given as columns only: the history keeps them as positions (see taken_bars)
        self._columnar = all(rows.columnar for rows in series.values())
        self._at = at
        self._union_idx = union_idx

        self._instruments = {s: Instrument(s) for s in self._symbols}
        if instruments:
            self._instruments.update({s: i for s, i in instruments.items() if s in series})
        self._loop = loop
        self._warmup_bars = warmup_bars
        first = warmup_bars
        if start_after is not None:
            first = max(first, self._first_after(start_after))
        if not loop:
            first = min(first, n)
        self._first = first  # virtual index of the first tick next_tick() returns
        self._warmup_from = max(0, first - warmup_bars)
        self._warmup_ticks: list[Tick] | None = None

        self._cursor = first
        self._snaps = self._snapshots_before(first)
        self._last_time: datetime | None = None
        self._taken: Tick | None = None  # the tick take() returned last
        self._closed = False
        self._wake: asyncio.Event | None = None

        self._clock = clock
        self._speed = 0.0
        self._interval = 0.0
        self._origin: float | None = None
        self._scheduled = 0  # ticks emitted since the schedule origin
        self._yielded_at = time.monotonic()
        self.set_speed(speed)
        self._health = SourceHealth("replay", symbols=list(self._symbols))
        self._emitted_at: float | None = None  # wall clock (epoch seconds) of the latest tick

    # ------------------------------------------------------------------ MarketFeed protocol

    @property
    def instruments(self) -> dict[str, Instrument]:
        return dict(self._instruments)

    def warmup(self) -> list[Tick]:
        """The ``warmup_bars`` ticks right before the first tick of :meth:`next_tick`."""
        if self._warmup_ticks is None:
            snaps = self._snapshots_before(self._warmup_from)
            self._warmup_ticks = [
                self._build(v, snaps) for v in range(self._warmup_from, self._first)
            ]
        return list(self._warmup_ticks)

    async def next_tick(self) -> Tick | None:
        if self._closed or (not self._loop and self._cursor >= self._n):
            return None
        delay = self._delay(self._clock()) if self._interval > 0 else 0.0
        if delay > 0 or time.monotonic() - self._yielded_at >= _YIELD_AFTER:
            await (self._wait(delay) if delay > 0 else asyncio.sleep(0))
            self._yielded_at = time.monotonic()
        return self.take()

    def take(self, *, bars: bool = True) -> Tick | None:
        """The next tick at once (None: the feed has ended): :meth:`next_tick` without its
        pacing and without giving other tasks a turn, for a consumer of an unpaced replay that
        gives them one itself (a backtest's driver, once per batch of ticks). With ``bars``
        False, a tick of bars given as columns, in lap 0, carries no ``Bar`` (its ``bars`` is
        empty): for a consumer that reads them only as :meth:`taken_bars` gives them."""
        if self._closed or (not self._loop and self._cursor >= self._n):
            return None
        bare = not bars and self._columnar and self._cursor < self._n
        tick = self._build(self._cursor, self._snaps, bars=not bare)
        self._cursor += 1
        self._scheduled += 1
        self._last_time = tick.time
        self._taken = tick
        self._emitted_at = time.time()  # health() reads it (a datetime per tick costs more)
        return tick

    def close(self) -> None:
        """End the feed: a pending and every later :meth:`next_tick` call return None. Call it
        from the event loop's thread (use ``loop.call_soon_threadsafe`` from elsewhere)."""
        self._closed = True
        if self._wake is not None:
            self._wake.set()

    def health(self) -> list[SourceHealth]:
        """When the replay last emitted a tick (wall clock): stale when paced ticks stop."""
        health = self._health
        if self._emitted_at is not None:
            health.ok(datetime.fromtimestamp(self._emitted_at, UTC))
            self._emitted_at = None
        health.stale_after = max(timedelta(minutes=3), timedelta(seconds=10 * self._interval))
        return [health]

    # ------------------------------------------------------------------ extras

    def __aiter__(self) -> ReplayFeed:
        return self

    async def __anext__(self) -> Tick:
        tick = await self.next_tick()
        if tick is None:
            raise StopAsyncIteration
        return tick

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._symbols

    @property
    def period(self) -> timedelta:
        return self._period

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def interval(self) -> float:
        """Wall seconds between ticks (0 = unpaced)."""
        return self._interval

    @property
    def loop(self) -> bool:
        return self._loop

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def bar_count(self) -> int:
        """Distinct timestamps (ticks) per lap."""
        return self._n

    @property
    def start(self) -> datetime:
        """Time of the first tick of the data (lap 0), warmup included."""
        return self._close_dt[0]

    @property
    def end(self) -> datetime:
        """Time of the last tick of lap 0."""
        return self._close_dt[-1]

    @property
    def last_time(self) -> datetime | None:
        """Time of the last tick returned by :meth:`next_tick`: pass it as ``start_after`` to
        resume a replay later."""
        return self._last_time

    @property
    def remaining(self) -> int | None:
        """Ticks :meth:`next_tick` will still return (None when looping)."""
        if self._loop:
            return None
        return 0 if self._closed else max(0, self._n - self._cursor)

    def tick_times(self) -> list[datetime]:
        """The time of every tick of lap 0 (warmup included), in order."""
        return list(self._close_dt)

    @property
    def cursor(self) -> int:
        """Index in :meth:`tick_times` of the tick :meth:`next_tick` returns next (lap 0)."""
        return self._cursor

    def skip_to(self, index: int) -> tuple[dict[str, Sequence[Bar]], dict[str, Snapshot]]:
        """Pass over the ticks from :attr:`cursor` up to ``index`` (excluded) without building
        them (event skipping in a backtest): returns their bars per symbol (of bars given as
        columns: a span built when read) and every symbol's latest snapshot after them.
        Unpaced, non-looping feeds only."""
        if self._loop or self._interval > 0:
            raise ValueError("only an unpaced replay that does not loop can skip ticks")
        start, stop = self._cursor, min(index, self._n)
        bars: dict[str, Sequence[Bar]] = {}
        if stop <= start:
            return bars, dict(self._snaps)
        for symbol, rows in self._series.items():
            idx = self._union_idx[symbol]
            if isinstance(idx, range):  # the only symbol: a bar at every tick
                first, last = start, stop
            else:
                first, last = bisect_left(idx, start), bisect_left(idx, stop)
            if last > first:
                bars[symbol] = rows.bars(first, last)
                self._snaps[symbol] = self._snapshot(symbol, 0, idx[last - 1])
        self._cursor = stop
        self._last_time = self._close_dt[stop - 1]
        return bars, dict(self._snaps)

    def taken_bars(self, tick: Tick) -> dict[str, Sequence[Bar]] | None:
        """The bars of ``tick`` as one-bar spans of their sources (as :meth:`skip_to` gives
        them: the price history keeps a replay's bars as positions) when it is the tick
        :meth:`take` returned last, in lap 0, of bars given as columns; None otherwise (read
        its bars: a list's are built already)."""
        if tick is not self._taken or self._cursor > self._n or not self._columnar:
            return None
        i = self._cursor - 1
        spans: dict[str, Sequence[Bar]] = {}
        for symbol, rows in self._series.items():
            k = self._at[symbol][i]
            if k >= 0:
                spans[symbol] = BarSpan(rows, k, k + 1)
        return spans

    def symbol_bars(self, symbol: str) -> Sequence[Bar]:
        """``symbol``'s bars in lap 0, in time order (as given: a list or columns)."""
        return self._series[symbol].source

    def bar_series(self, symbol: str) -> tuple[Sequence[int], list[Decimal], np.ndarray]:
        """``symbol``'s bars in lap 0: the index in :meth:`tick_times` of each, its close, and
        the closes as floats (``float`` of each close). Read-only."""
        rows = self._series[symbol]
        return self._union_idx[symbol], rows.closes, rows.floats

    def set_speed(self, speed: float) -> None:
        """Change the pace (market seconds per wall second; 0 or inf = unpaced)."""
        if math.isnan(speed) or speed < 0:
            raise ValueError(f"speed must be >= 0 (0 or inf = as fast as possible), got {speed}")
        self._speed = speed
        unpaced = speed == 0 or math.isinf(speed)
        self._interval = 0.0 if unpaced else self._period.total_seconds() / speed
        self._origin = None  # re-anchor: the next tick is due at once

    # ------------------------------------------------------------------ internals

    def _delay(self, now: float) -> float:
        """Seconds to wait before emitting the next tick, given the monotonic time ``now``."""
        interval = self._interval
        if interval <= 0:
            return 0.0
        if self._origin is None:
            self._origin, self._scheduled = now, 0
        due = self._origin + self._scheduled * interval
        if now - due > max(1.0, 4 * interval):  # far behind (consumer paused): re-anchor
            self._origin, self._scheduled = now, 0
            return 0.0
        return max(0.0, due - now)

    async def _wait(self, delay: float) -> None:
        self._wake = wake = asyncio.Event()  # fresh per wait: never bound to an old event loop
        try:
            with suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=delay)
        finally:
            self._wake = None

    def _first_after(self, after: datetime) -> int:
        """Virtual index of the first tick whose time is strictly after ``after``."""
        if after.tzinfo is None:
            after = after.replace(tzinfo=UTC)
        x = _us(after)
        first_close = int(self._close_us[0])
        if x < first_close:
            return 0
        lap = (x - first_close) // self._lap_us
        i = int(np.searchsorted(self._close_us, x - lap * self._lap_us, side="right"))
        return lap * self._n + i  # i == n means the first tick of the next lap

    def _change(self, symbol: str, lap: int, i: int, close: Decimal) -> Decimal | None:
        rows = self._series[symbol]
        opens = rows.opens
        target = self._times_us[i] - _DAY_US
        first = opens[0]
        if target < first:
            if lap == 0:
                return None
            laps_back = (first - target + self._lap_us - 1) // self._lap_us
            if laps_back > lap:
                return None
            target += laps_back * self._lap_us
        before = rows.closes[bisect_right(opens, target) - 1]
        if before <= ZERO:
            return None
        return (close / before - _ONE) * _HUNDRED

    def _snapshot(self, symbol: str, lap: int, i: int) -> Snapshot:
        close = self._series[symbol].closes[self._at[symbol][i]]
        when = self._close_dt[i] + self._lap * lap if lap else self._close_dt[i]
        return Snapshot(symbol, when, close, self._change(symbol, lap, i, close))

    def _snapshots_before(self, v: int) -> dict[str, Snapshot]:
        """Each symbol's latest snapshot before virtual index ``v`` (start state for a cursor)."""
        snaps: dict[str, Snapshot] = {}
        if v <= 0:
            return snaps
        lap, i = divmod(v - 1, self._n)
        for symbol in self._symbols:
            idx = self._union_idx[symbol]
            k = bisect_right(idx, i) - 1
            if k >= 0:
                snaps[symbol] = self._snapshot(symbol, lap, idx[k])
            elif lap > 0:
                snaps[symbol] = self._snapshot(symbol, lap - 1, idx[-1])
        return snaps

    def _build(self, v: int, snaps: dict[str, Snapshot], *, bars: bool = True) -> Tick:
        """The tick at virtual index ``v`` (without its bars unless ``bars``); updates
        ``snaps`` (the running latest snapshots)."""
        lap, i = divmod(v, self._n)
        shift = self._lap * lap if lap else None
        now = self._close_dt[i] if shift is None else self._close_dt[i] + shift
        built: dict[str, Bar] = {}
        for symbol, rows in self._series.items():
            k = self._at[symbol][i]
            if k < 0:
                continue
            if not bars:
                close = rows.closes[k]  # the bar's close, as built
                snaps[symbol] = Snapshot(symbol, now, close, self._change(symbol, lap, i, close))
                continue
            bar = rows.bar(k)
            if shift is not None:  # a later lap: the bar moved on by whole laps
                bar = Bar(
                    symbol, bar.time + shift, bar.open, bar.high, bar.low, bar.close, bar.volume
                )
            built[symbol] = bar
            snaps[symbol] = Snapshot(
                symbol, now, bar.close, self._change(symbol, lap, i, bar.close)
            )
        return Tick(now, dict(snaps), built)


def replay_from_files(
    paths: str | Path | Iterable[str | Path] | Mapping[str, str | Path],
    *,
    max_price: Decimal = MAX_PRICE,
    **kwargs: Any,
) -> ReplayFeed:
    """Build a :class:`ReplayFeed` from OHLCV files (see :mod:`phantomex.market.loaders`).

    ``paths`` is a path, an iterable of paths (symbols inferred from the file names) or a mapping
    symbol -> path; a price at or above ``max_price`` makes its row bad. ``kwargs`` go to
    :class:`ReplayFeed`."""
    items: Iterable[tuple[str | None, str | Path]]
    if isinstance(paths, str | Path):
        items = [(None, paths)]
    elif isinstance(paths, Mapping):
        items = list(paths.items())
    else:
        items = [(None, p) for p in paths]
    data: dict[str, list[Bar]] = {}
    for symbol, path in items:
        bars = load_bars(path, symbol, max_price=max_price)
        name = bars[0].symbol
        if name in data:
            raise ValueError(f"{path}: symbol {name} given twice")
        data[name] = bars
    return ReplayFeed(data, **kwargs)


def replay_dataset(
    name: str = "demo",
    symbols: Iterable[str] | None = None,
    *,
    max_price: Decimal = MAX_PRICE,
    datasets: Path | None = None,
    **kwargs: Any,
) -> ReplayFeed:
    """A :class:`ReplayFeed` over a shipped or stored dataset (see
    :func:`loaders.load_dataset`)."""
    data = load_dataset(name, symbols, max_price=max_price, datasets=datasets)
    return ReplayFeed(data, **kwargs)
