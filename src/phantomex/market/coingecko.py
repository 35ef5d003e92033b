"""Live prices from CoinGecko's ``/simple/price`` as a :class:`~phantomex.market.base.MarketFeed`.

Coins
    ``coins`` lists symbols (``BTC``), CoinGecko ids (``bitcoin``) or ``id=SYMBOL`` pairs. Empty
    means the top 10 by market cap from ``/coins/markets`` (a built-in top 10 when that fails).
    Symbols are the CoinGecko symbols upper-cased; a second coin with the same symbol is dropped.

Ticks
    A tick comes every ``poll_seconds`` at wall-clock time, also while the API fails, so the
    kernel's clock keeps moving and prices age. A request is made only when no back-off is
    pending. A tick carries only the snapshots that changed: a coin's snapshot ``time`` is its
    ``last_updated_at``, so an unchanged or missing coin keeps its last price, which ages until the
    risk engine (``max_price_age_seconds``) refuses to trade on it. Resting orders never fill on
    an old price because old prices are not re-sent.

Errors
    HTTP 429 waits for ``Retry-After`` (the body may be HTML: it is never trusted); other errors,
    timeouts and empty answers back off exponentially (``2^n x poll_seconds``, at most
    ``max_backoff_seconds``). Values that are not finite positive numbers (null, strings, NaN,
    negative) never become a price; a coin without a usable ``last_updated_at`` is skipped too.

Bars
    Brains read bars, so the feed builds ``bar_seconds`` OHLC bars (default 5 minutes, the grid of
    ``market_chart?days=1``) from the price points: a bar is emitted once a point of a later bar
    arrives. Volume is 0 (CoinGecko gives only a rolling 24-hour volume). ``warmup()`` builds the
    same bars from ``/coins/{id}/market_chart`` (``warmup_days``; 0 turns it off), one request per
    coin at start-up; a coin whose history fails starts without it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from phantomex.domain.inputs import HttpUrl
from phantomex.domain.models import Bar, Instrument, Snapshot, Tick
from phantomex.market.fetch import FeedError, json_or_error, transport_error
from phantomex.market.health import SourceHealth

__all__ = ["DEMO_BASE_URL", "PRO_BASE_URL", "TOP10", "CoinGeckoConfig", "CoinGeckoFeed"]

log = logging.getLogger(__name__)

DEMO_BASE_URL = "https://api.coingecko.com/api/v3"
PRO_BASE_URL = "https://pro-api.coingecko.com/api/v3"
TOP10 = {  # the fallback top 10 by market cap (id -> symbol) when /coins/markets can't be read
    "bitcoin": "BTC",
    "ethereum": "ETH",
    "tether": "USDT",
    "ripple": "XRP",
    "binancecoin": "BNB",
    "solana": "SOL",
    "usd-coin": "USDC",
    "dogecoin": "DOGE",
    "tron": "TRX",
    "cardano": "ADA",
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ZERO = Decimal(0)


class CoinGeckoConfig(BaseModel):
    """``[coingecko]`` in phantomex.toml (or ``PHANTOMEX_COINGECKO`` as JSON)."""

    model_config = ConfigDict(extra="forbid")

    coins: list[str] = Field(
        default_factory=list,
        description="Symbols (BTC), ids (bitcoin) or id=SYMBOL; empty = top 10 by market cap.",
    )
    api_key: SecretStr | None = Field(None, description="Demo or pro API key (never shown).")
    plan: Literal["demo", "pro"] = Field("demo", description="Which key header and base URL.")
    base_url: HttpUrl | None = Field(None, description="Overrides the plan's base URL.")
    poll_seconds: float = Field(60.0, gt=0, description="Seconds between price requests.")
    timeout_seconds: float = Field(10.0, gt=0, description="Per-request timeout.")
    max_backoff_seconds: float = Field(600.0, gt=0, description="Longest wait after errors.")
    bar_seconds: int = Field(300, ge=1, description="Length of the bars built from prices.")
    warmup_days: int = Field(1, ge=0, le=365, description="History loaded at start (0 = none).")
    stale_after_seconds: float = Field(
        180.0, gt=0, description="The source shows as stale after this long without an answer."
    )


@dataclass(frozen=True, slots=True)
class Coin:
    id: str
    symbol: str


def resolve_coins(wanted: list[str], known: dict[str, str]) -> list[Coin]:
    """Coins from symbols, ids or ``id=SYMBOL`` items, using ``known`` (id -> symbol)."""
    by_symbol: dict[str, str] = {}
    for coin_id, symbol in known.items():
        by_symbol.setdefault(symbol.upper(), coin_id)
    coins: list[Coin] = []
    for item in wanted:
        item = item.strip()
        if "=" in item:
            coin_id, symbol = (part.strip() for part in item.split("=", 1))
            if not coin_id or not symbol:
                raise ValueError(f"coingecko coin {item!r}: use id=SYMBOL")
            coins.append(Coin(coin_id.lower(), symbol.upper()))
        elif item.lower() in known:
            coins.append(Coin(item.lower(), known[item.lower()].upper()))
        elif item.upper() in by_symbol:
            coins.append(Coin(by_symbol[item.upper()], item.upper()))
        else:
            raise ValueError(
                f"coingecko coin {item!r} is unknown: give its CoinGecko id as id=SYMBOL "
                f"(e.g. pepe=PEPE); known: {', '.join(sorted(by_symbol))}"
            )
    return _unique(coins)


def _unique(coins: list[Coin]) -> list[Coin]:
    """Drop repeated ids and symbols (the first one, the larger market cap, wins)."""
    seen_ids: set[str] = set()
    seen_symbols: set[str] = set()
    out: list[Coin] = []
    for coin in coins:
        if coin.id in seen_ids or coin.symbol in seen_symbols:
            continue
        seen_ids.add(coin.id)
        seen_symbols.add(coin.symbol)
        out.append(coin)
    return out


def parse_price(value: Any) -> Decimal | None:
    """A finite positive JSON number as an exact Decimal; anything else is None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or value <= 0:
        return None
    return Decimal(str(value))


def parse_change(value: Any) -> Decimal | None:
    """A finite JSON number (the 24-hour change in %) or None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return Decimal(str(value))


def parse_time(value: Any, *, millis: bool = False) -> datetime | None:
    """A positive epoch (seconds, or milliseconds) as a UTC datetime, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    if value <= 0:
        return None
    try:
        return (
            _EPOCH + timedelta(milliseconds=value) if millis else _EPOCH + timedelta(seconds=value)
        )
    except OverflowError:
        return None


class BarBuilder:
    """Fixed-length OHLC bars of one symbol from price points in time order."""

    def __init__(self, symbol: str, period: timedelta) -> None:
        self.symbol = symbol
        self.period = period
        self._start: datetime | None = None
        self._ohlc: list[Decimal] = []
        self._last: datetime | None = None

    def add(self, when: datetime, price: Decimal) -> Bar | None:
        """Add a point; returns the bar it completed, if any. Older points are ignored."""
        if self._last is not None and when <= self._last:
            return None
        self._last = when
        start = _EPOCH + ((when - _EPOCH) // self.period) * self.period
        done = None
        if self._start is not None and start != self._start:
            o, h, lo, c = self._ohlc
            done = Bar(self.symbol, self._start, o, h, lo, c, _ZERO)
        if self._start != start:
            self._start, self._ohlc = start, [price, price, price, price]
        else:
            o, h, lo, _ = self._ohlc
            self._ohlc = [o, max(h, price), min(lo, price), price]
        return done


class CoinGeckoFeed:
    """CoinGecko ``/simple/price`` polled into ticks (see the module docstring)."""

    source = "coingecko"

    def __init__(
        self,
        config: CoinGeckoConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """``clock`` paces the polls (monotonic); ``wall`` gives the ticks' times (UTC)."""
        self.config = config = config or CoinGeckoConfig()
        base = config.base_url or (PRO_BASE_URL if config.plan == "pro" else DEMO_BASE_URL)
        self.base_url = base.rstrip("/")
        self._headers = {"accept": "application/json"}
        if config.api_key is not None:
            header = "x-cg-pro-api-key" if config.plan == "pro" else "x-cg-demo-api-key"
            self._headers[header] = config.api_key.get_secret_value()
        self._clock, self._wall = clock, wall
        self._coins: list[Coin] | None = None
        self._builders: dict[str, BarBuilder] = {}
        self._snaps: dict[str, Snapshot] = {}
        self._health = SourceHealth(
            self.source, stale_after=timedelta(seconds=config.stale_after_seconds)
        )
        self._client: httpx.AsyncClient | None = None
        self._due: float | None = None  # monotonic time of the next tick
        self._retry_at = 0.0  # no request before this monotonic time (back-off)
        self._last_tick: datetime | None = None
        self._closed = False
        self._wake: asyncio.Event | None = None

    # ------------------------------------------------------------------ MarketFeed protocol

    @property
    def instruments(self) -> dict[str, Instrument]:
        return {c.symbol: Instrument(c.symbol) for c in self.coins}

    def warmup(self) -> list[Tick]:
        """Ticks of the bars built from ``market_chart`` (never traded on)."""
        if self.config.warmup_days == 0:
            return []
        by_time: dict[datetime, dict[str, Bar]] = {}
        with self._sync_client() as client:
            for coin in self.coins:
                try:
                    data = self._get_sync(
                        client,
                        f"/coins/{coin.id}/market_chart",
                        {"vs_currency": "usd", "days": str(self.config.warmup_days)},
                    )
                except FeedError as exc:
                    log.warning("coingecko: no history for %s: %s", coin.id, exc)
                    self._health.failed(datetime.now(UTC), f"history of {coin.id}: {exc}")
                    if exc.status is None or exc.status == 429:
                        break  # unreachable or rate-limited: don't hold the start-up any longer
                    continue
                for bar in self._history_bars(coin, data):
                    by_time.setdefault(bar.time, {})[coin.symbol] = bar
        period = timedelta(seconds=self.config.bar_seconds)
        ticks = []
        for start in sorted(by_time):
            bars = by_time[start]
            end = start + period
            snaps = {s: Snapshot(s, end, b.close) for s, b in bars.items()}
            ticks.append(Tick(time=end, snapshots=snaps, bars=bars))
        return ticks

    async def next_tick(self) -> Tick | None:
        if self._closed:
            return None
        now = self._clock()
        if self._due is not None and self._due > now:
            await self._sleep(self._due - now)
            if self._closed:
                return None
        start, poll = self._clock(), self.config.poll_seconds
        self._due = max(self._due or start, start - poll) + poll  # late: re-anchor, no burst
        tick = await self.poll()
        return None if self._closed else tick

    def close(self) -> None:
        """End the feed: a pending and every later :meth:`next_tick` return None."""
        self._closed = True
        if self._wake is not None:
            self._wake.set()
        client, self._client = self._client, None
        if client is not None:
            with suppress(RuntimeError):
                asyncio.get_running_loop().create_task(client.aclose())

    def health(self) -> list[SourceHealth]:
        self._health.symbols = [c.symbol for c in self.coins]
        return [self._health]

    # ------------------------------------------------------------------ polling

    @property
    def coins(self) -> list[Coin]:
        """The coins polled (resolved on first use; may ask ``/coins/markets``)."""
        if self._coins is None:
            self._coins = self._resolve()
            period = timedelta(seconds=self.config.bar_seconds)
            self._builders = {c.symbol: BarBuilder(c.symbol, period) for c in self._coins}
        return self._coins

    @property
    def retry_in(self) -> float:
        """Seconds until the back-off allows the next request (0 = none pending)."""
        return max(0.0, self._retry_at - self._clock())

    async def poll(self) -> Tick:
        """One tick: request prices unless backing off, then the snapshots and bars that changed."""
        fresh: dict[str, Snapshot] = {}
        bars: dict[str, Bar] = {}
        tick_time = self._tick_time()
        if self._clock() >= self._retry_at:
            ids = ",".join(c.id for c in self.coins)
            params = {
                "ids": ids,
                "vs_currencies": "usd",
                "include_24hr_change": "true",
                "include_last_updated_at": "true",
            }
            try:
                data = await self._get_async("/simple/price", params)
                fresh, bars = self._take(data, tick_time)
            except FeedError as exc:
                self._back_off(exc)
        return Tick(time=tick_time, snapshots=fresh, bars=bars)

    def _take(self, data: Any, now: datetime) -> tuple[dict[str, Snapshot], dict[str, Bar]]:
        """Snapshots and completed bars from a ``/simple/price`` answer; raises if none usable."""
        if not isinstance(data, dict):
            raise FeedError(f"unexpected answer: {type(data).__name__}, not an object")
        fresh: dict[str, Snapshot] = {}
        bars: dict[str, Bar] = {}
        missing: list[str] = []
        usable = 0
        for coin in self.coins:
            entry = data.get(coin.id)
            price = parse_price(entry.get("usd")) if isinstance(entry, dict) else None
            when = parse_time(entry.get("last_updated_at")) if isinstance(entry, dict) else None
            if price is None or when is None or not isinstance(entry, dict):
                missing.append(coin.symbol)
                continue
            usable += 1
            when = min(when, now)
            old = self._snaps.get(coin.symbol)
            if old is not None and when <= old.time:
                continue  # nothing new for this coin
            snap = Snapshot(coin.symbol, when, price, parse_change(entry.get("usd_24h_change")))
            self._snaps[coin.symbol] = fresh[coin.symbol] = snap
            bar = self._builders[coin.symbol].add(when, price)
            if bar is not None:
                bars[coin.symbol] = bar
        if not usable:
            raise FeedError("empty answer: no usable price for any coin")
        self._retry_at = 0.0
        self._health.ok(datetime.now(UTC))
        if missing:  # a partial answer: those coins keep their last price, which ages
            self._health.last_error = f"no usable price for {', '.join(missing)}"
            self._health.last_error_at = datetime.now(UTC)
        return fresh, bars

    def _back_off(self, exc: FeedError) -> None:
        self._health.failed(datetime.now(UTC), str(exc))
        if exc.retry_after is not None:
            wait = exc.retry_after
        else:
            n = self._health.consecutive_errors
            wait = min(self.config.max_backoff_seconds, self.config.poll_seconds * 2.0**n)
        self._retry_at = self._clock() + wait
        log.warning("coingecko: %s; next request in %.1fs", exc, wait)

    def _tick_time(self) -> datetime:
        now = self._wall()
        if self._last_tick is not None and now <= self._last_tick:
            now = self._last_tick + timedelta(microseconds=1)
        self._last_tick = now
        return now

    def _history_bars(self, coin: Coin, data: Any) -> list[Bar]:
        """Completed bars from a market_chart answer; the bar still open seeds the live bars."""
        points = data.get("prices") if isinstance(data, dict) else None
        if not isinstance(points, list):
            return []
        builder = self._builders[coin.symbol]
        out = []
        for point in sorted((p for p in points if _is_point(p)), key=lambda p: p[0]):
            when, price = parse_time(point[0], millis=True), parse_price(point[1])
            if when is None or price is None:
                continue
            bar = builder.add(when, price)
            if bar is not None:
                out.append(bar)
        return out

    def _resolve(self) -> list[Coin]:
        if self.config.coins:
            return resolve_coins(self.config.coins, TOP10)
        try:
            with self._sync_client() as client:
                rows = self._get_sync(
                    client,
                    "/coins/markets",
                    {"vs_currency": "usd", "order": "market_cap_desc", "per_page": "10"},
                )
            coins = [
                Coin(r["id"], r["symbol"].upper())
                for r in rows
                if isinstance(r, dict)
                and isinstance(r.get("id"), str)
                and isinstance(r.get("symbol"), str)
                and r["id"]
                and r["symbol"]
            ]
            if not coins:
                raise FeedError("empty /coins/markets answer")
            return _unique(coins)[:10]
        except (FeedError, TypeError) as exc:
            log.warning("coingecko: top 10 unavailable (%s); using the built-in list", exc)
            self._health.failed(datetime.now(UTC), f"top 10: {exc}")
            return [Coin(i, s) for i, s in TOP10.items()]

    # ------------------------------------------------------------------ HTTP

    def _sync_client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers=self._headers, timeout=self.config.timeout_seconds
        )

    def _get_sync(self, client: httpx.Client, path: str, params: dict[str, str]) -> Any:
        try:
            return json_or_error(client.get(path, params=params))
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.config.timeout_seconds) from exc

    async def _get_async(self, path: str, params: dict[str, str]) -> Any:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.base_url, headers=self._headers, timeout=self.config.timeout_seconds
            )
        try:
            return json_or_error(await self._client.get(path, params=params))
        except httpx.HTTPError as exc:
            raise transport_error(exc, self.config.timeout_seconds) from exc

    async def _sleep(self, delay: float) -> None:
        self._wake = wake = asyncio.Event()
        try:
            with suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=delay)
        finally:
            self._wake = None


def _is_point(value: Any) -> bool:
    return isinstance(value, list) and len(value) >= 2 and isinstance(value[0], int | float)
