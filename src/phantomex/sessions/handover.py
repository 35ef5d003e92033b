"""Replay-then-live sessions: the hand-over feed of a session, and what its window records.

The session's kernel and agents stay the same from the first replayed bar to the end of the
live part; only the feed hands over (:mod:`phantomex.market.handover`). The history comes from
the stored dataset, downloaded through the download machinery where missing
(:mod:`phantomex.market.history`), in the live source's bar length."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import ccxt

from phantomex.market.base import MarketFeed
from phantomex.market.datastore import DataStore
from phantomex.market.download import DownloadError
from phantomex.market.handover import HandoverFeed, bar_period, wall_now
from phantomex.market.history import StoredHistory, timeframe_of
from phantomex.serialize import iso
from phantomex.sessions.spec import SessionError, SessionSpec

__all__ = ["LiveSources", "handover_feed", "window_parts"]


@dataclass(frozen=True)
class LiveSources:
    """How a session reaches the outside when its replay goes live."""

    #: (source spec such as ``coingecko`` or ``ccxt:binance``, symbols) -> a new live feed
    live: Callable[[str, list[str]], MarketFeed]
    #: where downloaded history is kept
    datasets: DataStore
    #: a ccxt exchange id -> the exchange history is downloaded from (None: stored data only)
    exchange: Callable[[str], ccxt.Exchange | None]
    #: the wall clock the live part runs on
    wall: Callable[[], datetime] = wall_now


async def handover_feed(spec: SessionSpec, sources: LiveSources | None) -> HandoverFeed:
    """The feed of a replay-then-live session: recorded bars from ``replay.start`` (downloaded
    when not stored), then ``then_live.source``."""
    window, goes_live = spec.replay, spec.then_live
    assert window is not None and goes_live is not None
    if sources is None:
        raise SessionError("this server cannot start live sources for sessions", field="then_live")
    try:
        live = sources.live(goes_live.source, list(spec.symbols))
    except ValueError as exc:
        raise SessionError(str(exc), field="then_live.source") from None
    try:
        period = bar_period(live)
        history = StoredHistory(
            sources.datasets,
            window.dataset,
            timeframe_of(period),
            sources.exchange(goes_live.exchange),
            quote=goes_live.quote,
        )
        since = window.start - period * spec.warmup_bars
        recorded = await asyncio.to_thread(history.load, spec.symbols, since)
        empty = [s for s, bars in recorded.items() if not any(b.time >= window.start for b in bars)]
        if empty:
            raise SessionError(
                f"no {history.timeframe} bars of {', '.join(empty)} from {iso(window.start)} in "
                f"dataset {window.dataset!r}",
                field="replay",
            )
        await asyncio.to_thread(lambda: live.instruments)  # may resolve the coins over HTTP
        return HandoverFeed(
            recorded,
            live,
            live_name=goes_live.source,
            start=window.start,
            period=period,
            warmup_bars=spec.warmup_bars,
            newer=functools.partial(history.newer, list(spec.symbols)),
            live_for=goes_live.live_duration,
            wall=sources.wall,
        )
    except SessionError:
        live.close()
        raise
    except (ValueError, DownloadError) as exc:
        live.close()
        raise SessionError(str(exc), field="then_live") from None


def window_parts(feed: HandoverFeed) -> dict[str, Any]:
    """What a session's window records about the hand-over: its replay and live parts, when
    the clock switched to wall time, and any gap or duplicate bar at the joins."""
    at = feed.clock.handed_over_at
    replay, live = (p.as_json() for p in feed.parts.values())
    replay["bridge_bars"] = feed.bridge_bars
    return {
        "parts": [replay, live],
        "handover_at": iso(at) if at is not None else None,
        "bridge_bars": feed.bridge_bars,
        "top_ups": feed.top_ups,
        "gaps": [
            {"symbol": g.symbol, "after": iso(g.after), "next": iso(g.next)} for g in feed.gaps
        ],
        "duplicates": feed.duplicates,
    }
