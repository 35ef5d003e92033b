"""Replay, then live: one feed that replays recorded bars and hands over to a live source.

The same kernel and agents read one tick stream, so indicators, memory, open positions and
reflection notes carry over; only the feed behind the stream changes.

Stages
    1. **recorded**: the recorded bars from ``start`` on (with ``warmup_bars`` before it), as
       fast as the consumer takes them (an unpaced :class:`~phantomex.market.replay.ReplayFeed`).
       While it replays, the present moves on: when the recorded bars run out, ``newer`` is asked
       for the bars recorded since (a download of the newest candles), and the replay goes on
       over them, until a top-up brings nothing new (or ``max_top_ups`` is reached).
    2. **bridge**: the live source's own history (its ``warmup()``: the bars up to the moment it
       starts polling), from the first of its bars after the last recorded one. The hand-over
       of the data is here: a recorded bar at or after the live source's first bar is never
       replayed, and a live bar at or before the last replayed bar is never sent again.
    3. **live**: the live source's ticks, at wall time. Its first tick is the hand-over tick:
       the :class:`HandoverClock` switches from simulated (the replayed bars' close times) to
       wall time there. With ``live_for``, the feed ends once a live tick is that long after
       the hand-over.

Every bar the stream carries opens exactly one ``period`` after the symbol's previous one: a
bar at or before the previous one is dropped (no duplicate), and a later one is recorded in
:attr:`HandoverFeed.gaps` (and logged) so a gap is never silent. Tick times increase strictly
across the joins (a live tick no later than the last replayed one moves on by a microsecond).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from phantomex.domain.models import Bar, Instrument, Tick
from phantomex.market.base import MarketFeed
from phantomex.market.replay import ReplayFeed
from phantomex.serialize import iso

__all__ = ["Gap", "HandoverClock", "HandoverError", "HandoverFeed", "Part", "bar_period"]

log = logging.getLogger(__name__)

Newer = Callable[[datetime], Awaitable[Mapping[str, Sequence[Bar]]]]
Phase = Literal["replay", "live"]


class HandoverError(ValueError):
    """Recorded bars and a live source that cannot be joined (a message for the user)."""


def wall_now() -> datetime:
    return datetime.now(UTC)


def bar_period(feed: MarketFeed) -> timedelta:
    """The length of the bars a live source builds (CoinGecko's ``bar_seconds``, a ccxt
    source's timeframe)."""
    config = getattr(feed, "config", None)
    seconds = getattr(config, "bar_seconds", None)
    if isinstance(seconds, int):
        return timedelta(seconds=seconds)
    millis = getattr(feed, "timeframe_ms", None)
    if isinstance(millis, int):
        return timedelta(milliseconds=millis)
    raise HandoverError(f"{type(feed).__name__} builds no bars of a known length to hand over to")


class HandoverClock:
    """Simulated time (the latest replayed tick) until the hand-over, wall time after it."""

    def __init__(self, wall: Callable[[], datetime] = wall_now) -> None:
        self.wall = wall
        self.phase: Phase = "replay"
        self.simulated: datetime | None = None
        self.handed_over_at: datetime | None = None

    def now(self) -> datetime:
        if self.phase == "live" or self.simulated is None:
            return self.wall()
        return self.simulated

    def hand_over(self, at: datetime) -> None:
        self.phase, self.handed_over_at = "live", at


@dataclass
class Part:
    """One part of the stream: where its ticks came from, its first and last tick, counts."""

    source: str
    start: datetime | None = None
    end: datetime | None = None
    ticks: int = 0
    bars: int = 0

    def take(self, tick: Tick) -> None:
        self.start = self.start or tick.time
        self.end = tick.time
        self.ticks += 1
        self.bars += len(tick.bars)

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "start": iso(self.start) if self.start else None,
            "end": iso(self.end) if self.end else None,
            "ticks": self.ticks,
            "bars": self.bars,
        }


@dataclass(frozen=True)
class Gap:
    symbol: str
    after: datetime  # open time of the last bar before the gap
    next: datetime  # open time of the first bar after it


@dataclass
class _Joins:
    """The latest bar open time per symbol, and the gaps and duplicates seen at the joins."""

    period: timedelta
    last: dict[str, datetime] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    duplicates: int = 0

    def keep(self, bars: Mapping[str, Bar]) -> dict[str, Bar]:
        out = {}
        for symbol, bar in bars.items():
            last = self.last.get(symbol)
            if last is not None and bar.time <= last:
                self.duplicates += 1
                continue
            if last is not None and bar.time > last + self.period:
                self.gaps.append(Gap(symbol, last, bar.time))
                log.warning("hand-over: no %s bars between %s and %s", symbol, last, bar.time)
            self.last[symbol] = bar.time
            out[symbol] = bar
        return out


class HandoverFeed:
    """Recorded bars, then a live source, as one :class:`MarketFeed` (see the module doc)."""

    def __init__(
        self,
        recorded: Mapping[str, Sequence[Bar]],
        live: MarketFeed,
        *,
        live_name: str,
        start: datetime,
        period: timedelta,
        warmup_bars: int = 0,
        newer: Newer | None = None,
        live_for: timedelta | None = None,
        wall: Callable[[], datetime] = wall_now,
        max_top_ups: int = 5,
    ) -> None:
        self.symbols = list(recorded)
        unknown = [s for s in self.symbols if s not in live.instruments]
        if unknown:
            raise HandoverError(f"the live source {live_name} has no {', '.join(unknown)}")
        self.live, self.live_name, self.period = live, live_name, period
        self.clock = HandoverClock(wall)
        self.live_for = live_for
        self.stage: Literal["recorded", "bridge", "live", "ended"] = "recorded"
        self.top_ups = 0
        self.parts = {"replay": Part("recorded"), "live": Part(live_name)}
        self.bridge_bars = 0
        self._recorded = {s: list(v) for s, v in recorded.items()}
        self._newer, self._max_top_ups = newer, max_top_ups
        self._replay = ReplayFeed(
            self._recorded, period=period, warmup_bars=warmup_bars, start_after=start
        )
        self._joins = _Joins(period)
        self._bridge: list[Tick] = []
        self._last_time: datetime | None = None
        self._closed = False

    # ------------------------------------------------------------------ MarketFeed protocol

    @property
    def instruments(self) -> dict[str, Instrument]:
        live = self.live.instruments
        return {s: live[s] for s in self.symbols}

    def warmup(self) -> list[Tick]:
        ticks = self._replay.warmup()
        for tick in ticks:
            self._joins.keep(tick.bars)
        return ticks

    async def next_tick(self) -> Tick | None:
        while not self._closed:
            if self.stage == "recorded":
                tick = await self._replay.next_tick()
                if tick is not None:
                    return self._emit(tick, "replay")
                if not await self._top_up():
                    self._bridge = await asyncio.to_thread(self._bridge_ticks)
                    self.stage = "bridge"
            elif self.stage == "bridge":
                if self._bridge:
                    tick = self._bridge.pop(0)
                    self.bridge_bars += len(tick.bars)
                    return self._emit(tick, "replay")
                self.stage = "live"
            elif self.stage == "live":
                tick = await self.live.next_tick()
                if tick is None or self._closed:
                    break
                tick = self._emit(tick, "live")
                if self.clock.handed_over_at is None:
                    self.clock.hand_over(tick.time)
                if self.end is not None and tick.time >= self.end:
                    self.stage = "ended"
                return tick
            else:
                break
        self.close()  # the live source's connections go with it
        return None

    def close(self) -> None:
        self._closed = True
        self._replay.close()
        self.live.close()

    def health(self) -> list[Any]:
        health = getattr(self.live, "health", None)
        return list(health()) if callable(health) else []

    # ------------------------------------------------------------------ the hand-over

    @property
    def end(self) -> datetime | None:
        """When the live part ends (known from the hand-over on; None without ``live_for``)."""
        at = self.clock.handed_over_at
        return at + self.live_for if at is not None and self.live_for is not None else None

    @property
    def gaps(self) -> list[Gap]:
        return list(self._joins.gaps)

    @property
    def duplicates(self) -> int:
        """Bars dropped because an earlier part already carried their open time."""
        return self._joins.duplicates

    def last_open(self, symbol: str) -> datetime | None:
        return self._joins.last.get(symbol)

    def _emit(self, tick: Tick, part: Phase) -> Tick:
        when = tick.time
        if self._last_time is not None and when <= self._last_time:
            when = self._last_time + timedelta(microseconds=1)  # the clock never stands still
        self._last_time = when
        tick = Tick(when, dict(tick.snapshots), self._joins.keep(tick.bars))
        if part == "replay":
            self.clock.simulated = tick.time
        self.parts[part].take(tick)
        return tick

    async def _top_up(self) -> bool:
        """Ask for the bars recorded since the last replayed one; True when the replay goes on."""
        if self._newer is None or self.top_ups >= self._max_top_ups:
            return False
        self.top_ups += 1
        after = max(self._joins.last.values(), default=None)
        if after is None:
            return False
        fresh = await self._newer(after)
        added = False
        for symbol, bars in fresh.items():
            if symbol not in self._recorded:
                continue
            last = self._joins.last.get(symbol, after)
            new = [b for b in bars if b.time > last]
            if new:
                self._recorded[symbol].extend(sorted(new, key=lambda b: b.time))
                added = True
        if not added:
            return False
        last_tick = self._replay.last_time
        self._replay = ReplayFeed(self._recorded, period=self.period, start_after=last_tick)
        return self._replay.remaining != 0

    def _bridge_ticks(self) -> list[Tick]:
        """The live source's history after the last replayed bar of each symbol."""
        out = []
        for tick in self.live.warmup():
            bars = {
                s: b
                for s, b in tick.bars.items()
                if s in self._recorded and b.time > self._joins.last.get(s, b.time)
            }
            if bars:
                snaps = {s: tick.snapshots[s] for s in bars if s in tick.snapshots}
                out.append(Tick(tick.time, snaps, bars))
        return out
