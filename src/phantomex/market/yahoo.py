"""US equities from Yahoo Finance: a polling :class:`~phantomex.market.base.MarketFeed`.

Every ``poll_seconds`` the feed asks the chart endpoint for each ticker's recent bars. A tick
carries, per symbol, the newest *complete* bar not delivered before (for the price history) and
the latest price: the last bar's close, timed at the bar's end, at ``regularMarketTime`` when
that falls inside the bar, and never later than the clock. So a Friday close read on Sunday is
two days old and the kernel's staleness check refuses it. A closed market (an empty answer)
is not an error. Failed polls keep the known prices (they age), back off exponentially and honour
``Retry-After``; every answer and error goes into the feed's :class:`SourceHealth`.

Instruments are ``equity`` with their venue and exchange calendar (``XNYS``/``XNAS``), so the
market-hours rule holds orders outside the session. Whole shares by default
(``quantity_step=1``); ``fractional=True`` for brokers that allow fractions."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from phantomex.domain.inputs import HttpUrl
from phantomex.domain.models import AssetClass, Bar, Instrument, Snapshot, Tick
from phantomex.market.bar_cache import BarCache
from phantomex.market.calendars import session_close
from phantomex.market.health import SourceHealth
from phantomex.market.retry import Backoff, polled_tick
from phantomex.market.yahoo_chart import (
    DEFAULT_BASE_URL,
    INTERVALS,
    Chart,
    YahooChartClient,
    YahooError,
)

__all__ = ["EquitySpec", "YahooFeed", "YahooSettings", "yahoo_feed_from_settings"]

#: Venues and their exchange-calendars names.
VENUE_CALENDARS = {"NYSE": "XNYS", "NASDAQ": "XNAS"}
#: How far back a warm-up may reach per interval (Yahoo: 1m data only for the last 30 days,
#: at most 8 days per request; other intraday intervals only for the last 60 days).
_LOOKBACK = {"1m": timedelta(days=7), "1d": timedelta(days=400)}
_INTRADAY_LOOKBACK = timedelta(days=55)
#: The ``range`` asked for on each poll.
_POLL_RANGE = {"1d": "5d"}


@dataclass(frozen=True, slots=True)
class EquitySpec:
    """A ticker and its venue; parsed from ``"AAPL:NASDAQ"`` (``"IBM"`` means NYSE)."""

    symbol: str
    venue: str = "NYSE"

    @classmethod
    def parse(cls, text: str) -> EquitySpec:
        symbol, _, venue = text.strip().partition(":")
        symbol, venue = symbol.strip().upper(), (venue.strip().upper() or "NYSE")
        if not symbol:
            raise ValueError(f"empty ticker in {text!r}")
        if venue not in VENUE_CALENDARS:
            raise ValueError(f"unknown venue {venue!r} for {symbol}; use {list(VENUE_CALENDARS)}")
        return cls(symbol, venue)

    def instrument(self, fractional: bool = False) -> Instrument:
        return Instrument(
            self.symbol,
            AssetClass.EQUITY,
            quote="USD",
            quantity_step=None if fractional else Decimal(1),
            venue=self.venue,
            calendar=VENUE_CALENDARS[self.venue],
        )


class YahooFeed:
    """Polls Yahoo's chart endpoint for ``specs`` (see the module docstring)."""

    def __init__(
        self,
        specs: Iterable[EquitySpec],
        client: YahooChartClient,
        *,
        interval: str = "1m",
        poll_seconds: float = 60.0,
        warmup_bars: int = 60,
        cache: BarCache | None = None,
        fractional: bool = False,
        max_backoff_seconds: float = 900.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if interval not in INTERVALS:
            raise ValueError(f"unsupported interval {interval!r}; use one of {list(INTERVALS)}")
        self._instruments = {s.symbol: s.instrument(fractional) for s in specs}
        if not self._instruments:
            raise ValueError("YahooFeed needs at least one ticker")
        self._client = client
        self._interval = interval
        self._period = INTERVALS[interval]
        self._warmup_bars = warmup_bars
        self._cache = cache
        self._clock = clock
        self._health = SourceHealth(
            "yahoo",
            stale_after=max(timedelta(seconds=3 * poll_seconds), timedelta(minutes=3)),
            symbols=list(self._instruments),
        )
        self._snapshots: dict[str, Snapshot] = {}
        self._delivered: dict[str, datetime] = {}  # open time of the last bar handed out
        self._backoff = Backoff(poll_seconds, max_backoff_seconds)
        self._closed = False

    @property
    def instruments(self) -> dict[str, Instrument]:
        return dict(self._instruments)

    @property
    def next_delay(self) -> float:
        """Seconds the next poll waits (the poll interval, or the backoff after failures)."""
        return self._backoff.delay

    def health(self) -> list[SourceHealth]:
        return [self._health]

    # -- warm-up ----------------------------------------------------------------------------------
    def warmup(self) -> list[Tick]:
        """The last ``warmup_bars`` complete bars per ticker (cache first, then Yahoo)."""
        if not self._warmup_bars:
            return []
        now = self._clock()
        by_close: dict[datetime, dict[str, Bar]] = {}
        for symbol in self._instruments:
            for bar in self._history(symbol, now)[-self._warmup_bars :]:
                by_close.setdefault(self._end(bar), {})[symbol] = bar
        ticks = []
        for close in sorted(by_close):
            bars = by_close[close]
            for symbol, bar in bars.items():
                self._snapshots[symbol] = Snapshot(symbol, close, bar.close)
                self._delivered[symbol] = bar.time
            ticks.append(Tick(close, dict(self._snapshots), dict(bars)))
        return ticks

    def _history(self, symbol: str, now: datetime) -> list[Bar]:
        lookback = _LOOKBACK.get(self._interval, _INTRADAY_LOOKBACK)
        cached = self._cache.get(symbol, self._interval, now - lookback) if self._cache else []
        start = cached[-1].time if cached else now - lookback
        try:
            chart = self._client.chart(symbol, self._interval, start=start, end=now)
        except YahooError as exc:
            self._health.failed(now, str(exc))
            fetched: list[Bar] = []
        else:
            self._health.ok(now)
            fetched = self._complete(chart.bars, now)
            if self._cache:
                self._cache.put(self._interval, fetched)
        merged = {b.time: b for b in cached} | {b.time: b for b in fetched}
        return [merged[t] for t in sorted(merged)]

    # -- polling ----------------------------------------------------------------------------------
    async def next_tick(self) -> Tick | None:
        return await polled_tick(lambda: self._closed, self._backoff.delay, self.poll)

    def poll(self) -> Tick:
        """Ask for every ticker once and return the tick at the clock's time."""
        now = self._clock()
        bars: dict[str, Bar] = {}
        errors: list[str] = []
        retry_after: float | None = None
        for symbol in self._instruments:
            try:
                chart = self._client.chart(
                    symbol, self._interval, range_=_POLL_RANGE.get(self._interval, "1d")
                )
            except YahooError as exc:
                errors.append(str(exc))
                if exc.retry_after is not None:
                    retry_after = max(retry_after or 0.0, exc.retry_after)
                continue
            self._take(chart, now, bars)
        self._account(now, len(self._instruments) - len(errors), errors, retry_after)
        return Tick(now, dict(self._snapshots), bars)

    def _take(self, chart: Chart, now: datetime, bars: dict[str, Bar]) -> None:
        symbol = chart.symbol
        complete = self._complete(chart.bars, now)
        if self._cache and complete:
            self._cache.put(self._interval, complete)
        last = self._delivered.get(symbol)
        fresh = [b for b in complete if last is None or b.time > last]
        if fresh:
            bars[symbol] = fresh[-1]
            self._delivered[symbol] = fresh[-1].time
        snap = self._latest(chart, now)
        old = self._snapshots.get(symbol)
        if snap is not None and (old is None or snap.time >= old.time):
            self._snapshots[symbol] = snap

    def _latest(self, chart: Chart, now: datetime) -> Snapshot | None:
        """The newest price the answer holds, timed as described in the module docstring."""
        found: list[Snapshot] = []
        if chart.bars:
            bar = chart.bars[-1]
            end = min(self._end(bar), now)
            if chart.market_time is not None and bar.time <= chart.market_time < end:
                end = chart.market_time
            found.append(Snapshot(chart.symbol, end, bar.close))
        price, at = chart.market_price, chart.market_time
        if price is not None and at is not None and at <= now:
            found.append(Snapshot(chart.symbol, at, price))
        return max(found, key=lambda s: s.time) if found else None

    def _complete(self, bars: list[Bar], now: datetime) -> list[Bar]:
        return [b for b in bars if self._end(b) <= now]

    def _end(self, bar: Bar) -> datetime:
        """When ``bar`` closes: after its interval, or at its session's close if earlier (a
        daily bar stamped at the open ends at the close, not 24 hours later)."""
        end = bar.time + self._period
        calendar = self._instruments[bar.symbol].calendar
        close = session_close(calendar, bar.time) if calendar else None
        return min(end, close) if close is not None else end

    def _account(
        self, now: datetime, answered: int, errors: list[str], retry_after: float | None
    ) -> None:
        if answered:
            self._health.ok(now)
        for error in errors:
            self._health.failed(now, error)
        self._backoff.record(answered > 0, retry_after)

    def close(self) -> None:
        self._closed = True
        self._client.close()
        if self._cache:
            self._cache.close()


class YahooSettings(BaseModel):
    """The ``yahoo`` source's settings (the ``[yahoo]`` TOML table)."""

    model_config = ConfigDict(extra="forbid")

    tickers: list[str] = Field(
        default_factory=list, description='Tickers with their venue: "AAPL:NASDAQ", "IBM:NYSE".'
    )
    interval: str = Field("1m", description="Bar interval: 1m, 2m, 5m, 15m, 30m, 60m, 1h, 1d.")
    poll_seconds: float = Field(60.0, gt=0, description="Seconds between two polls.")
    warmup_bars: int = Field(60, ge=0, description="Bars of history loaded before trading.")
    base_url: HttpUrl = Field(
        DEFAULT_BASE_URL, description="Chart API host (a local server in tests)."
    )
    timeout_seconds: float = Field(10.0, gt=0)
    fractional: bool = Field(False, description="Fractional shares (default: whole shares).")
    cache: bool = Field(True, description="Keep fetched bars in <data_dir>/cache/bars.sqlite.")
    max_backoff_seconds: float = Field(900.0, gt=0)

    @field_validator("tickers")
    @classmethod
    def _valid_tickers(cls, value: list[str]) -> list[str]:
        for text in value:
            EquitySpec.parse(text)
        return value

    @field_validator("interval")
    @classmethod
    def _valid_interval(cls, value: str) -> str:
        if value not in INTERVALS:
            raise ValueError(f"unsupported interval {value!r}; use one of {list(INTERVALS)}")
        return value


def yahoo_feed_from_settings(
    settings: YahooSettings | Mapping[str, Any],
    *,
    data_dir: Path | None = None,
    clock: Callable[[], datetime] | None = None,
) -> YahooFeed:
    """The ``yahoo`` source: a :class:`YahooFeed` for ``settings``; the cache lives in
    ``data_dir/cache/bars.sqlite`` (no cache without a ``data_dir``)."""
    cfg = settings if isinstance(settings, YahooSettings) else YahooSettings(**settings)
    cache = (
        BarCache(data_dir / "cache" / "bars.sqlite", "yahoo")
        if cfg.cache and data_dir is not None
        else None
    )
    return YahooFeed(
        [EquitySpec.parse(t) for t in cfg.tickers],
        YahooChartClient(cfg.base_url, timeout=cfg.timeout_seconds),
        interval=cfg.interval,
        poll_seconds=cfg.poll_seconds,
        warmup_bars=cfg.warmup_bars,
        cache=cache,
        fractional=cfg.fractional,
        max_backoff_seconds=cfg.max_backoff_seconds,
        **({"clock": clock} if clock else {}),
    )
