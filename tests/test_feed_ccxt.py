"""The ccxt feed against a local server speaking Binance's documented REST API.

ccxt's binance client is pointed at FakeAPI by overriding ``urls['api']``; every answer is the
documented one from tests/fixtures/api/binance (see SOURCES.md), including its error bodies."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from fakeapi import FakeAPI, Reply, fixture

from phantomex.market.ccxt_feed import CcxtFeed, ccxt_feed_from_spec
from phantomex.market.ccxt_parse import closed_bars
from phantomex.market.symbols import from_pair, to_pair
from phantomex.risk.engine import price_problem

KLINE = fixture("binance/klines.json")[0]  # open time 1499040000000
OPEN_MS = KLINE[0]
MINUTE = 60_000


def klines(n: int) -> list[list[Any]]:
    """``n`` consecutive 1-minute klines in the documented shape (the docs row, shifted)."""
    rows = []
    for i in range(n):
        row = copy.deepcopy(KLINE)
        row[0], row[6] = OPEN_MS + i * MINUTE, OPEN_MS + (i + 1) * MINUTE - 1
        rows.append(row)
    return rows


def at(minutes: int) -> Callable[[], float]:
    """A clock standing ``minutes`` after the docs candle opened."""
    return lambda: (OPEN_MS + minutes * MINUTE) / 1000


def binance_urls(api: FakeAPI) -> dict[str, str]:
    return {
        "public": f"{api.url}/api/v3",
        "private": f"{api.url}/api/v3",
        "v1": f"{api.url}/api/v1",
    }


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    with FakeAPI() as server:
        server.route(
            "GET", "/api/v3/exchangeInfo", Reply(body=fixture("binance/exchange_info.json"))
        )
        server.route("GET", "/api/v3/klines", Reply(body=klines(3)))
        server.route(
            "GET", "/api/v3/ticker/24hr", Reply(body=fixture("binance/ticker_24hr_list.json"))
        )
        yield server


def make_feed(api: FakeAPI, **kw: Any) -> CcxtFeed:
    options: dict[str, Any] = {
        "quote": "BTC",
        "use_websocket": False,
        "poll_seconds": 0.0,
        "api_urls": binance_urls(api),
        "timeout_ms": 2000,
    }
    return CcxtFeed("binance", ["bnb"], **(options | kw))


def poll(feed: CcxtFeed) -> Any:
    async def run() -> Any:
        try:
            return await feed.poll()
        finally:
            await feed.aclose()

    return asyncio.run(run())


# -- symbols -------------------------------------------------------------------------------------
def test_symbols_normalise_both_ways() -> None:
    assert to_pair("btc", "USDT") == "BTC/USDT"
    assert to_pair("BTC/USDT", "usdt") == "BTC/USDT"
    assert from_pair("BTC/USDT", "USDT") == "BTC"
    assert from_pair("BTC/EUR", "USDT") is None
    assert from_pair("BTC/USDT:USDT", "USDT") is None  # a perpetual, not spot
    for bad in ("", "BTC/EUR", "B TC", "BTC/"):
        with pytest.raises(ValueError):
            to_pair(bad, "USDT")


def test_unknown_exchange_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown exchange"):
        CcxtFeed("nosuchexchange", ["BTC"], use_websocket=False)
    with pytest.raises(ValueError, match="at least one symbol"):
        CcxtFeed("binance", [], use_websocket=False)


def test_factory_takes_the_registry_spec() -> None:
    feed = ccxt_feed_from_spec("ccxt:binance", ["BTC", "ETH"], use_websocket=False)
    assert feed.exchange_id == "binance"
    assert sorted(feed.instruments) == ["BTC", "ETH"]
    assert feed.pairs == {"BTC/USDT": "BTC", "ETH/USDT": "ETH"}
    assert feed.health()[0].source == "ccxt:binance"


# -- warm-up and candles -------------------------------------------------------------------------
def test_warmup_returns_closed_candles_only_with_exact_prices(api: FakeAPI) -> None:
    feed = make_feed(api, clock=at(3))
    ticks = feed.warmup()
    # three candles served; the last one is the still-forming candle and is never a bar
    assert [t.bars["BNB"].time for t in ticks] == [
        datetime.fromtimestamp(OPEN_MS / 1000, UTC),
        datetime.fromtimestamp((OPEN_MS + MINUTE) / 1000, UTC),
    ]
    bar = ticks[0].bars["BNB"]
    assert (bar.open, bar.high, bar.low, bar.close) == (
        Decimal("0.01634790"),
        Decimal("0.80000000"),
        Decimal("0.01575800"),
        Decimal("0.01577100"),
    )
    assert bar.volume == Decimal("148976.11427815")
    assert ticks[0].time == datetime.fromtimestamp((OPEN_MS + MINUTE) / 1000, UTC)  # its close
    call = api.calls("/api/v3/klines")[0]
    assert (call.arg("symbol"), call.arg("interval"), call.arg("limit")) == ("BNBBTC", "1m", "61")


def test_warmup_survives_an_invalid_symbol_answer(api: FakeAPI) -> None:
    api.route("GET", "/api/v3/klines", Reply(400, fixture("binance/error_invalid_symbol.json")))
    feed = make_feed(api)
    assert feed.warmup() == []
    health = feed.health()[0]
    assert health.errors == 1 and "Invalid symbol" in (health.last_error or "")


def test_poll_brings_only_candles_not_seen_before(api: FakeAPI) -> None:
    feed = make_feed(api, clock=at(3))
    feed.warmup()
    api.route("GET", "/api/v3/klines", Reply(body=klines(4)))
    feed._clock = at(4)
    tick = poll(feed)
    assert tick is not None
    assert tick.bars["BNB"].time == datetime.fromtimestamp((OPEN_MS + 2 * MINUTE) / 1000, UTC)


def test_garbage_and_out_of_order_candles_never_become_bars() -> None:
    rows = klines(6)
    rows[1][4] = "NaN"  # close
    rows[2][2] = "0.00000001"  # high below the low
    rows[3][1] = None  # no open
    rows = [rows[4], rows[0], rows[5], rows[3], rows[2], rows[1], rows[0]]  # shuffled, duplicate
    rows.append(klines(7)[6])  # the forming candle comes last
    bars, problems = closed_bars("BNB", rows, MINUTE, OPEN_MS + 10 * MINUTE, None)
    assert [b.time.timestamp() * 1000 for b in bars] == [
        OPEN_MS,
        OPEN_MS + 4 * MINUTE,
        OPEN_MS + 5 * MINUTE,
    ]
    assert len(problems) == 3
    assert closed_bars("BNB", "oops", MINUTE, OPEN_MS, None) == ([], ["BNB candles are not a list"])
    assert closed_bars("BNB", [], MINUTE, OPEN_MS, None) == ([], [])


# -- tickers -------------------------------------------------------------------------------------
def test_ticker_becomes_a_snapshot_stamped_with_the_exchange_time(api: FakeAPI) -> None:
    tick = poll(make_feed(api))
    assert tick is not None
    snap = tick.snapshots["BNB"]
    assert snap.price == Decimal("4.00000200")
    assert snap.change_24h_pct == Decimal("-95.960")
    assert snap.time == datetime.fromtimestamp(1499869899040 / 1000, UTC)  # closeTime
    # the docs ticker is from 2017: the kernel's staleness check refuses to trade on it
    assert "price is stale" in (price_problem(snap, datetime.now(UTC), 60) or "")
    call = api.calls("/api/v3/ticker/24hr")[0]
    assert call.arg("symbols") == '["BNBBTC"]'


@pytest.mark.parametrize(
    "field,value",
    [
        ("lastPrice", "0.00000000"),
        ("lastPrice", "-4.00000200"),
        ("lastPrice", "NaN"),
        ("lastPrice", None),
        ("closeTime", None),
        ("closeTime", 99999999999999),  # far in the future
    ],
)
def test_garbage_tickers_never_become_prices(api: FakeAPI, field: str, value: Any) -> None:
    body = fixture("binance/ticker_24hr_list.json")
    if value is None:
        del body[0][field]
    else:
        body[0][field] = value
    api.route("GET", "/api/v3/ticker/24hr", Reply(body=body))
    api.route("GET", "/api/v3/klines", Reply(body=[]))
    feed = make_feed(api)
    assert poll(feed) is None
    assert feed.health()[0].consecutive_errors >= 1


def test_empty_answer_is_no_tick(api: FakeAPI) -> None:
    api.route("GET", "/api/v3/ticker/24hr", Reply(body=[]))
    api.route("GET", "/api/v3/klines", Reply(body=[]))
    feed = make_feed(api)
    assert poll(feed) is None
    assert feed.health()[0].last_error == "no usable prices in the answer"


def test_invalid_symbol_error_body_is_recorded(api: FakeAPI) -> None:
    api.route(
        "GET", "/api/v3/ticker/24hr", Reply(400, fixture("binance/error_invalid_symbol.json"))
    )
    feed = make_feed(api)
    assert poll(feed) is None
    health = feed.health()[0]
    assert "BadSymbol" in (health.last_error or "") and "-1121" in (health.last_error or "")
    assert health.stale(datetime.now(UTC))


def test_rate_limit_backs_off_at_least_retry_after_then_recovers(api: FakeAPI) -> None:
    limited = {"code": -1003, "msg": "Too many requests."}
    api.route(
        "GET",
        "/api/v3/ticker/24hr",
        Reply(429, limited, headers={"Retry-After": "7"}),
        Reply(body=fixture("binance/ticker_24hr_list.json")),
    )
    feed = make_feed(api)

    async def run() -> tuple[Any, float, Any]:
        try:
            first = await feed.poll()
            backoff = feed.backoff_seconds
            return first, backoff, await feed.poll()
        finally:
            await feed.aclose()

    first, backoff, second = asyncio.run(run())
    assert first is None and backoff >= 7
    assert second is not None and second.snapshots["BNB"].price == Decimal("4.00000200")
    health = feed.health()[0]
    assert health.errors == 1 and health.consecutive_errors == 0
    assert feed.backoff_seconds == 0


def test_ip_ban_418_backs_off(api: FakeAPI) -> None:
    api.route(
        "GET",
        "/api/v3/ticker/24hr",
        Reply(
            418,
            {"code": -1003, "msg": "Way too many requests; IP banned."},
            headers={"Retry-After": "120"},
        ),
    )
    feed = make_feed(api)
    assert poll(feed) is None
    assert feed.backoff_seconds >= 120
    assert feed.health()[0].last_error


def test_timeout_is_an_error_not_a_hang(api: FakeAPI) -> None:
    api.route(
        "GET",
        "/api/v3/ticker/24hr",
        Reply(body=fixture("binance/ticker_24hr_list.json"), delay=2.0),
    )
    feed = make_feed(api, timeout_ms=300)
    assert poll(feed) is None
    assert "RequestTimeout" in (feed.health()[0].last_error or "")


def test_next_tick_polls_and_close_ends_the_feed(api: FakeAPI) -> None:
    feed = make_feed(api)

    async def run() -> tuple[Any, Any]:
        first = await feed.next_tick()
        feed.close()
        return first, await feed.next_tick()

    first, after = asyncio.run(run())
    assert first is not None and "BNB" in first.snapshots
    assert after is None


def test_a_failing_ticker_stream_falls_back_to_polling(api: FakeAPI) -> None:
    # the stream URL points at the fake HTTP server, which refuses the websocket upgrade (404)
    feed = make_feed(api, use_websocket=True)
    exchange = feed._client()
    exchange.urls["api"]["ws"] = {
        k: f"ws://127.0.0.1:{api.url.rsplit(':', 1)[1]}/ws" for k in ("spot", "margin")
    }
    tick = poll(feed)
    assert feed.websocket is False
    assert tick is not None and tick.snapshots["BNB"].price == Decimal("4.00000200")
    assert any(r.path.startswith("/ws") for r in api.requests)
    assert feed.health()[0].errors >= 1
