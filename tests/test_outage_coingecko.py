"""A CoinGecko outage in the middle of a run, on a real server: agents stop trading on the stale
price, the API shows the source stale, trading resumes when prices return, the audit passes."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from conftest import ServerHandle, serve
from fakeapi import FakeAPI, Reply, Request

TIMEOUT = 90.0
PRICE = "/api/v3/simple/price"
CHART = "/api/v3/coins/bitcoin/market_chart"


def price_at(second: int) -> int:
    """BTC steps between 100 and 99 every two seconds, so an RSI(2) agent keeps trading."""
    return 100 if (second // 2) % 2 == 0 else 99


class Market:
    """The fake CoinGecko: documented shapes, prices from the wall clock, switchable outage."""

    def __init__(self) -> None:
        self.down = False
        self.failed = 0

    def simple_price(self, request: Request) -> Reply:
        if self.down:  # a CDN's rate-limit page first, then server errors
            self.failed += 1
            if self.failed == 1:
                html = "<html><body>Error 1015: rate limited</body></html>"
                return Reply(429, html, {"Content-Type": "text/html", "Retry-After": "1"})
            html = "<html><body>503 Service Unavailable</body></html>"
            return Reply(503, html, {"Content-Type": "text/html"})
        now = int(time.time())
        return Reply(
            body={"bitcoin": {"usd": price_at(now), "usd_24h_change": 0.5, "last_updated_at": now}}
        )

    def market_chart(self, request: Request) -> Reply:
        now = int(time.time())
        points = [[s * 1000, price_at(s)] for s in range(now - 120, now)]
        return Reply(body={"prices": points, "market_caps": [], "total_volumes": []})


def wait_for(what: str, check: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def coingecko_health(server: ServerHandle) -> dict[str, Any]:
    [row] = [s for s in server.get("/api/sources")["sources"] if s["source"] == "coingecko"]
    return row


def trades(server: ServerHandle) -> list[dict[str, Any]]:
    return list(server.get("/api/trades", limit=1000)["trades"])


def test_agents_stop_on_stale_prices_and_resume_after_an_outage(tmp_path: Path) -> None:
    market = Market()
    with FakeAPI() as api:
        api.route("GET", PRICE, market.simple_price)
        api.route("GET", CHART, market.market_chart)
        config = {
            "coins": ["BTC"],
            "base_url": api.url + "/api/v3",
            "poll_seconds": 0.2,
            "bar_seconds": 1,
            "stale_after_seconds": 3,
            "max_backoff_seconds": 1,
            "timeout_seconds": 2,
        }
        env = {
            "PHANTOMEX_SOURCES": '["coingecko"]',
            "PHANTOMEX_COINGECKO": json.dumps(config),
            "PHANTOMEX_DEMO": "false",
        }
        with serve(tmp_path / "data", **env) as server:
            agent = server.post(
                "/api/agents",
                {
                    "name": "Gecko RSI",
                    "brain": "rsi",
                    "params": {"period": 2, "oversold": 45, "overbought": 55},
                    "symbols": ["btc"],
                    "source": "coingecko",
                    "interval_seconds": 1,
                    "risk": {
                        "cooldown_seconds": 0,
                        "max_price_age_seconds": 3,
                        "stop_loss_pct": None,
                        "take_profit_pct": None,
                        "daily_loss_limit_pct": None,
                        "max_drawdown_pct": None,
                    },
                },
            )
            wrong = httpx.post(
                f"{server.url}/api/agents",
                json={"name": "Y", "brain": "rsi", "symbols": ["BTC"], "source": "yahoo"},
                timeout=30,
            )
            assert wrong.status_code == 422
            assert wrong.json()["error"]["field"] == "source"
            assert "unknown source 'yahoo'" in wrong.json()["error"]["message"]

            # 1. Live prices: the agent trades, the source is fresh.
            wait_for("two trades on live prices", lambda: len(trades(server)) >= 2)
            assert coingecko_health(server)["stale"] is False
            history = server.get("/api/market/history", symbol="BTC", limit=500)["bars"]
            assert len(history) >= 100  # warmed up from market_chart, then built live

            # 2. Outage: the source turns stale and nothing trades on the old price.
            market.down = True
            wait_for("the source to turn stale", lambda: coingecko_health(server)["stale"])
            stale_from = datetime.now(UTC)
            health = coingecko_health(server)
            assert health["consecutive_errors"] >= 1
            assert health["last_error"] == "HTTP 503: non-JSON body (text/html)"
            assert health["prices"]["BTC"]["stale"] is True
            rc, out, _ = server.cli("sources")
            assert rc == 0 and "coingecko" in out and "stale" in out
            order = server.post(
                f"/api/agents/{agent['id']}/orders",
                {"action": "buy", "symbol": "BTC", "notional": "100"},
            )
            assert order["status"] == "rejected" and "stale" in order["reason"]
            decided = len(server.get(f"/api/agents/{agent['id']}/decisions", limit=1000))
            wait_for(
                "the agent to keep deciding during the outage",
                lambda: (
                    len(server.get(f"/api/agents/{agent['id']}/decisions", limit=1000))
                    >= decided + 3
                ),
            )
            stale_until = datetime.now(UTC)

            # 3. Prices return: the source is fresh again and trading resumes.
            market.down = False
            wait_for("the source to recover", lambda: not coingecko_health(server)["stale"])
            during = len(trades(server))
            wait_for("a trade after the outage", lambda: len(trades(server)) > during)

            decisions = server.get(f"/api/agents/{agent['id']}/decisions", limit=1000)
            in_outage = [
                d
                for d in decisions
                if stale_from <= datetime.fromisoformat(d["time"]) <= stale_until
            ]
            assert in_outage and {d["status"] for d in in_outage} <= {"held", "rejected"}
            assert not [
                t
                for t in trades(server)
                if stale_from <= datetime.fromisoformat(t["time"]) <= stale_until
            ]
            rc, out, err = server.cli("audit")
            assert rc == 0, out + err
            rc, out, _ = server.cli("sources", "--json")
            assert rc == 0 and json.loads(out)[0]["stale"] is False

        # 4. Live snapshots are stored once per CoinGecko update, none during the outage.
        with sqlite3.connect(tmp_path / "data" / "phantomex.db") as db:
            rows = db.execute("SELECT time FROM price_snapshots WHERE symbol = 'BTC'").fetchall()
        times = [datetime.fromisoformat(r[0]).replace(tzinfo=UTC) for r in rows]
        assert times and len(times) == len(set(times))
        # last_updated_at is whole seconds: an answer right after the outage may carry the second
        # in which the outage ended
        ended = stale_until.replace(microsecond=0)
        assert not [t for t in times if stale_from <= t < ended]
