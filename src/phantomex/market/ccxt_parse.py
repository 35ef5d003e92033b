"""Turn ccxt tickers and OHLCV rows into Snapshots and Bars, refusing anything that isn't a price.

Garbage (None, zero, negative, NaN, missing fields, a high below the low, a timestamp from the
future, candles out of order or still forming) never becomes a price: it is dropped with a reason.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from phantomex.domain.models import Bar, Snapshot
from phantomex.domain.money import is_valid_price, to_decimal

#: How far an exchange timestamp may run ahead of our clock (clock skew) before it is refused.
MAX_FUTURE_MS = 60_000


class BadData(ValueError):
    """A ticker or candle that cannot be used; the message says why."""


def _price(value: object, name: str) -> Decimal:
    try:
        price = to_decimal(value)
    except ValueError:
        raise BadData(f"{name} is not a number: {value!r}") from None
    if not is_valid_price(price):
        raise BadData(f"{name} is not a positive price: {value!r}")
    return price


def _time(value: object, now_ms: int, name: str) -> datetime:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise BadData(f"{name} is missing or not a time: {value!r}")
    if value > now_ms + MAX_FUTURE_MS:
        raise BadData(f"{name} is in the future: {value}")
    return datetime.fromtimestamp(value / 1000, UTC)


def raw_last_key(exchange_id: str) -> str | None:
    """The field of the exchange's own ticker that holds its last trade price, where known."""
    return "lastPrice" if exchange_id.startswith("binance") else None


def snapshot(symbol: str, ticker: Any, now_ms: int, raw_last: str | None = None) -> Snapshot:
    """A ccxt unified ticker → Snapshot stamped with the *exchange's* time (so an old price looks
    old to the kernel's staleness check). ccxt fills a zero or missing last price in from open +
    change; with ``raw_last`` (see :func:`raw_last_key`) only the exchange's own last trade price
    counts. Raises BadData."""
    if not isinstance(ticker, dict):
        raise BadData(f"ticker for {symbol} is not an object")
    price = _price(ticker.get("last"), f"{symbol} last price")
    if raw_last is not None:
        info = ticker.get("info")
        raw = _price(info.get(raw_last) if isinstance(info, dict) else None, f"{symbol} {raw_last}")
        if raw != price:
            raise BadData(f"{symbol} last price {price} is derived, the exchange said {raw}")
    when = _time(ticker.get("timestamp"), now_ms, f"{symbol} ticker timestamp")
    change = ticker.get("percentage")
    try:
        pct = to_decimal(change) if change is not None else None
    except ValueError:
        pct = None
    return Snapshot(symbol, when, price, pct)


def closed_bars(
    symbol: str, rows: Any, timeframe_ms: int, now_ms: int, after_ms: int | None
) -> tuple[list[Bar], list[str]]:
    """Closed candles newer than ``after_ms`` (open time), oldest first, and the reasons rows
    were dropped. The last row is always taken to be the still-forming candle (exchanges return
    it last), and so is any candle whose close is after ``now_ms``."""
    if not isinstance(rows, list):
        return [], [f"{symbol} candles are not a list"]
    problems: list[str] = []
    good: dict[int, Bar] = {}
    for row in rows[:-1]:
        try:
            opened, bar = _bar(symbol, row, now_ms)
        except BadData as exc:
            problems.append(str(exc))
            continue
        if opened + timeframe_ms > now_ms or (after_ms is not None and opened <= after_ms):
            continue
        good[opened] = bar
    return [good[t] for t in sorted(good)], problems


def _bar(symbol: str, row: Any, now_ms: int) -> tuple[int, Bar]:
    if not isinstance(row, list | tuple) or len(row) < 6:
        raise BadData(f"{symbol} candle is malformed: {row!r}")
    when = _time(row[0], now_ms, f"{symbol} candle time")
    o, h, lo, c = (_price(v, f"{symbol} candle {n}") for v, n in zip(row[1:5], "ohlc", strict=True))
    try:
        volume = to_decimal(row[5])
    except ValueError:
        raise BadData(f"{symbol} candle volume is not a number: {row[5]!r}") from None
    if volume < 0 or h < max(o, c, lo) or lo > min(o, c):
        raise BadData(f"{symbol} candle is inconsistent: {row!r}")
    return int(row[0]), Bar(symbol, when, o, h, lo, c, volume)
