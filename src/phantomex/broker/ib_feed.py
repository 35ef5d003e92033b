"""Prices of US stocks from the IB connection the ``ib-paper`` venue trades on (source ``ib``).

Without a real-time subscription IB serves delayed data (market data type 3; 4 when the market is
closed and the last delayed price is frozen), about 15 minutes old: each snapshot carries the time
of the trade it shows, :attr:`IBFeed.market_data_type` and :attr:`IBFeed.delayed` say which
symbols are delayed, and a price older than ``max_price_age_s`` is left out of the tick (reported
in the source's health), so nothing trades on it. Instruments carry the exchange calendar, so
agents are held outside market hours."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from phantomex.broker.ib_link import IBLink, shared_link
from phantomex.broker.ib_paper import IBUnavailable
from phantomex.broker.ib_settings import IBSettings
from phantomex.domain.models import AssetClass, Instrument, Snapshot, Tick
from phantomex.domain.money import ONE
from phantomex.market.health import SourceHealth

log = logging.getLogger(__name__)

__all__ = ["DELAYED_TYPES", "IBFeed", "ib_feed_from_settings"]

#: TWS market data types of delayed data: 3 delayed, 4 delayed and frozen (market closed).
DELAYED_TYPES = frozenset({3, 4})


class IBFeed:
    def __init__(
        self,
        link: IBLink,
        symbols: list[str],
        *,
        interval_s: float = 60.0,
        delayed: bool = True,
        calendar: str = "XNYS",
        max_price_age_s: float = 1200.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        owns_link: bool = False,
    ) -> None:
        self.link, self.symbols = link, [s.upper() for s in symbols]
        self.interval_s, self.want_delayed, self.clock = interval_s, delayed, clock
        self.max_age = timedelta(seconds=max_price_age_s)
        self._owns_link = owns_link
        self._instruments = {
            s: Instrument(s, AssetClass.EQUITY, "USD", quantity_step=ONE, calendar=calendar)
            for s in self.symbols
        }
        #: symbol -> the market data type (1-4) of its last price
        self.market_data_type: dict[str, int] = {}
        self._health = SourceHealth("ib", stale_after=self.max_age, symbols=list(self.symbols))

    @property
    def instruments(self) -> dict[str, Instrument]:
        return dict(self._instruments)

    @property
    def delayed(self) -> dict[str, bool]:
        """Symbol -> whether IB marked its last price delayed (type 3 or 4)."""
        return {s: t in DELAYED_TYPES for s, t in self.market_data_type.items()}

    def health(self) -> list[SourceHealth]:
        return [self._health]

    def warmup(self) -> list[Tick]:
        return []

    async def next_tick(self) -> Tick | None:
        if self.interval_s:
            await asyncio.sleep(self.interval_s)
        return await asyncio.to_thread(self.poll)

    def poll(self) -> Tick:
        """One tick of the latest prices; a symbol without a trade yet, or whose last price is
        older than ``max_price_age_s``, is left out."""
        now = self.clock()
        try:
            quotes = self.link.quotes(self.symbols, self.want_delayed)
        except Exception as exc:  # the tick goes on without prices; they age and go stale
            log.warning("IB market data unavailable: %s", exc)
            self._health.failed(now, f"{type(exc).__name__}: {str(exc)[:300]}")
            return Tick(now, {})
        snaps, stale = {}, []
        for symbol, q in quotes.items():
            if self.market_data_type.get(symbol) != q.data_type and q.data_type in DELAYED_TYPES:
                log.info("IB serves delayed data for %s (market data type %d)", symbol, q.data_type)
            self.market_data_type[symbol] = q.data_type
            if now - q.time > self.max_age:
                stale.append(f"{symbol} ({(now - q.time).total_seconds():.0f}s old)")
                continue
            snaps[symbol] = Snapshot(symbol, q.time, q.price)
        if stale:
            limit = self.max_age.total_seconds()
            self._health.failed(
                now, f"stale prices left out: {', '.join(stale)}; limit {limit:.0f}s"
            )
        if snaps:
            self._health.ok(max(s.time for s in snaps.values()))
        return Tick(now, snaps)

    def close(self) -> None:
        """Releases the link when the feed opened it (a link lent by a broker is its own)."""
        if self._owns_link:
            self._owns_link = False
            self.link.close()


def ib_feed_from_settings(settings: IBSettings, symbols: list[str] | None = None) -> IBFeed:
    """The ``ib`` source: ``settings.symbols`` (or ``symbols``) on the connection of the
    ``[exchange.ib]`` settings - shared with the ``ib-paper`` venue when it is open.
    IBUnavailable when the account is not a paper account (or ib_async is missing)."""
    wanted = symbols or settings.symbols
    if not wanted:
        raise ValueError("no symbols: set [exchange.ib] symbols, e.g. ['AAPL'], or use ib:AAPL")
    link = shared_link(settings)
    try:
        link.connect()
    except IBUnavailable:  # not a paper account, or no ib_async: no prices from it
        link.close()
        raise
    except Exception as exc:
        log.warning("IB Gateway not reachable yet (%s); the ib source connects on first use", exc)
    return IBFeed(
        link,
        wanted,
        interval_s=settings.poll_seconds,
        delayed=settings.market_data == "delayed",
        calendar=settings.calendar,
        max_price_age_s=settings.max_price_age_s,
        owns_link=True,
    )
