"""A live market feed from any ccxt exchange: tickers → snapshots, closed candles → bars.

Tickers are polled with ``fetch_tickers`` (ccxt's own rate limiter paces the requests), or
streamed with ccxt.pro's ``watch_tickers`` where the exchange has it; a failing stream falls back
to polling. Candles are fetched once per closed timeframe; the still-forming candle never becomes
a bar. Warm-up history comes from ``fetch_ohlcv`` through a blocking client, because
:meth:`MarketFeed.warmup` is synchronous and runs once before the kernel starts trading."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import ccxt

from phantomex.domain.models import Bar, Instrument, Snapshot, Tick
from phantomex.market import ccxt_client
from phantomex.market.ccxt_parse import BadData, closed_bars, raw_last_key, snapshot
from phantomex.market.health import SourceHealth
from phantomex.market.symbols import to_pair

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 300.0


class CcxtFeed:
    """The MarketFeed of one ccxt exchange for ``symbols`` (base assets) quoted in ``quote``."""

    def __init__(
        self,
        exchange: str = "binance",
        symbols: list[str] | None = None,
        *,
        quote: str = "USDT",
        timeframe: str = "1m",
        poll_seconds: float = 10.0,
        use_websocket: bool | None = None,
        warmup_bars: int = 60,
        sandbox: bool = False,
        api_urls: dict[str, str] | None = None,
        timeout_ms: int = ccxt_client.DEFAULT_TIMEOUT_MS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.exchange_id = ccxt_client.check_exchange_id(exchange)
        if not symbols:
            raise ValueError("a ccxt feed needs at least one symbol")
        self.quote = quote.upper()
        self.pairs = {to_pair(s, self.quote): to_pair(s, self.quote).split("/")[0] for s in symbols}
        self.timeframe = timeframe
        self.timeframe_ms = int(ccxt.Exchange.parse_timeframe(timeframe) * 1000)
        self.poll_seconds = poll_seconds
        self.warmup_bars = warmup_bars
        self._clock = clock
        self._client_args: dict[str, Any] = {
            "sandbox": sandbox,
            "api_urls": api_urls,
            "timeout_ms": timeout_ms,
        }
        if use_websocket is None:
            use_websocket = ccxt_client.has_watch_tickers(self.exchange_id)
        self.websocket = use_websocket
        self._exchange: Any = None
        self._raw_last = raw_last_key(self.exchange_id)
        self._health = SourceHealth(
            f"ccxt:{self.exchange_id}",
            stale_after=timedelta(seconds=max(3 * poll_seconds, 60)),
            symbols=sorted(self.pairs.values()),
        )
        self._last_bar_ms: dict[str, int] = {}
        self._next_candles_ms = 0
        self._last_tick: datetime | None = None
        self._closed = asyncio.Event()
        self.backoff_seconds = 0.0

    # -- the MarketFeed port ----------------------------------------------------------------------
    @property
    def instruments(self) -> dict[str, Instrument]:
        return {s: Instrument(s, quote=self.quote) for s in self.pairs.values()}

    def warmup(self) -> list[Tick]:
        """The last ``warmup_bars`` closed candles of each symbol, one tick per candle close.
        A failing request is recorded in the health and leaves that symbol without history."""
        if self.warmup_bars <= 0:
            return []
        client = ccxt_client.sync_client(self.exchange_id, **self._client_args)
        now = self._now_ms()
        by_close: dict[int, dict[str, Bar]] = {}
        for pair, symbol in self.pairs.items():
            try:
                rows = client.fetch_ohlcv(pair, self.timeframe, limit=self.warmup_bars + 1)
            except ccxt.BaseError as exc:
                self._failed(f"warm-up {pair}: {_describe(exc)}")
                continue
            bars, problems = closed_bars(symbol, rows, self.timeframe_ms, now, None)
            self._report(problems)
            for bar in bars:
                by_close.setdefault(self._close_ms(bar), {})[symbol] = bar
                self._last_bar_ms[symbol] = int(bar.time.timestamp() * 1000)
        ticks = []
        snaps: dict[str, Snapshot] = {}
        for close_ms in sorted(by_close):
            when = datetime.fromtimestamp(close_ms / 1000, UTC)
            closed = by_close[close_ms]
            snaps.update({s: Snapshot(s, when, b.close) for s, b in closed.items()})
            ticks.append(Tick(time=when, snapshots=dict(snaps), bars=closed))
        return ticks

    async def next_tick(self) -> Tick | None:
        """The next usable tick; waits (polling interval, or back-off after errors) in between."""
        if self._last_tick is not None and not self.websocket:
            await self._sleep(self.poll_seconds)
        while not self._closed.is_set():
            tick = await self.poll()
            if tick is not None:
                return tick
            await self._sleep(self.backoff_seconds or self.poll_seconds)
        return None

    def close(self) -> None:
        """End the feed; the client's connections are closed by :meth:`aclose` (or the next
        :meth:`next_tick` call's loop)."""
        self._closed.set()
        if self._exchange is not None:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to clean up
                asyncio.get_running_loop().create_task(self.aclose())

    async def aclose(self) -> None:
        exchange, self._exchange = self._exchange, None
        if exchange is not None:
            await exchange.close()

    def health(self) -> list[SourceHealth]:
        return [self._health]

    # -- one round --------------------------------------------------------------------------------
    async def poll(self) -> Tick | None:
        """One round of requests: tickers (and candles when one has closed). None when nothing
        usable came back; the reason is in :meth:`health`."""
        exchange = self._client()
        try:
            tickers = await self._tickers(exchange)
            bars = await self._candles(exchange)
        except Exception as exc:  # garbage can also break ccxt's own parsing
            self._backoff(exc, exchange)
            return None
        now_ms = self._now_ms()
        snaps: dict[str, Snapshot] = {}
        problems = []
        for pair, symbol in self.pairs.items():
            if pair not in tickers:
                problems.append(f"no ticker for {pair}")
                continue
            try:
                snaps[symbol] = snapshot(symbol, tickers[pair], now_ms, self._raw_last)
            except BadData as exc:
                problems.append(str(exc))
        self._report(problems)
        if not snaps and not bars:
            self._failed("no usable prices in the answer")
            return None
        self.backoff_seconds = 0.0
        self._health.ok(self._now())
        return self._tick(snaps, bars)

    async def _tickers(self, exchange: Any) -> dict[str, Any]:
        pairs = list(self.pairs)
        if self.websocket:
            try:
                return dict(await exchange.watch_tickers(pairs))
            except (ccxt.NotSupported, ccxt.NetworkError) as exc:
                log.warning("%s: ticker stream failed (%s); polling instead", exchange.id, exc)
                self._failed(f"websocket: {_describe(exc)}; falling back to polling")
                self.websocket = False
        answer = await exchange.fetch_tickers(pairs)
        return dict(answer) if isinstance(answer, dict) else {}

    async def _candles(self, exchange: Any) -> dict[str, Bar]:
        """Newly closed candles, fetched only when the timeframe has rolled over."""
        now = self._now_ms()
        if now < self._next_candles_ms:
            return {}
        out: dict[str, Bar] = {}
        for pair, symbol in self.pairs.items():
            rows = await exchange.fetch_ohlcv(pair, self.timeframe, limit=3)
            bars, problems = closed_bars(
                symbol, rows, self.timeframe_ms, now, self._last_bar_ms.get(symbol)
            )
            self._report(problems)
            if bars:
                out[symbol] = bars[-1]  # a tick carries one bar per symbol: the latest closed
                self._last_bar_ms[symbol] = int(bars[-1].time.timestamp() * 1000)
        self._next_candles_ms = (now // self.timeframe_ms + 1) * self.timeframe_ms
        return out

    # -- helpers ----------------------------------------------------------------------------------
    def _client(self) -> Any:
        if self._exchange is None:
            self._exchange = ccxt_client.async_client(
                self.exchange_id, websocket=self.websocket, **self._client_args
            )
        return self._exchange

    def _tick(self, snaps: dict[str, Snapshot], bars: dict[str, Bar]) -> Tick:
        when = self._now()
        if self._last_tick is not None and when <= self._last_tick:
            when = self._last_tick + timedelta(microseconds=1)
        self._last_tick = when
        return Tick(time=when, snapshots=snaps, bars=bars)

    def _backoff(self, exc: Exception, exchange: Any) -> None:
        """Record the failure; wait longer after rate limits (honouring Retry-After) and errors."""
        self._failed(_describe(exc))
        retry_after = _retry_after(getattr(exchange, "last_response_headers", None))
        doubled = max(self.poll_seconds, 1.0) * 2 ** min(self._health.consecutive_errors, 8)
        if isinstance(exc, ccxt.DDoSProtection | ccxt.RateLimitExceeded):
            self.backoff_seconds = min(max(retry_after or 0.0, doubled), MAX_BACKOFF_SECONDS)
        else:
            self.backoff_seconds = min(doubled, MAX_BACKOFF_SECONDS)

    def _failed(self, error: str) -> None:
        log.warning("%s: %s", self._health.source, error)
        self._health.failed(self._now(), error)

    def _report(self, problems: list[str]) -> None:
        for problem in problems:
            self._failed(problem)

    def _close_ms(self, bar: Bar) -> int:
        return int(bar.time.timestamp() * 1000) + self.timeframe_ms

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closed.wait(), timeout=seconds)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"


def _retry_after(headers: Any) -> float | None:
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if str(key).lower() == "retry-after":
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


def ccxt_feed_from_spec(spec: str, symbols: list[str], **options: Any) -> CcxtFeed:
    """``ccxt:binance`` (or ``binance``) → a CcxtFeed for ``symbols``; options go to CcxtFeed."""
    name = spec.split(":", 1)[1] if spec.startswith("ccxt:") else spec
    return CcxtFeed(name, symbols, **options)
