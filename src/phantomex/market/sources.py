"""Several market sources as one feed, and what the kernel and API read about them.

Several sources run together in a :class:`CompositeFeed`. The first source that lists a symbol
keeps its plain name; the same symbol from a later source is qualified with that source's name
in upper case (``BTC@COINGECKO``, ``BTC@CCXT:KRAKEN``). ``replay`` runs on its own recorded clock
and cannot be combined with live sources. Building the feed from the settings is
:mod:`phantomex.feeds`."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from phantomex.domain.models import Instrument, Snapshot, Tick
from phantomex.market.base import MarketFeed
from phantomex.market.health import SourceHealth

if TYPE_CHECKING:
    from phantomex.market.guard import Suspect

__all__ = [
    "CompositeFeed",
    "SourceError",
    "health_of",
    "restrict_to_source",
    "symbol_sources",
]

log = logging.getLogger(__name__)

RESTART_DELAY = 5.0  # seconds before a part that raised is asked again


class SourceError(ValueError):
    """A source spec that can't be built (unknown, not available, or badly combined)."""


def health_of(feed: MarketFeed) -> list[SourceHealth]:
    """The health records of a feed (a feed without any reports one that never updates)."""
    health = getattr(feed, "health", None)
    if callable(health):
        return list(health())
    return [SourceHealth(type(feed).__name__, symbols=sorted(feed.instruments))]


def symbol_sources(feed: MarketFeed) -> dict[str, str]:
    """Each symbol the feed trades -> the name of the source it comes from."""
    return {sym: h.source for h in health_of(feed) for sym in h.symbols}


def restrict_to_source(feed: MarketFeed, source: str, symbols: Sequence[str]) -> list[str]:
    """``symbols`` as the feed names them, each from ``source`` (``BTC`` is ``BTC@SOURCE`` when
    another source has the plain name); :class:`SourceError` when one is not there."""
    owners = symbol_sources(feed)
    source = source.strip().lower()
    if source not in owners.values():
        raise SourceError(f"unknown source {source!r}; running: {sorted(set(owners.values()))}")
    out = []
    for symbol in symbols:
        name = next(
            (n for n in (symbol, f"{symbol}@{source.upper()}") if owners.get(n) == source), None
        )
        if name is None:
            mine = sorted(s for s, o in owners.items() if o == source)
            raise SourceError(f"{symbol} is not a symbol of source {source!r}; it has {mine}")
        out.append(name)
    return out


class CompositeFeed:
    """Several feeds run concurrently and merged into one tick stream (see the module doc)."""

    def __init__(self, parts: Sequence[tuple[str, MarketFeed]]) -> None:
        if not parts:
            raise SourceError("a composite feed needs at least one source")
        self._parts = list(parts)
        self._names: list[dict[str, str]] = []  # per part: its symbol -> the merged name
        taken: set[str] = set()
        for source, feed in self._parts:
            names = {}
            for symbol in feed.instruments:
                name = symbol if symbol not in taken else f"{symbol}@{source.upper()}"
                taken.add(name)
                names[symbol] = name
            self._names.append(names)
        self._queue: asyncio.Queue[Tick | None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._running = 0
        self._last: datetime | None = None
        self._closed = False

    @property
    def instruments(self) -> dict[str, Instrument]:
        out = {}
        for (_, feed), names in zip(self._parts, self._names, strict=True):
            for symbol, inst in feed.instruments.items():
                out[names[symbol]] = dataclasses.replace(inst, symbol=names[symbol])
        return out

    def warmup(self) -> list[Tick]:
        """Every part's warm-up ticks, renamed, merged in time order (equal times merged)."""
        merged: dict[datetime, Tick] = {}
        for i, (_, feed) in enumerate(self._parts):
            for tick in feed.warmup():
                tick = self._rename(i, tick)
                old = merged.get(tick.time)
                if old is not None:
                    tick = Tick(
                        tick.time, {**old.snapshots, **tick.snapshots}, {**old.bars, **tick.bars}
                    )
                merged[tick.time] = tick
        return [merged[t] for t in sorted(merged)]

    async def next_tick(self) -> Tick | None:
        if self._closed:
            return None
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._running = len(self._parts)
            self._tasks = [
                asyncio.create_task(self._pump(i), name=f"feed-{source}")
                for i, (source, _) in enumerate(self._parts)
            ]
        while self._running and not self._closed:
            tick = await self._queue.get()
            if tick is None:
                continue  # a part ended (or close() woke us)
            when = tick.time
            if self._last is not None and when <= self._last:
                when = self._last + timedelta(microseconds=1)
            self._last = when
            return Tick(when, tick.snapshots, tick.bars)
        return None

    def close(self) -> None:
        self._closed = True
        for _, feed in self._parts:
            feed.close()
        for task in self._tasks:
            task.cancel()
        if self._queue is not None:
            self._queue.put_nowait(None)

    def resolutions(self) -> dict[str, Decimal]:
        """Settlement payouts of resolved prediction markets, by merged symbol."""
        out: dict[str, Decimal] = {}
        for (_, feed), names in zip(self._parts, self._names, strict=True):
            resolved = getattr(feed, "resolutions", None)
            if callable(resolved):
                out.update({names.get(s, s): payout for s, payout in resolved().items()})
        return out

    def health(self) -> list[SourceHealth]:
        out = []
        for (source, feed), names in zip(self._parts, self._names, strict=True):
            for record in health_of(feed):
                symbols = [names.get(s, s) for s in record.symbols]
                out.append(dataclasses.replace(record, source=source, symbols=symbols))
        return out

    async def _pump(self, i: int) -> None:
        """Move part ``i``'s ticks to the queue until it ends."""
        assert self._queue is not None
        source, feed = self._parts[i]
        try:
            while not self._closed:
                try:
                    tick = await feed.next_tick()
                except Exception:  # a broken part must not stop the others
                    log.exception("source %s failed; asking again in %ss", source, RESTART_DELAY)
                    await asyncio.sleep(RESTART_DELAY)
                    continue
                if tick is None:
                    break
                self._queue.put_nowait(self._rename(i, tick))
        finally:
            self._running -= 1
            with contextlib.suppress(RuntimeError):
                self._queue.put_nowait(None)

    def _rename(self, i: int, tick: Tick) -> Tick:
        names = self._names[i]
        if all(names.get(s, s) == s for s in (*tick.snapshots, *tick.bars)):
            return tick
        snaps = {
            names.get(s, s): dataclasses.replace(snap, symbol=names.get(s, s))
            for s, snap in tick.snapshots.items()
        }
        bars = {
            names.get(s, s): dataclasses.replace(bar, symbol=names.get(s, s))
            for s, bar in tick.bars.items()
        }
        return Tick(tick.time, snaps, bars)


def price_ages(
    prices: dict[str, Snapshot],
    symbols: Sequence[str],
    stale_after: float,
    now: datetime,
    suspects: Mapping[str, Suspect] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per symbol: last accepted price, its time, its age, whether it is older than
    ``stale_after``, and whether the price guard holds it as suspect (with why)."""
    suspects = suspects or {}
    out: dict[str, dict[str, Any]] = {}
    for sym in symbols:
        snap = prices.get(sym)
        suspect = suspects.get(sym)
        flag = {
            "suspect": suspect is not None,
            "suspect_detail": suspect.as_json() if suspect is not None else None,
        }
        if snap is None:
            out[sym] = {"price": None, "time": None, "age_seconds": None, "stale": True, **flag}
            continue
        age = (now - snap.time).total_seconds()
        out[sym] = {
            "price": str(snap.price),
            "time": snap.time.isoformat(),
            "age_seconds": age,
            "stale": age > stale_after,
            **flag,
        }
    return out


def sources_report(
    feed: MarketFeed,
    prices: dict[str, Snapshot],
    clock: datetime,
    wall: datetime,
    suspects: Mapping[str, Suspect] | None = None,
) -> list[dict[str, Any]]:
    """What ``GET /api/sources`` and ``phantomex sources`` show: each source's health (on the
    ``wall`` clock) and the age of each of its prices on the kernel's ``clock``, the clock the
    risk engine refuses stale prices by, with the symbols the price guard holds as suspect."""
    out = []
    for record in health_of(feed):
        row = record.as_dict(wall)
        row["prices"] = price_ages(
            prices, record.symbols, record.stale_after.total_seconds(), clock, suspects
        )
        out.append(row)
    return out
