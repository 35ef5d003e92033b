"""One server on two live sources at once: CoinGecko crypto and Yahoo equities, both from local
servers speaking their documented APIs. Crypto trades around the clock; the equity agent trades
only in the NASDAQ session (the exchange calendar decides, at the real time of the run)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from conftest import serve
from fakeapi import FakeAPI, Reply, Request
from test_mixed_venues import chart_answer
from test_outage_coingecko import CHART, PRICE, Market, wait_for

from phantomex.market.calendars import session_at


def live_chart(request: Request) -> Reply:
    """Yahoo's 1-minute chart answer for the 30 minutes before now."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    stamps = [int((now - timedelta(minutes=m)).timestamp()) for m in range(30, 0, -1)]
    closes = [round(190 + 0.01 * i, 2) for i in range(len(stamps))]
    return Reply(body=chart_answer(stamps, closes, int(time.time())))


def test_crypto_and_equity_agents_on_coingecko_and_yahoo(tmp_path: Path) -> None:
    market = Market()
    with FakeAPI() as gecko, FakeAPI() as yahoo:
        gecko.route("GET", PRICE, market.simple_price)
        gecko.route("GET", CHART, market.market_chart)
        yahoo.route("GET", "/v8/finance/chart/AAPL", live_chart)
        env = {
            "PHANTOMEX_SOURCES": '["coingecko", "yahoo"]',
            "PHANTOMEX_COINGECKO": json.dumps(
                {"coins": ["BTC"], "base_url": gecko.url + "/api/v3", "poll_seconds": 0.5}
            ),
            "PHANTOMEX_YAHOO": json.dumps(
                {
                    "tickers": ["AAPL:NASDAQ"],
                    "base_url": yahoo.url,
                    "poll_seconds": 0.5,
                    "cache": False,
                    "warmup_bars": 10,
                }
            ),
            "PHANTOMEX_DEMO": "false",
        }
        with serve(tmp_path / "data", **env) as server:
            sources = {s["source"]: s for s in server.get("/api/sources")["sources"]}
            assert set(sources) == {"coingecko", "yahoo"}
            ids = {}
            for name, symbol, source in (("coin", "BTC", "coingecko"), ("stock", "AAPL", "yahoo")):
                agent = server.post(
                    "/api/agents",
                    {"name": name, "brain": "rsi", "symbols": [symbol], "source": source},
                )
                ids[name] = agent["id"]
            wait_for(
                "prices from both sources",
                lambda: {"BTC", "AAPL"} <= {p["symbol"] for p in server.get("/api/market/prices")},
            )

            def order(name: str, symbol: str, **size: str) -> dict[str, Any]:
                body = {"action": "buy", "symbol": symbol, **size}
                result: dict[str, Any] = server.post(f"/api/agents/{ids[name]}/orders", body)
                return result

            coin = order("coin", "BTC", notional="50")
            assert coin["status"] == "executed", coin
            stock = order("stock", "AAPL", quantity="1")
            session = session_at("XNAS", datetime.now(UTC))
            if session.open:
                assert stock["status"] == "executed", stock
            else:  # a weekend, a holiday or outside 9:30-16:00 New York: held until the open
                assert stock["status"] == "held", stock
                assert stock["reason"].startswith("market closed: next open"), stock
            assert server.get("/api/audit")["ok"] is True
