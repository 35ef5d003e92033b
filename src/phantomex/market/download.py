"""Download candles from an exchange through ccxt into the Parquet :class:`DataStore`.

Paginated with ccxt's own rate limiter, resumable (a second run starts after the newest stored
candle), and saved in chunks so an interrupted download keeps what it got. The still-forming
candle is never stored."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import ccxt

from phantomex.domain.models import Bar
from phantomex.market.datastore import DataStore
from phantomex.market.validation import bar_fault

Progress = Callable[[datetime, datetime], None]  # (newest candle so far, target end)
PAGE_LIMIT = 1000
SAVE_EVERY = 20  # pages between saves


class DownloadError(RuntimeError):
    """A download that cannot go on, with a message for the user."""


@dataclass(frozen=True)
class DownloadResult:
    symbol: str
    market: str
    fetched: int
    stored: int
    first: datetime | None
    last: datetime | None


def make_exchange(name: str, options: dict[str, Any] | None = None) -> ccxt.Exchange:
    """A ccxt exchange by name, with its rate limiter on; spot markets only where the exchange
    lets us choose (loading futures markets would cost calls for nothing here)."""
    cls = getattr(ccxt, name, None)
    if not isinstance(cls, type) or not issubclass(cls, ccxt.Exchange):
        raise DownloadError(f"unknown exchange {name!r}; ccxt knows e.g. binance, kraken, okx")
    exchange: ccxt.Exchange = cls({"enableRateLimit": True, **(options or {})})
    fetch_markets = exchange.options.get("fetchMarkets")
    if isinstance(fetch_markets, dict) and "types" in fetch_markets:
        exchange.options["fetchMarkets"] = {**fetch_markets, "types": ["spot"]}
    return exchange


def point_at(exchange: ccxt.Exchange, base_url: str) -> None:
    """Send every API call of ``exchange`` to ``base_url`` (a mirror, a proxy or a local test
    server), keeping each endpoint's path."""
    from urllib.parse import urlsplit

    root = base_url.rstrip("/")
    api = exchange.urls["api"]
    for key, url in list(api.items()) if isinstance(api, dict) else []:
        if isinstance(url, str):
            api[key] = root + urlsplit(url).path


def market_symbol(symbol: str, quote: str) -> tuple[str, str]:
    """``BTC`` or ``BTC/USDT`` → (``BTC``, ``BTC/USDT``): our symbol and the exchange market."""
    text = symbol.strip().upper()
    base, _, market_quote = text.partition("/")
    if not base.isalnum():
        raise DownloadError(f"bad symbol {symbol!r} (e.g. BTC or BTC/USDT)")
    return base, f"{base}/{market_quote or quote.upper()}"


def download(
    exchange: ccxt.Exchange,
    store: DataStore,
    dataset: str,
    symbol: str,
    *,
    timeframe: str = "1m",
    since: datetime,
    until: datetime | None = None,
    quote: str = "USDT",
    progress: Progress | None = None,
) -> DownloadResult:
    """Fetch ``symbol`` candles from ``since`` (or after the newest stored one) to ``until``
    (default: now) and merge them into ``dataset``."""
    base, market = market_symbol(symbol, quote)
    period_ms = _call(exchange, "parse_timeframe", timeframe) * 1000
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    end_ms = min(int((until or datetime.now(UTC)).timestamp() * 1000), now_ms)
    start_ms = int(since.timestamp() * 1000)
    stored_last = store.last_time(dataset, base, timeframe)
    if stored_last is not None:
        start_ms = max(start_ms, int(stored_last.timestamp() * 1000) + period_ms)
    _call(exchange, "load_markets")
    if market not in exchange.markets:
        raise DownloadError(f"{exchange.id} has no market {market}")
    source = f"ccxt:{exchange.id} {market} {timeframe}"
    pending: list[Bar] = []
    fetched, pages, cursor = 0, 0, start_ms
    stored = 0
    try:
        while cursor < end_ms:
            rows = _call(exchange, "fetch_ohlcv", market, timeframe, since=cursor, limit=PAGE_LIMIT)
            bars = [b for b in (_bar(base, r) for r in rows) if b is not None]
            # closed candles in the window only: open + period <= now, open < end
            bars = [
                b
                for b in bars
                if cursor <= _ms(b.time) < end_ms and _ms(b.time) + period_ms <= now_ms
            ]
            if not bars:
                break
            pending.extend(bars)
            fetched += len(bars)
            cursor = _ms(bars[-1].time) + period_ms
            pages += 1
            if progress is not None:
                progress(bars[-1].time, datetime.fromtimestamp(end_ms / 1000, UTC))
            if pages % SAVE_EVERY == 0:
                stored = store.save(dataset, base, timeframe, pending, source)
                pending.clear()
    finally:
        if pending:
            stored = store.save(dataset, base, timeframe, pending, source)
    kept = store.load(dataset, base, timeframe)
    return DownloadResult(
        symbol=base,
        market=market,
        fetched=fetched,
        stored=stored or len(kept),
        first=kept[0].time if kept else None,
        last=kept[-1].time if kept else None,
    )


def _call(exchange: ccxt.Exchange, method: str, *args: Any, **kwargs: Any) -> Any:
    """Call a ccxt method, turning its errors into a :class:`DownloadError` for the user."""
    try:
        return getattr(exchange, method)(*args, **kwargs)
    except ccxt.NetworkError as exc:
        raise DownloadError(
            f"cannot reach {exchange.id} ({type(exc).__name__}): are you offline? "
            "`phantomex data import FILE` loads candles from a file instead"
        ) from exc
    except ccxt.ExchangeError as exc:
        raise DownloadError(f"{exchange.id} refused: {exc}") from exc


def _bar(symbol: str, row: Any) -> Bar | None:
    """A ccxt OHLCV row ``[ms, o, h, l, c, v]`` as a Bar; None when it is not a sane candle."""
    try:
        ms, o, h, lo, c, v = row[:6]
        prices = [Decimal(str(x)) for x in (o, h, lo, c)]
        volume = Decimal(str(v if v is not None else 0))
        time = datetime.fromtimestamp(int(ms) / 1000, UTC)
    except (TypeError, ValueError, ArithmeticError):
        return None
    op, hi, low, cl = prices
    if bar_fault(op, hi, low, cl, volume):
        return None
    return Bar(symbol, time, op, hi, low, cl, volume)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)
