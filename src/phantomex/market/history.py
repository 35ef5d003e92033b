"""Recorded candles for a replay that goes live: the stored dataset, downloaded where missing.

Candles come through the download machinery (:func:`phantomex.market.download.download`,
resumable: a download starts after the newest stored candle) into the Parquet
:class:`~phantomex.market.datastore.DataStore`, so a second session over the same dataset only
fetches what is new."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

import ccxt

from phantomex.domain.models import Bar
from phantomex.market.datastore import DataStore
from phantomex.market.download import DownloadError, download

__all__ = ["StoredHistory", "timeframe_of"]


def timeframe_of(period: timedelta) -> str:
    """A bar period as a ccxt timeframe: 1s, 5m, 1h, 1d."""
    seconds = int(period.total_seconds())
    if seconds <= 0 or timedelta(seconds=seconds) != period:
        raise ValueError(f"no timeframe for bars of {period}")
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class StoredHistory:
    """``dataset``'s ``timeframe`` candles of some symbols, downloaded from ``exchange`` (a ccxt
    exchange, already pointed at its URL) when not stored; no exchange = stored candles only."""

    def __init__(
        self,
        store: DataStore,
        dataset: str,
        timeframe: str,
        exchange: ccxt.Exchange | None,
        *,
        quote: str = "USDT",
    ) -> None:
        self.store, self.dataset, self.timeframe = store, dataset, timeframe
        self.exchange, self.quote = exchange, quote
        self.downloads = 0

    def load(self, symbols: Sequence[str], since: datetime) -> dict[str, list[Bar]]:
        """Each symbol's candles from ``since``, brought up to date first when an exchange is
        given (a symbol with none stored is downloaded from ``since``)."""
        if self.exchange is not None:
            self._download(symbols, since)
        return {s: [b for b in self._stored(s) if b.time >= since] for s in symbols}

    async def newer(self, symbols: Sequence[str], after: datetime) -> dict[str, list[Bar]]:
        """The candles recorded since the one opening at ``after`` (the newest are downloaded
        first)."""
        if self.exchange is None:
            return {}

        def fetch() -> dict[str, list[Bar]]:
            self._download(symbols, after)
            return {s: [b for b in self._stored(s) if b.time > after] for s in symbols}

        return await asyncio.to_thread(fetch)

    def _stored(self, symbol: str) -> list[Bar]:
        return self.store.load(self.dataset, symbol, self.timeframe)

    def _download(self, symbols: Sequence[str], since: datetime) -> None:
        assert self.exchange is not None
        for symbol in symbols:
            try:
                download(
                    self.exchange,
                    self.store,
                    self.dataset,
                    symbol,
                    timeframe=self.timeframe,
                    since=since,
                    quote=self.quote,
                )
            except DownloadError as exc:
                raise DownloadError(f"history of {symbol}: {exc}") from exc
            self.downloads += 1
