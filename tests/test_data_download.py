"""``phantomex data download|import|list`` against a local server speaking Binance's REST API."""

from __future__ import annotations

import functools
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import free_port, run_cli, server_env
from fakeapi import FakeAPI, Reply, Request, fixture

from phantomex.domain.models import Bar
from phantomex.market.datastore import DataStore
from phantomex.market.download import DownloadError, download, make_exchange, point_at
from phantomex.market.loaders import load_dataset

START = datetime(2023, 4, 10, tzinfo=UTC)


def exchange_info(*pairs: tuple[str, str]) -> dict[str, object]:
    """``GET /api/v3/exchangeInfo`` in the documented shape, for the given (base, quote)."""
    return {
        "timezone": "UTC",
        "serverTime": 1_700_000_000_000,
        "rateLimits": [],
        "exchangeFilters": [],
        "symbols": [
            {
                "symbol": base + quote,
                "status": "TRADING",
                "baseAsset": base,
                "baseAssetPrecision": 8,
                "quoteAsset": quote,
                "quotePrecision": 8,
                "quoteAssetPrecision": 8,
                "orderTypes": ["LIMIT", "MARKET"],
                "icebergAllowed": True,
                "ocoAllowed": True,
                "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {
                        "filterType": "PRICE_FILTER",
                        "minPrice": "0.01",
                        "maxPrice": "1000000.00",
                        "tickSize": "0.01",
                    },
                    {
                        "filterType": "LOT_SIZE",
                        "minQty": "0.00001",
                        "maxQty": "9000.00000000",
                        "stepSize": "0.00001",
                    },
                ],
                "permissions": ["SPOT"],
                "permissionSets": [["SPOT"]],
                "defaultSelfTradePreventionMode": "NONE",
                "allowedSelfTradePreventionModes": ["NONE"],
            }
            for base, quote in pairs
        ],
    }


@functools.cache
def demo_btc() -> list[Bar]:
    return load_dataset("demo", ["BTC"])["BTC"]


class Klines:
    """``GET /api/v3/klines`` over the shipped real BTC candles, in the documented row shape
    (tests/fixtures/api/binance/klines.json): paged by startTime/endTime/limit (max 1000)."""

    def __init__(self) -> None:
        self.bars = [b for b in demo_btc() if START <= b.time < START + timedelta(days=2)]
        assert len(fixture("binance/klines.json")[0]) == 12

    def __call__(self, request: Request) -> Reply:
        if request.arg("symbol") != "BTCUSDT":
            return Reply(400, fixture("binance/error_invalid_symbol.json"))
        start = int(request.arg("startTime") or 0)
        end = int(request.arg("endTime") or 2**62)
        limit = min(int(request.arg("limit") or 500), 1000)
        rows = []
        for bar in self.bars:
            ms = int(bar.time.timestamp() * 1000)
            if start <= ms <= end:
                rows.append(
                    [
                        ms,
                        str(bar.open),
                        str(bar.high),
                        str(bar.low),
                        str(bar.close),
                        str(bar.volume),
                        ms + 59_999,
                        "0",
                        1,
                        "0",
                        "0",
                        "0",
                    ]
                )
                if len(rows) == limit:
                    break
        return Reply(body=rows)


@pytest.fixture
def binance() -> FakeAPI:
    with FakeAPI() as api:
        api.route("GET", "/api/v3/exchangeInfo", Reply(body=exchange_info(("BTC", "USDT"))))
        api.route("GET", "/api/v3/klines", Klines())
        yield api


def _exchange(api: FakeAPI):  # type: ignore[no-untyped-def]
    ex = make_exchange("binance")
    point_at(ex, api.url)
    ex.rateLimit = 1  # the local server needs no throttling
    return ex


def test_download_pages_resumes_and_keeps_exact_prices(binance: FakeAPI, tmp_path: Path) -> None:
    store = DataStore(tmp_path)
    until = START + timedelta(minutes=2500)
    first = download(
        _exchange(binance), store, "bn", "BTC", since=START, until=START + timedelta(minutes=1200)
    )
    assert first.symbol == "BTC" and first.market == "BTC/USDT"
    assert first.fetched == 1200 and first.stored == 1200
    pages = len(binance.calls("/api/v3/klines"))
    assert pages == 2  # 1000 + 200: paginated at Binance's maximum page
    again = download(_exchange(binance), store, "bn", "BTC", since=START, until=until)
    assert again.fetched == 1300, "the second run resumes after the newest stored candle"
    starts = [int(r.arg("startTime") or 0) for r in binance.calls("/api/v3/klines")[pages:]]
    assert starts[0] == int((START + timedelta(minutes=1200)).timestamp() * 1000)
    stored = store.load("bn", "BTC", "1m")
    real = [b for b in demo_btc() if START <= b.time < until]
    assert stored == real  # every candle, exact Decimals, in order, none duplicated


def test_garbage_and_errors_never_become_candles(binance: FakeAPI, tmp_path: Path) -> None:
    good = [
        1_681_084_800_000,
        "28000.1",
        "28010",
        "27990",
        "28005",
        "1.5",
        0,
        "0",
        1,
        "0",
        "0",
        "0",
    ]
    garbage = [
        [1_681_084_860_000, "NaN", "1", "1", "1", "1"],
        [1_681_084_920_000, "-5", "1", "1", "1", "1"],
        [1_681_084_980_000, "10", "9", "11", "10", "1"],  # high below low
        [1_681_085_040_000, None, None, None, None, None],
        ["not a time", "1", "1", "1", "1", "1"],
    ]
    binance.route("GET", "/api/v3/klines", Reply(body=[good, *garbage]), Reply(body=[]))
    store = DataStore(tmp_path)
    result = download(_exchange(binance), store, "bn", "BTC", since=START - timedelta(days=1))
    assert result.fetched == 1
    assert store.load("bn", "BTC", "1m")[0].open == Decimal("28000.1")

    with pytest.raises(DownloadError, match="no market DOGE/USDT"):
        download(_exchange(binance), store, "bn", "DOGE", since=START)
    binance.route("GET", "/api/v3/klines", Reply(429, "", {"Retry-After": "1"}))
    ex = _exchange(binance)
    with pytest.raises(DownloadError):
        download(ex, store, "bn2", "BTC", since=START)
    assert store.series()[0].bars == 1  # a failed download left the stored data alone


def test_offline_download_fails_with_a_clear_message(tmp_path: Path) -> None:
    ex = make_exchange("binance")
    point_at(ex, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    with pytest.raises(DownloadError, match=r"cannot reach binance.*offline"):
        download(ex, DataStore(tmp_path), "bn", "BTC", since=START)
    with pytest.raises(DownloadError, match="unknown exchange"):
        make_exchange("no-such-exchange")


def test_cli_download_import_list_and_backtest_on_stored_data(
    binance: FakeAPI, tmp_path: Path
) -> None:
    env = server_env(free_port(), tmp_path)
    code, out, err = run_cli(
        "data", "download", "--symbols", "BTC/USDT", "--since", "2023-04-10",
        "--until", "2023-04-10T06:00", "--api-url", binance.url, "--dataset", "bn", env=env,
    )  # fmt: skip
    assert code == 0, err
    assert "360 new candles" in out
    csv = tmp_path / "eth.csv"
    csv.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2023-04-10T00:00:00Z,1850.5,1851,1850,1850.75,10\n"
        "2023-04-10T00:05:00Z,1850.75,1852,1850,1851.25,12\n"
        "2023-04-10T00:10:00Z,oops,1,1,1,1\n"
    )
    code, out, err = run_cli("data", "import", str(csv), "--dataset", "mine", env=env)
    assert code == 0, err
    assert "ETH 5m: 2 candles read; 1 bad rows skipped; 2 stored" in out
    code, out, err = run_cli("data", "list", "--json", env=env)
    listed = json.loads(out)["stored"]
    assert {(r["dataset"], r["symbol"], r["timeframe"], r["bars"]) for r in listed} == {
        ("bn", "BTC", "1m", 360),
        ("mine", "ETH", "5m", 2),
    }
    code, out, err = run_cli(
        "backtest", "--dataset", "bn", "--symbols", "BTC", "--strategy", "rsi", "--json", env=env
    )
    assert code == 0, err
    assert json.loads(out)["bars"] == 360
    code, out, err = run_cli("backtest", "--dataset", "nope", "--strategy", "rsi", env=env)
    assert code != 0 and "unknown dataset 'nope'" in out + err


def test_offline_cli_download_says_what_to_do(tmp_path: Path) -> None:
    env = server_env(free_port(), tmp_path)
    code, _, err = run_cli(
        "data", "download", "--symbols", "BTC", "--since", "2023-04-10",
        "--api-url", f"http://127.0.0.1:{free_port()}", env=env,
    )  # fmt: skip
    assert code == 1
    assert "cannot reach binance" in err and "data import" in err
