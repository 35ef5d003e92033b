"""Yahoo Finance's chart endpoint (``GET /v8/finance/chart/{symbol}``): fetch and parse bars.

Why httpx and not yfinance: yfinance 1.x cannot be pointed at another host. Its base URL is a
module constant copied into each scraper at import time, the cookie and crumb endpoints
(``fc.yahoo.com``, ``/v1/test/getcrumb``) are hard-coded, its session is a process-wide
singleton, it hides HTTP errors by default and turns prices into float DataFrames. One documented
endpoint fetched with httpx is testable against a local server, exact (prices become Decimal
through their shortest repr) and reports 429s with their ``Retry-After``.

Prices are rounded to ``meta.priceHint`` decimals (Yahoo serves float32 artefacts such as
``120.88999938964844`` for 120.89). ``close`` is split-adjusted, not dividend-adjusted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import httpx

from phantomex.domain.models import Bar
from phantomex.domain.money import ZERO, to_decimal
from phantomex.market.retry import retry_after_seconds

__all__ = ["INTERVALS", "Chart", "YahooChartClient", "YahooError", "parse_chart"]

DEFAULT_BASE_URL = "https://query2.finance.yahoo.com"
#: Yahoo's bar intervals and their length.
INTERVALS: dict[str, timedelta] = {
    "1m": timedelta(minutes=1),
    "2m": timedelta(minutes=2),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "30m": timedelta(minutes=30),
    "60m": timedelta(hours=1),
    "1h": timedelta(hours=1),
    "1d": timedelta(days=1),
}
_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) PhantomEx/1 (+paper trading)"


class YahooError(Exception):
    """A failed chart request. ``retry_after`` (seconds) is set on rate limits."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Chart:
    """One parsed chart answer: bars oldest first (an empty list on a closed market)."""

    symbol: str
    bars: list[Bar]
    exchange: str | None = None
    market_price: Decimal | None = None
    market_time: datetime | None = None
    skipped: int = 0  # bars dropped for null or non-positive prices
    meta: dict[str, Any] = field(default_factory=dict)


def parse_chart(symbol: str, payload: Any) -> Chart:
    """Parse a chart body; raises :class:`YahooError` on an error body or a malformed one."""
    if not isinstance(payload, dict) or not isinstance(payload.get("chart"), dict):
        raise YahooError(f"{symbol}: not a chart answer")
    chart = payload["chart"]
    error = _chart_error(payload)
    if error:
        raise YahooError(f"{symbol}: {error}")
    results = chart.get("result")
    if not results or not isinstance(results, list) or not isinstance(results[0], dict):
        raise YahooError(f"{symbol}: empty chart result")
    result = results[0]
    meta = result.get("meta") or {}
    hint = meta.get("priceHint", 2)
    step = Decimal(1).scaleb(-int(hint)) if isinstance(hint, int) and 0 <= hint <= 8 else None
    stamps = result.get("timestamp") or []  # absent when the market was closed (weekend)
    quotes = (result.get("indicators") or {}).get("quote") or [{}]
    quote = quotes[0] if isinstance(quotes[0], dict) else {}
    columns = [quote.get(k) or [] for k in ("open", "high", "low", "close", "volume")]
    bars: list[Bar] = []
    skipped = 0
    for i, stamp in enumerate(stamps):
        row = [col[i] if i < len(col) else None for col in columns]
        prices = [_price(v, step) for v in row[:4]]
        if not isinstance(stamp, int) or any(p is None for p in prices):
            skipped += 1
            continue
        o, h, lo, c = (p for p in prices if p is not None)
        volume = _price(row[4], None) or ZERO
        bars.append(Bar(symbol, datetime.fromtimestamp(stamp, UTC), o, h, lo, c, volume))
    market_time = meta.get("regularMarketTime")
    return Chart(
        symbol=symbol,
        bars=bars,
        exchange=meta.get("exchangeName"),
        market_price=_price(meta.get("regularMarketPrice"), step),
        market_time=datetime.fromtimestamp(market_time, UTC)
        if isinstance(market_time, int)
        else None,
        skipped=skipped,
        meta=meta,
    )


def _chart_error(payload: Any) -> str | None:
    """``code: description`` of an error body (``{"chart": {"error": {...}}}``), else None."""
    chart = payload.get("chart") if isinstance(payload, dict) else None
    error = chart.get("error") if isinstance(chart, dict) else None
    if not error:
        return None
    if isinstance(error, dict):
        return f"{error.get('code', 'error')}: {error.get('description', '')}"
    return str(error)


def _price(value: Any, step: Decimal | None) -> Decimal | None:
    """A positive finite Decimal (rounded to ``step``), or None for null/NaN/invalid values."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        number = to_decimal(value)
    except ValueError:
        return None
    if step is not None:
        number = number.quantize(step, rounding=ROUND_HALF_EVEN)
    return number if number > 0 else None


class YahooChartClient:
    """Synchronous client of the chart endpoint (run it in a thread from async code)."""

    def __init__(self, base_url: str = DEFAULT_BASE_URL, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout, headers={"User-Agent": _USER_AGENT})

    def chart(
        self,
        symbol: str,
        interval: str,
        *,
        range_: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> Chart:
        """Bars of ``symbol`` for ``range_`` (``1d``, ``5d`` ...) or ``start``..``end``."""
        if interval not in INTERVALS:
            raise YahooError(f"unsupported interval {interval!r}; use one of {list(INTERVALS)}")
        params: dict[str, str] = {"interval": interval, "includePrePost": "false"}
        if start is not None:
            params["period1"] = str(int(start.timestamp()))
            params["period2"] = str(int((end or datetime.now(UTC)).timestamp()))
        else:
            params["range"] = range_ or "1d"
        url = f"{self.base_url}/v8/finance/chart/{symbol}"
        try:
            resp = self._http.get(url, params=params)
        except httpx.TimeoutException as exc:
            raise YahooError(f"{symbol}: timeout ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise YahooError(f"{symbol}: {type(exc).__name__}: {exc}") from exc
        if resp.status_code == 429:
            raise YahooError(
                f"{symbol}: rate limited (HTTP 429)",
                retry_after=retry_after_seconds(resp.headers.get("Retry-After")),
            )
        try:
            payload = resp.json()
        except ValueError:
            payload = None
        if resp.status_code != 200:
            error = _chart_error(payload)
            raise YahooError(f"{symbol}: HTTP {resp.status_code}" + (f": {error}" if error else ""))
        if payload is None:
            raise YahooError(f"{symbol}: answer is not JSON")
        try:
            return parse_chart(symbol, payload)
        except (TypeError, KeyError, IndexError, AttributeError, ValueError) as exc:
            raise YahooError(f"{symbol}: malformed chart answer ({exc!r})") from exc

    def close(self) -> None:
        self._http.close()
