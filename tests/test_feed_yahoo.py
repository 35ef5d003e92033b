"""YahooFeed against a local HTTP server answering with Yahoo's recorded chart responses."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeAPI, Reply, fixture

from phantomex.domain.models import AssetClass
from phantomex.market.bar_cache import BarCache
from phantomex.market.yahoo import EquitySpec, YahooFeed, YahooSettings, yahoo_feed_from_settings
from phantomex.market.yahoo_chart import YahooChartClient, YahooError, parse_chart

AAPL_1D = "yahoo/chart_AAPL_1d_2020-08-31_2020-11-07.json"
AAPL_WEEKEND = "yahoo/chart_AAPL_1m_weekend_empty.json"
BTC_1D = "yahoo/chart_BTC-USD_1d_2020-01-01_2020-01-03.json"
NOT_FOUND = {
    "chart": {
        "result": None,
        "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
    }
}
SATURDAY = datetime(2020, 11, 7, 12, 0, tzinfo=UTC)  # the day after the fixture's last bar


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    with FakeAPI() as server:
        yield server


def feed_for(
    api: FakeAPI,
    now: datetime,
    tickers: tuple[str, ...] = ("AAPL:NASDAQ",),
    **kw: Any,
) -> YahooFeed:
    settings = {"tickers": list(tickers), "base_url": api.url, "cache": False, **kw}
    return yahoo_feed_from_settings(settings, clock=lambda: now)


def test_parse_recorded_daily_chart() -> None:
    chart = parse_chart("AAPL", fixture(AAPL_1D))
    assert len(chart.bars) == 49 and chart.skipped == 0
    first, last = chart.bars[0], chart.bars[-1]
    assert first.time == utc(2020, 8, 31, 13, 30)  # stamped at the session open (EDT)
    assert last.time == utc(2020, 11, 6, 14, 30)  # ... EST after the clocks changed
    raw = fixture(AAPL_1D)["chart"]["result"][0]["indicators"]["quote"][0]
    assert first.close == Decimal(repr(raw["close"][0])).quantize(Decimal("0.01"))
    assert all(isinstance(b.close, Decimal) and b.close > 0 for b in chart.bars)
    assert chart.exchange == "NMS" and chart.market_price == Decimal("244.87")


def test_parse_weekend_answer_has_no_bars_and_is_not_an_error() -> None:
    chart = parse_chart("AAPL", fixture(AAPL_WEEKEND))
    assert chart.bars == [] and chart.market_time == utc(2025, 2, 19, 21, 0, 1)


def test_parse_skips_null_and_non_positive_prices() -> None:
    body = copy.deepcopy(fixture(BTC_1D))
    quote = body["chart"]["result"][0]["indicators"]["quote"][0]
    quote["close"][1] = None
    quote["low"][2] = -1
    chart = parse_chart("BTC-USD", body)
    assert [b.time.day for b in chart.bars] == [1] and chart.skipped == 2


def test_parse_error_body() -> None:
    with pytest.raises(YahooError, match="Not Found: No data found, symbol may be delisted"):
        parse_chart("ZZZZ", NOT_FOUND)
    with pytest.raises(YahooError, match="not a chart answer"):
        parse_chart("ZZZZ", ["nope"])


def test_instruments_know_their_venue_calendar_and_lot(api: FakeAPI) -> None:
    feed = feed_for(api, SATURDAY, ("AAPL:NASDAQ", "ibm"))
    aapl, ibm = feed.instruments["AAPL"], feed.instruments["IBM"]
    assert (aapl.asset_class, aapl.venue, aapl.calendar) == (AssetClass.EQUITY, "NASDAQ", "XNAS")
    assert (ibm.venue, ibm.calendar, ibm.quantity_step) == ("NYSE", "XNYS", Decimal(1))
    fractional = feed_for(api, SATURDAY, fractional=True)
    assert fractional.instruments["AAPL"].quantity_step is None
    assert api.requests == []  # building a feed asks nothing


def test_warmup_returns_complete_bars_timed_at_the_session_close(api: FakeAPI) -> None:
    api.route("GET", "/v8/finance/chart/AAPL", Reply(body=fixture(AAPL_1D)))
    feed = feed_for(api, SATURDAY, interval="1d", warmup_bars=10)
    ticks = feed.warmup()
    assert len(ticks) == 10
    # Friday 2020-11-06 closes at 16:00 New York = 21:00 UTC; that is the last tick's time
    assert ticks[-1].time == utc(2020, 11, 6, 21, 0)
    assert ticks[-1].bars["AAPL"].time == utc(2020, 11, 6, 14, 30)
    assert ticks[-1].snapshots["AAPL"].time == utc(2020, 11, 6, 21, 0)
    assert [t.time for t in ticks] == sorted(t.time for t in ticks)
    (call,) = api.calls("/v8/finance/chart/AAPL")
    assert call.arg("interval") == "1d" and call.arg("period2") == str(int(SATURDAY.timestamp()))
    assert feed.health()[0].last_update == SATURDAY


def test_poll_on_saturday_keeps_friday_price_with_its_real_time(api: FakeAPI) -> None:
    api.route("GET", "/v8/finance/chart/AAPL", Reply(body=fixture(AAPL_1D)))
    feed = feed_for(api, SATURDAY, interval="1d", warmup_bars=0)
    tick = feed.poll()
    assert tick.time == SATURDAY
    snap = tick.snapshots["AAPL"]
    assert snap.time == utc(2020, 11, 6, 21, 0)  # 15 hours old: the kernel calls it stale
    assert tick.bars["AAPL"].time == utc(2020, 11, 6, 14, 30)  # the newest complete bar
    assert feed.poll().bars == {}  # nothing new on the next poll
    assert api.calls("/v8/finance/chart/AAPL")[0].arg("range") == "5d"


def test_in_progress_bar_is_priced_but_not_added_to_history(api: FakeAPI) -> None:
    api.route("GET", "/v8/finance/chart/AAPL", Reply(body=fixture(AAPL_1D)))
    during = utc(2020, 11, 6, 18, 0)  # Friday's session is still open
    tick = feed_for(api, during, interval="1d", warmup_bars=0).poll()
    assert tick.bars["AAPL"].time == utc(2020, 11, 5, 14, 30)
    assert tick.snapshots["AAPL"].time == during


def test_weekend_empty_answer_uses_the_last_regular_market_price(api: FakeAPI) -> None:
    api.route("GET", "/v8/finance/chart/AAPL", Reply(body=fixture(AAPL_WEEKEND)))
    sunday = utc(2025, 2, 23, 15, 0)
    feed = feed_for(api, sunday)
    assert feed.warmup() == []  # nothing to warm up from, and no error
    tick = feed.poll()
    assert tick.bars == {}
    assert tick.snapshots["AAPL"].price == Decimal("244.87")
    assert tick.snapshots["AAPL"].time == utc(2025, 2, 19, 21, 0, 1)
    health = feed.health()[0]
    assert health.errors == 0 and health.last_update == sunday


def test_error_body_is_recorded_and_backs_off(api: FakeAPI) -> None:
    api.route("GET", "/v8/finance/chart/ZZZZ", Reply(404, NOT_FOUND))
    feed = feed_for(api, SATURDAY, ("ZZZZ",), poll_seconds=10)
    tick = feed.poll()
    assert tick.snapshots == {}
    health = feed.health()[0]
    assert health.last_error == ("ZZZZ: HTTP 404: Not Found: No data found, symbol may be delisted")
    assert feed.next_delay == 20
    feed.poll()
    assert feed.next_delay == 40 and health.consecutive_errors == 2


def test_one_bad_ticker_does_not_stop_the_others(api: FakeAPI) -> None:
    api.route("GET", "/v8/finance/chart/AAPL", Reply(body=fixture(AAPL_1D)))
    api.route("GET", "/v8/finance/chart/ZZZZ", Reply(404, NOT_FOUND))
    feed = feed_for(api, SATURDAY, ("AAPL", "ZZZZ"), interval="1d", poll_seconds=10)
    tick = feed.poll()
    assert set(tick.snapshots) == {"AAPL"}
    assert feed.next_delay == 10 and feed.health()[0].errors == 1


def test_rate_limit_honours_retry_after_then_recovers(api: FakeAPI) -> None:
    api.route(
        "GET",
        "/v8/finance/chart/AAPL",
        Reply(429, "Too Many Requests\r\n", headers={"Retry-After": "120"}),
        Reply(body=fixture(AAPL_1D)),
    )
    feed = feed_for(api, SATURDAY, interval="1d", poll_seconds=5)
    assert feed.poll().snapshots == {}
    health = feed.health()[0]
    assert health.last_error == "AAPL: rate limited (HTTP 429)"
    assert feed.next_delay == 120
    assert "AAPL" in feed.poll().snapshots
    assert feed.next_delay == 5 and health.consecutive_errors == 0


def test_timeout_keeps_known_prices(api: FakeAPI) -> None:
    api.route(
        "GET",
        "/v8/finance/chart/AAPL",
        Reply(body=fixture(AAPL_1D)),
        Reply(body=fixture(AAPL_1D), delay=2.0),
    )
    feed = feed_for(api, SATURDAY, interval="1d", timeout_seconds=0.3)
    known = feed.poll().snapshots["AAPL"]
    tick = feed.poll()
    assert tick.snapshots["AAPL"] == known  # kept, with its old time (it goes stale)
    assert feed.health()[0].last_error == "AAPL: timeout (ReadTimeout)"


def test_malformed_answer_is_an_error_not_a_crash(api: FakeAPI) -> None:
    body = copy.deepcopy(fixture(BTC_1D))
    body["chart"]["result"][0]["timestamp"] = 1577836800  # a number, not a list
    api.route("GET", "/v8/finance/chart/AAPL", Reply(body=body))
    feed = feed_for(api, SATURDAY)
    assert feed.poll().snapshots == {}
    error = feed.health()[0].last_error
    assert error is not None and error.startswith("AAPL: malformed chart answer (TypeError")


def test_non_json_answer_is_an_error(api: FakeAPI) -> None:
    api.route("GET", "/v8/finance/chart/AAPL", Reply(200, "<html>consent</html>"))
    feed = feed_for(api, SATURDAY)
    feed.poll()
    assert feed.health()[0].last_error == "AAPL: answer is not JSON"


def test_cache_serves_history_and_fetches_only_the_tail(api: FakeAPI, tmp_path: Path) -> None:
    api.route("GET", "/v8/finance/chart/AAPL", Reply(body=fixture(AAPL_1D)))
    settings = YahooSettings(
        tickers=["AAPL:NASDAQ"], base_url=api.url, interval="1d", warmup_bars=30
    )
    first = yahoo_feed_from_settings(settings, data_dir=tmp_path, clock=lambda: SATURDAY)
    bars_first = [t.bars for t in first.warmup()]
    first.close()
    assert (tmp_path / "cache" / "bars.sqlite").exists()

    api.route("GET", "/v8/finance/chart/AAPL", Reply(404, NOT_FOUND))  # Yahoo is down now
    second = yahoo_feed_from_settings(settings, data_dir=tmp_path, clock=lambda: SATURDAY)
    assert [t.bars for t in second.warmup()] == bars_first  # exact, from the cache
    second_call = api.calls("/v8/finance/chart/AAPL")[-1]
    assert second_call.arg("period1") == str(int(utc(2020, 11, 6, 14, 30).timestamp()))
    second.close()


def test_bar_cache_round_trips_exact_decimals(tmp_path: Path) -> None:
    cache = BarCache(tmp_path / "bars.sqlite", "yahoo")
    bars = parse_chart("AAPL", fixture(AAPL_1D)).bars
    cache.put("1d", bars)
    cache.put("1d", bars[:3])  # a re-fetch replaces, never duplicates
    assert cache.get("AAPL", "1d") == bars
    assert cache.get("AAPL", "1m") == [] and cache.get("MSFT", "1d") == []
    assert cache.get("AAPL", "1d", since=bars[-2].time) == bars[-2:]
    cache.close()


@pytest.mark.asyncio
async def test_next_tick_polls_and_stops_when_closed(api: FakeAPI) -> None:
    api.route("GET", "/v8/finance/chart/AAPL", Reply(body=fixture(AAPL_1D)))
    feed = feed_for(api, SATURDAY, interval="1d", poll_seconds=0.01)
    tick = await asyncio.wait_for(feed.next_tick(), timeout=10)
    assert tick is not None and "AAPL" in tick.snapshots
    feed.close()
    assert await feed.next_tick() is None


def test_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown venue 'LSE'"):
        YahooSettings(tickers=["VOD:LSE"])
    with pytest.raises(ValueError, match="unsupported interval"):
        YahooSettings(interval="3m")
    assert EquitySpec.parse(" brk-b : nyse ") == EquitySpec("BRK-B", "NYSE")
    with pytest.raises(ValueError, match="at least one ticker"):
        YahooFeed([], YahooChartClient("http://127.0.0.1:9"))
