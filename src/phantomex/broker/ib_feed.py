"""Prices of US stocks from the IB connection the ``ib-paper`` venue trades on.

Without a real-time subscription IB serves delayed data (market data type 3), about 15 minutes
old: each snapshot carries the time of the trade it shows, so the risk engine's and the venue's
staleness limits apply to it as to any price, and :attr:`IBFeed.delayed` says which symbols are
delayed. Instruments carry the exchange calendar, so agents are held outside market hours."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from phantomex.broker.ib_link import IBLink
from phantomex.domain.models import AssetClass, Instrument, Snapshot, Tick
from phantomex.domain.money import ONE

log = logging.getLogger(__name__)

__all__ = ["IBFeed"]


class IBFeed:
    def __init__(
        self,
        link: IBLink,
        symbols: list[str],
        *,
        interval_s: float = 60.0,
        delayed: bool = True,
        calendar: str = "XNYS",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.link, self.symbols = link, [s.upper() for s in symbols]
        self.interval_s, self.want_delayed, self.clock = interval_s, delayed, clock
        self._instruments = {
            s: Instrument(s, AssetClass.EQUITY, "USD", quantity_step=ONE, calendar=calendar)
            for s in self.symbols
        }
        #: symbol -> whether IB marked its last price delayed
        self.delayed: dict[str, bool] = {}

    @property
    def instruments(self) -> dict[str, Instrument]:
        return dict(self._instruments)

    def warmup(self) -> list[Tick]:
        return []

    async def next_tick(self) -> Tick | None:
        if self.interval_s:
            await asyncio.sleep(self.interval_s)
        return await asyncio.to_thread(self.poll)

    def poll(self) -> Tick:
        """One tick of the latest prices (a symbol without a trade yet is left out)."""
        try:
            quotes = self.link.quotes(self.symbols, self.want_delayed)
        except Exception as exc:  # the tick goes on without prices; they age and go stale
            log.warning("IB market data unavailable: %s", exc)
            quotes = {}
        for symbol, q in quotes.items():
            self.delayed[symbol] = q.delayed
        snaps = {s: Snapshot(s, q.time, q.price) for s, q in quotes.items()}
        return Tick(self.clock(), snaps)

    def close(self) -> None:
        """The link belongs to the venue's broker, which closes it."""
