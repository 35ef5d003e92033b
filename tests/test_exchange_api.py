"""Exchange trading end to end: a real server (uvicorn, SQLite) whose ccxt clients talk to a
local server speaking Binance's documented REST API; driven over REST and the CLI."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
import uvicorn
from fakeapi import FakeAPI, Reply, Request, fixture
from typer.testing import CliRunner

from phantomex.api.app import create_app
from phantomex.broker.venues import ExchangeSettings
from phantomex.cli.main import app as cli_app
from phantomex.config import Settings

API_KEY = "testnet-key-5f1c9a7e"
SECRET = "testnet-secret-0b4d2e8c"
FILL_PRICE = "4000.00000000"


def order_answer(request: Request) -> Reply:
    """The documented FULL answer for the order actually sent: one fill at 4000 USDT."""
    sent = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
    body = fixture("binance/order_market_full.json")
    qty = Decimal(sent["quantity"])
    body |= {
        "symbol": sent["symbol"],
        "side": sent["side"],
        "clientOrderId": sent["newClientOrderId"],
        "origQty": sent["quantity"],
        "executedQty": sent["quantity"],
        "cummulativeQuoteQty": str(qty * Decimal(FILL_PRICE)),
        "fills": [
            {
                "price": FILL_PRICE,
                "qty": sent["quantity"],
                "commission": str(qty * Decimal(FILL_PRICE) / 1000),
                "commissionAsset": "USDT",
            }
        ],
    }
    return Reply(body=body)


@pytest.fixture(scope="module")
def binance() -> Iterator[FakeAPI]:
    with FakeAPI() as api:
        api.route("GET", "/api/v3/exchangeInfo", Reply(body=fixture("binance/exchange_info.json")))
        api.route("POST", "/api/v3/order", order_answer)
        api.route("DELETE", "/api/v3/order", Reply(body=fixture("binance/order_cancel.json")))
        api.route("GET", "/api/v3/openOrders", Reply(body=fixture("binance/open_orders.json")))
        api.route("GET", "/api/v3/account", Reply(body=fixture("binance/account.json")))
        yield api


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, binance: FakeAPI) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    urls = {"public": f"{binance.url}/api/v3", "private": f"{binance.url}/api/v3"}
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("data"),
        port=port,
        demo=False,
        replay_speed=1.0,
        exchange=ExchangeSettings(api_urls={"binance-testnet": urls}, timeout_ms=3000),
    )
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    uv.should_exit = True
    thread.join(timeout=15)


def call(method: str, url: str, body: Any = None) -> httpx.Response:
    return httpx.request(method, url, json=body, timeout=30)


def test_testnet_trading_over_rest_and_the_cli(server: str, binance: FakeAPI) -> None:
    spec = {
        "name": "ex",
        "brain": "rsi",
        "symbols": ["BTC"],
        "allowance": "1000",
        "interval_seconds": 604800,
    }
    agent = call("POST", f"{server}/api/agents", spec).json()
    venue_url = f"{server}/api/agents/{agent['id']}/venue"

    # no keys yet; real money is off by default
    r = call("PUT", venue_url, {"venue": "binance-testnet"})
    assert r.status_code == 422 and "no API keys" in r.text
    r = call(
        "PUT", f"{server}/api/exchange/keys/binance-testnet", {"api_key": API_KEY, "secret": SECRET}
    )
    assert r.status_code == 200 and API_KEY not in r.text and SECRET not in r.text
    assert r.json()["available"] is True
    r = call("PUT", venue_url, {"venue": "binance"})
    assert r.status_code == 422 and "allow_real_money" in r.text
    assert call("PUT", venue_url, {"venue": "binance-testnet"}).json()["venue"] == "binance-testnet"
    venues = call("GET", f"{server}/api/exchange/venues").text
    assert API_KEY not in venues and SECRET not in venues and agent["id"] in venues

    # over the default 20 USD cap: refused and recorded like a risk refusal, nothing sent
    orders = f"{server}/api/agents/{agent['id']}/orders"
    rec = call("POST", orders, {"action": "buy", "symbol": "BTC", "notional": "500"}).json()
    assert rec["status"] == "rejected" and "per-order cap 20" in rec["reason"]
    assert [r for r in binance.calls("/api/v3/order") if r.method == "POST"] == []
    events = call("GET", f"{server}/api/risk/events?agent_id={agent['id']}").json()
    assert any("per-order cap" in e["detail"] for e in events)

    # a small order goes to the exchange; the ledger books the exchange's fill
    rec = call("POST", orders, {"action": "buy", "symbol": "BTC", "notional": "10"}).json()
    assert rec["status"] == "executed", rec
    (sent,) = [r for r in binance.calls("/api/v3/order") if r.method == "POST"]
    assert sent.headers["x-mbx-apikey"] == API_KEY
    trades = call("GET", f"{server}/api/trades?agent_id={agent['id']}").json()
    trade = trades["trades"][0] if isinstance(trades, dict) else trades[0]
    assert Decimal(trade["price"]) == Decimal(FILL_PRICE)
    qty = Decimal(trade["quantity"])
    assert Decimal(trade["fee"]) == qty * Decimal(FILL_PRICE) / 1000
    view = call("GET", f"{server}/api/agents/{agent['id']}").json()
    cash = Decimal(view["wallet"]["cash"])
    assert cash == Decimal(1000) - qty * Decimal(FILL_PRICE) * Decimal("1.001")  # exact

    # reconciliation: the documented account holds no USDT and other coins; reported, not fixed
    runner = CliRunner()
    result = runner.invoke(cli_app, ["--url", server, "exchange", "reconcile"])
    assert result.exit_code == 1, result.output
    assert "USDT ledger" in result.output and "short" in result.output
    assert "not placed by PhantomEx" in result.output
    after = call("GET", f"{server}/api/agents/{agent['id']}").json()
    assert Decimal(after["wallet"]["cash"]) == cash
    result = runner.invoke(cli_app, ["--url", server, "exchange", "venues", "--json"])
    assert result.exit_code == 0 and "binance-testnet" in result.output

    # the global kill switch cancels the open orders on the exchange account
    assert call("POST", f"{server}/api/kill-switch", {"agent_id": None}).status_code == 200
    cancels = [r for r in binance.calls("/api/v3/order") if r.method == "DELETE"]
    assert [(r.arg("symbol"), r.arg("orderId")) for r in cancels] == [("LTCBTC", "1")]
    call("POST", f"{server}/api/kill-switch/release")
