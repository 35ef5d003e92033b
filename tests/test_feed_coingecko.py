"""CoinGeckoFeed against a local HTTP server serving CoinGecko's documented answers."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from fakeapi import FakeAPI, Reply, Request, fixture

from phantomex.market.coingecko import (
    TOP10,
    BarBuilder,
    CoinGeckoConfig,
    CoinGeckoFeed,
    resolve_coins,
)
from phantomex.market.fetch import retry_after_seconds

PRICE = "/api/v3/simple/price"
MARKETS = "/api/v3/coins/markets"
CHART = "/api/v3/coins/bitcoin/market_chart"
BTC_TIME = datetime.fromtimestamp(1779092258, UTC)  # last_updated_at of simple_price.json


class Clock:
    """A monotonic clock the test moves by hand: back-off is checked without waiting."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    with FakeAPI() as server:
        yield server


def make_feed(api: FakeAPI, clock: Clock | None = None, **config: object) -> CoinGeckoFeed:
    settings = {"coins": ["bitcoin"], "base_url": api.url + "/api/v3", "poll_seconds": 10.0}
    settings.update(config)
    cfg = CoinGeckoConfig.model_validate(settings)
    return CoinGeckoFeed(cfg, clock=clock) if clock else CoinGeckoFeed(cfg)


def price_body(**coins: dict[str, object]) -> dict[str, object]:
    return {coin: dict(values) for coin, values in coins.items()}


@pytest.mark.asyncio
async def test_documented_simple_price_becomes_an_exact_snapshot(api: FakeAPI) -> None:
    api.route("GET", PRICE, Reply(body=fixture("coingecko/simple_price.json")))
    feed = make_feed(api, api_key="demo-key")

    tick = await feed.poll()

    snap = tick.snapshots["BTC"]
    assert snap.price == Decimal("76975")
    assert snap.time == BTC_TIME
    assert snap.change_24h_pct == Decimal("-1.4093297098441402")
    assert tick.time > snap.time  # the tick is wall time; the price is as old as CoinGecko says
    req = api.calls(PRICE)[0]
    assert req.arg("ids") == "bitcoin" and req.arg("vs_currencies") == "usd"
    assert req.arg("include_last_updated_at") == "true"
    assert req.arg("include_24hr_change") == "true"
    assert req.headers["x-cg-demo-api-key"] == "demo-key"
    assert "x-cg-pro-api-key" not in req.headers
    health = feed.health()[0].as_dict(datetime.now(UTC))
    assert health["source"] == "coingecko" and health["stale"] is False
    assert health["errors"] == 0 and health["symbols"] == ["BTC"]
    await _close(feed)


@pytest.mark.asyncio
async def test_pro_plan_sends_the_pro_header(api: FakeAPI) -> None:
    api.route("GET", PRICE, Reply(body=fixture("coingecko/simple_price.json")))
    feed = make_feed(api, api_key="pro-key", plan="pro")
    await feed.poll()
    assert api.calls(PRICE)[0].headers["x-cg-pro-api-key"] == "pro-key"
    assert "pro-key" not in repr(feed.config)  # the key is a secret: never printed
    await _close(feed)


def test_pro_plan_defaults_to_the_pro_base_url() -> None:
    feed = CoinGeckoFeed(CoinGeckoConfig(plan="pro", coins=["BTC"]))
    assert feed.base_url == "https://pro-api.coingecko.com/api/v3"
    assert CoinGeckoFeed(CoinGeckoConfig()).base_url == "https://api.coingecko.com/api/v3"


@pytest.mark.asyncio
async def test_an_unchanged_price_is_not_sent_again(api: FakeAPI) -> None:
    api.route("GET", PRICE, Reply(body=fixture("coingecko/simple_price.json")))
    clock = Clock()
    feed = make_feed(api, clock)
    first, second = await feed.poll(), await feed.poll()
    assert "BTC" in first.snapshots
    assert second.snapshots == {}  # same last_updated_at: nothing new to store or fill on
    assert second.time > first.time
    await _close(feed)


def test_default_coins_are_the_top_by_market_cap(api: FakeAPI) -> None:
    api.route("GET", MARKETS, Reply(body=fixture("coingecko/coins_markets.json")))
    feed = make_feed(api, coins=[])
    assert list(feed.instruments) == ["BTC"]  # the documented example lists one coin
    req = api.calls(MARKETS)[0]
    assert req.arg("order") == "market_cap_desc" and req.arg("per_page") == "10"


def test_default_coins_fall_back_to_the_built_in_top_10(api: FakeAPI) -> None:
    api.route("GET", MARKETS, Reply(500, {"error": "internal"}))
    feed = make_feed(api, coins=[])
    assert list(feed.instruments) == list(TOP10.values())
    assert "HTTP 500: internal" in (feed.health()[0].last_error or "")


def test_coins_are_symbols_ids_or_pairs() -> None:
    coins = resolve_coins(["btc", "ethereum", "pepe=pepe", "BTC"], TOP10)
    assert [(c.id, c.symbol) for c in coins] == [
        ("bitcoin", "BTC"),
        ("ethereum", "ETH"),
        ("pepe", "PEPE"),
    ]
    with pytest.raises(ValueError, match="unknown"):
        resolve_coins(["NOPE"], TOP10)
    with pytest.raises(ValueError, match="id=SYMBOL"):
        resolve_coins(["=X"], TOP10)


@pytest.mark.asyncio
async def test_429_honours_retry_after_and_keeps_the_last_price(api: FakeAPI) -> None:
    api.route(
        "GET",
        PRICE,
        Reply(body=fixture("coingecko/simple_price.json")),
        Reply(429, fixture("coingecko/error_429_rate_limit.json"), {"Retry-After": "119"}),
        Reply(body=price_body(bitcoin={"usd": 77000, "last_updated_at": 1779092318})),
    )
    clock = Clock()
    feed = make_feed(api, clock)
    assert "BTC" in (await feed.poll()).snapshots

    limited = await feed.poll()
    assert limited.snapshots == {}  # the last good price stays with the kernel and ages there
    assert feed.retry_in == 119
    health = feed.health()[0]
    assert health.errors == 1 and "exceeded the Rate Limit" in (health.last_error or "")

    clock.now += 118
    await feed.poll()
    assert len(api.calls(PRICE)) == 2  # still waiting: no request
    clock.now += 1
    back = await feed.poll()
    assert back.snapshots["BTC"].price == Decimal("77000")
    assert feed.health()[0].consecutive_errors == 0
    await _close(feed)


@pytest.mark.asyncio
async def test_html_429_without_retry_after_backs_off_exponentially(api: FakeAPI) -> None:
    page = "<html><body>Error 1015: You are being rate limited</body></html>"
    api.route("GET", PRICE, Reply(429, page, {"Content-Type": "text/html"}))
    clock = Clock()
    feed = make_feed(api, clock, poll_seconds=10.0, max_backoff_seconds=50.0)
    waits = []
    for _ in range(4):
        await feed.poll()
        waits.append(feed.retry_in)
        clock.now += feed.retry_in
    assert waits == [20.0, 40.0, 50.0, 50.0]
    assert feed.health()[0].last_error == "HTTP 429: non-JSON body (text/html)"
    await _close(feed)


@pytest.mark.asyncio
async def test_server_errors_and_an_empty_answer_back_off(api: FakeAPI) -> None:
    api.route(
        "GET",
        PRICE,
        Reply(500, {"status": {"error_code": 500, "error_message": "Internal error"}}),
        Reply(503, b""),
        Reply(body={}),
        Reply(body=fixture("coingecko/simple_price.json")),
    )
    clock = Clock()
    feed = make_feed(api, clock)
    errors = []
    for _ in range(3):
        tick = await feed.poll()
        assert tick.snapshots == {}
        errors.append(feed.health()[0].last_error)
        clock.now += feed.retry_in
    assert errors == [
        "HTTP 500: Internal error",
        "HTTP 503: empty body",
        "empty answer: no usable price for any coin",
    ]
    assert "BTC" in (await feed.poll()).snapshots
    await _close(feed)


@pytest.mark.asyncio
async def test_a_timeout_is_an_error_not_a_hang(api: FakeAPI) -> None:
    api.route("GET", PRICE, Reply(body=fixture("coingecko/simple_price.json"), delay=2.0))
    feed = make_feed(api, Clock(), timeout_seconds=0.2)
    tick = await feed.poll()
    assert tick.snapshots == {}
    assert feed.health()[0].last_error == "timeout: no answer within 0.2s"
    await _close(feed)


@pytest.mark.asyncio
async def test_an_unreachable_server_is_an_error() -> None:
    with FakeAPI() as gone:
        url = gone.url
    feed = CoinGeckoFeed(CoinGeckoConfig(coins=["BTC"], base_url=url), clock=Clock())
    assert (await feed.poll()).snapshots == {}
    assert "request failed: ConnectError" in (feed.health()[0].last_error or "")
    await _close(feed)


@pytest.mark.asyncio
async def test_a_partial_answer_updates_only_the_coins_it_has(api: FakeAPI) -> None:
    api.route(
        "GET",
        PRICE,
        Reply(
            body=price_body(
                bitcoin={"usd": 76975, "last_updated_at": 1779092258},
                ethereum={"usd": 3000.5, "last_updated_at": 1779092258},
            )
        ),
        Reply(body=price_body(bitcoin={"usd": 77001, "last_updated_at": 1779092318})),
    )
    clock = Clock()
    feed = make_feed(api, clock, coins=["BTC", "ETH"])
    assert set((await feed.poll()).snapshots) == {"BTC", "ETH"}
    partial = await feed.poll()
    assert set(partial.snapshots) == {"BTC"}
    health = feed.health()[0]
    assert health.errors == 0 and health.last_error == "no usable price for ETH"
    assert feed.retry_in == 0
    await _close(feed)


@pytest.mark.asyncio
async def test_garbage_values_never_become_prices(api: FakeAPI) -> None:
    raw = (
        b'{"bitcoin": {"usd": null, "last_updated_at": 1779092258},'
        b' "ethereum": {"usd": "3000", "last_updated_at": 1779092258},'
        b' "solana": {"usd": NaN, "last_updated_at": 1779092258},'
        b' "ripple": {"usd": -1.5, "last_updated_at": 1779092258},'
        b' "dogecoin": {"usd": 0, "last_updated_at": 1779092258},'
        b' "tron": {"usd": true, "last_updated_at": 1779092258},'
        b' "cardano": {"usd": 0.5, "last_updated_at": "yesterday"},'
        b' "tether": {"usd": 1.0, "usd_24h_change": "x", "last_updated_at": 1779092258},'
        b' "binancecoin": ["not", "an", "object"]}'
    )
    api.route("GET", PRICE, Reply(body=raw, headers={"Content-Type": "application/json"}))
    coins = ["BTC", "ETH", "SOL", "XRP", "DOGE", "TRX", "ADA", "USDT", "BNB"]
    feed = make_feed(api, Clock(), coins=coins)
    tick = await feed.poll()
    assert list(tick.snapshots) == ["USDT"]
    assert tick.snapshots["USDT"].price == Decimal("1.0")
    assert tick.snapshots["USDT"].change_24h_pct is None
    assert feed.health()[0].last_error == (
        "no usable price for BTC, ETH, SOL, XRP, DOGE, TRX, ADA, BNB"
    )
    await _close(feed)


@pytest.mark.asyncio
async def test_a_price_dated_in_the_future_is_clamped_to_now(api: FakeAPI) -> None:
    future = (datetime.now(UTC) + timedelta(hours=1)).timestamp()
    api.route("GET", PRICE, Reply(body=price_body(bitcoin={"usd": 1, "last_updated_at": future})))
    feed = make_feed(api, Clock())
    tick = await feed.poll()
    assert tick.snapshots["BTC"].time <= tick.time
    await _close(feed)


def test_warmup_builds_bars_from_the_documented_market_chart(api: FakeAPI) -> None:
    api.route("GET", CHART, Reply(body=fixture("coingecko/coins_market_chart.json")))
    feed = make_feed(api)
    ticks = feed.warmup()
    # two points 300.6 s apart: the first 5-minute bar is complete, the second still open
    assert len(ticks) == 1
    bar = ticks[0].bars["BTC"]
    assert bar.close == bar.open == Decimal("77953.82550382407")
    assert bar.time == datetime(2026, 5, 17, 14, 20, tzinfo=UTC)
    assert ticks[0].time == bar.time + timedelta(minutes=5)
    req = api.calls(CHART)[0]
    assert req.arg("vs_currency") == "usd" and req.arg("days") == "1"


def test_warmup_bars_are_ohlc_of_the_points_and_skip_garbage(api: FakeAPI) -> None:
    t0 = 1_779_000_000_000 - 1_779_000_000_000 % 300_000
    points = [[t0 + i * 60_000, 100 + i] for i in range(10)]
    points[2][1] = None  # type: ignore[call-overload]
    points.append("junk")  # type: ignore[arg-type]
    api.route("GET", CHART, Reply(body={"prices": points}))
    feed = make_feed(api)
    bars = [t.bars["BTC"] for t in feed.warmup()]
    assert len(bars) == 1
    b = bars[0]
    assert (b.open, b.high, b.low, b.close) == (
        Decimal(100),
        Decimal(104),
        Decimal(100),
        Decimal(104),
    )


def test_warmup_survives_a_failing_history(api: FakeAPI) -> None:
    api.route("GET", CHART, Reply(429, "<html>slow down</html>", {"Content-Type": "text/html"}))
    feed = make_feed(api, coins=["BTC", "ETH"])
    assert feed.warmup() == []
    assert len(api.requests) == 1  # rate-limited: the second coin is not asked at start-up
    assert "history of bitcoin: HTTP 429" in (feed.health()[0].last_error or "")


def test_warmup_can_be_turned_off(api: FakeAPI) -> None:
    feed = make_feed(api, warmup_days=0)
    assert feed.warmup() == []
    assert api.requests == []


@pytest.mark.asyncio
async def test_ticks_keep_coming_during_an_outage_until_closed(api: FakeAPI) -> None:
    def answer(request: Request) -> Reply:
        if len(api.calls(PRICE)) == 1:
            return Reply(body=fixture("coingecko/simple_price.json"))
        return Reply(500, {"error": "down"})

    api.route("GET", PRICE, answer)
    feed = make_feed(api, poll_seconds=0.02, max_backoff_seconds=0.05)
    ticks = [await feed.next_tick() for _ in range(5)]
    assert all(t is not None for t in ticks)
    times = [t.time for t in ticks if t is not None]
    assert times == sorted(times) and len(set(times)) == 5
    assert "BTC" in ticks[0].snapshots  # type: ignore[union-attr]
    assert feed.health()[0].consecutive_errors >= 1
    pending = asyncio.create_task(feed.next_tick())
    await asyncio.sleep(0)
    feed.close()
    assert await pending is None
    assert await feed.next_tick() is None


@pytest.mark.asyncio
async def test_the_next_request_waits_a_full_poll_interval(api: FakeAPI) -> None:
    api.route("GET", PRICE, Reply(body=fixture("coingecko/simple_price.json")))
    feed = make_feed(api, Clock(), poll_seconds=30.0)
    assert await feed.next_tick() is not None
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(feed.next_tick(), 0.3)
    assert len(api.calls(PRICE)) == 1
    await _close(feed)


def test_bar_builder_completes_a_bar_when_a_later_one_starts() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    b = BarBuilder("BTC", timedelta(minutes=1))
    assert b.add(start + timedelta(seconds=5), Decimal(10)) is None
    assert b.add(start + timedelta(seconds=30), Decimal(12)) is None
    assert b.add(start + timedelta(seconds=20), Decimal(99)) is None  # out of order: ignored
    assert b.add(start + timedelta(seconds=50), Decimal(9)) is None
    bar = b.add(start + timedelta(minutes=1, seconds=1), Decimal(11))
    assert bar is not None and bar.time == start
    assert (bar.open, bar.high, bar.low, bar.close) == (
        Decimal(10),
        Decimal(12),
        Decimal(9),
        Decimal(9),
    )


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert retry_after_seconds("119") == 119
    assert retry_after_seconds("Thu, 01 Jan 2026 12:00:30 GMT", now) == 30
    assert retry_after_seconds("Thu, 01 Jan 2026 11:00:00 GMT", now) == 0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("nan") is None
    assert retry_after_seconds("99999999") == 3600


async def _close(feed: CoinGeckoFeed) -> None:
    feed.close()
    await asyncio.sleep(0)  # let the client's close run
