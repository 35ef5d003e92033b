"""The exchange broker, its gates, keys at rest, the kill hook and reconciliation, against a
local server speaking Binance's documented REST API (ccxt pointed at it through urls['api'])."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from cryptography.fernet import Fernet
from fakeapi import FakeAPI, Reply, fixture
from sqlalchemy import text

from phantomex.broker.base import OrderRejected
from phantomex.broker.ccxt_broker import CcxtBroker
from phantomex.broker.credentials import Credentials, load_credentials, save_credentials
from phantomex.broker.paper import PaperBrokerConfig
from phantomex.broker.router import VenueRouter
from phantomex.broker.venues import STATE_KEY, ExchangeSettings, Venue, agent_prefix
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Deposit, Fill, Order, OrderType, Side, Snapshot, Wallet
from phantomex.kernel import exchange_setup
from phantomex.kernel.exchange_setup import (
    build_router,
    reconcile_all,
    report_findings,
    set_agent_venue,
)
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.ledger.ledger import Ledger
from phantomex.market import ccxt_client
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.secrets import SecretBox
from phantomex.store.repo import Store

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
AGENT = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
TESTNET = "binance-testnet"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    with FakeAPI() as server:
        server.route(
            "GET", "/api/v3/exchangeInfo", Reply(body=fixture("binance/exchange_info.json"))
        )
        server.route("POST", "/api/v3/order", Reply(body=fixture("binance/order_market_full.json")))
        server.route("DELETE", "/api/v3/order", Reply(body=fixture("binance/order_cancel.json")))
        server.route("GET", "/api/v3/openOrders", Reply(body=fixture("binance/open_orders.json")))
        server.route("GET", "/api/v3/account", Reply(body=fixture("binance/account.json")))
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'px.db'}")
    yield s
    s.close()


@pytest.fixture
def box() -> SecretBox:
    return SecretBox(Fernet.generate_key())


def settings_for(api: FakeAPI, **kw: Any) -> ExchangeSettings:
    urls = {
        "public": f"{api.url}/api/v3",
        "private": f"{api.url}/api/v3",
        "v1": f"{api.url}/api/v1",
    }
    return ExchangeSettings(api_urls={TESTNET: urls, "binance": urls}, timeout_ms=2000, **kw)


def make_router(api: FakeAPI, store: Store, box: SecretBox, **kw: Any) -> VenueRouter:
    settings = settings_for(api, **kw)
    save_credentials(store, box, TESTNET, Credentials(API_KEY, SECRET))
    router = build_router(PaperBrokerConfig(), store, box, settings)
    set_agent_venue(router, store, box, settings, AGENT, TESTNET)
    return router


def wallet_with_btc(quantity: str = "10", cash: str = "100000") -> Wallet:
    ledger = Ledger()
    ledger.open_wallet(Deposit(AGENT, Decimal(cash), NOW, "dep", initial=True))
    buy = Fill(AGENT, "BTC", Side.BUY, Decimal(quantity), Decimal(3000), Decimal(0), NOW, "buy")
    return ledger.apply(buy)


def order(side: Side = Side.SELL, qty: str = "10", key: str = "order:1", **kw: Any) -> Order:
    return Order(
        id="f" * 32,
        agent_id=AGENT,
        symbol="BTC",
        side=side,
        quantity=Decimal(qty),
        idempotency_key=key,
        **kw,
    )


def btc(price: str = "4000") -> Snapshot:
    return Snapshot("BTC", NOW, Decimal(price))


def posted(api: FakeAPI) -> list[dict[str, str]]:
    return [
        {k: v[0] for k, v in parse_qs(r.body.decode()).items()}
        for r in api.calls("/api/v3/order")
        if r.method == "POST"
    ]


# -- keys at rest --------------------------------------------------------------------------------
def test_keys_are_encrypted_in_the_database_and_never_printed(store: Store, box: SecretBox) -> None:
    creds = Credentials(API_KEY, SECRET)
    save_credentials(store, box, TESTNET, creds)
    with store.engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM exchange_credentials")).all()
    dump = repr(rows)
    assert len(rows) == 1 and TESTNET in dump
    assert API_KEY not in dump and SECRET not in dump
    assert API_KEY[:12] not in dump and SECRET[-12:] not in dump
    assert load_credentials(store, box, TESTNET) == creds
    assert API_KEY not in repr(creds) and SECRET not in repr(creds)
    with pytest.raises(ValueError):
        save_credentials(store, box, TESTNET, Credentials(" ", SECRET))


# -- gates ---------------------------------------------------------------------------------------
def test_agents_trade_on_paper_unless_explicitly_set(
    api: FakeAPI, store: Store, box: SecretBox
) -> None:
    settings = settings_for(api)
    save_credentials(store, box, TESTNET, Credentials(API_KEY, SECRET))
    router = build_router(PaperBrokerConfig(), store, box, settings)
    fill = router.submit(order(), wallet_with_btc(), btc(), NOW)
    assert fill is not None and fill.price == Decimal(4000)  # a paper fill
    assert posted(api) == []


def test_venue_needs_keys_and_real_money_needs_its_own_setting(
    api: FakeAPI, store: Store, box: SecretBox
) -> None:
    settings = settings_for(api)
    router = build_router(PaperBrokerConfig(), store, box, settings)
    with pytest.raises(ValueError, match="no API keys"):
        set_agent_venue(router, store, box, settings, AGENT, TESTNET)
    save_credentials(store, box, "binance", Credentials(API_KEY, SECRET))
    with pytest.raises(ValueError, match="real money"):
        set_agent_venue(router, store, box, settings, AGENT, "binance")
    with pytest.raises(ValueError, match="unknown exchange"):
        set_agent_venue(router, store, box, settings, AGENT, "nosuchexchange-testnet")
    assert store.get_state(STATE_KEY) is None  # nothing was set
    save_credentials(store, box, TESTNET, Credentials(API_KEY, SECRET))
    assert set_agent_venue(router, store, box, settings, AGENT, TESTNET) == TESTNET
    assert store.get_state(STATE_KEY) == {"agents": {AGENT: TESTNET}}
    # the choice survives a restart, and paper is one call away
    again = build_router(PaperBrokerConfig(), store, box, settings)
    assert again.book.venue_of(AGENT) == Venue(TESTNET, "binance", True)
    assert set_agent_venue(again, store, box, settings, AGENT, "paper") == "paper"
    assert again.book.venue_of(AGENT) is None


def test_real_money_venue_is_refused_at_order_time_by_default(api: FakeAPI) -> None:
    client = ccxt_client.sync_client(
        "binance", api_urls=settings_for(api).api_urls["binance"], api_key="k", secret="s"
    )
    broker = CcxtBroker(Venue("binance", "binance", False), client, settings_for(api))
    with pytest.raises(OrderRejected, match="real money, which is off"):
        broker.submit(order(), wallet_with_btc(), btc(), NOW)
    assert posted(api) == []


def test_order_over_the_per_order_cap_is_refused_not_resized(
    api: FakeAPI, store: Store, box: SecretBox
) -> None:
    router = make_router(api, store, box)  # default caps: 20 per order
    with pytest.raises(OrderRejected, match="over the per-order cap 20"):
        router.submit(order(Side.BUY, "0.001"), wallet_with_btc(), btc("30000"), NOW)
    assert posted(api) == []


def test_daily_cap_counts_filled_notional(api: FakeAPI, store: Store, box: SecretBox) -> None:
    router = make_router(
        api, store, box, order_cap_usd=Decimal(45000), daily_cap_usd=Decimal(50000)
    )
    router.submit(order(), wallet_with_btc(), btc(), NOW)  # fills 10 BTC for 39983 USDT
    with pytest.raises(OrderRejected, match="over the daily cap 50000"):
        router.submit(order(qty="3", key="order:2"), wallet_with_btc(), btc(), NOW)
    assert len(posted(api)) == 1
    # a new UTC day starts a new allowance
    tomorrow = NOW + timedelta(days=1)
    fill = router.submit(
        order(qty="3", key="order:3"),
        wallet_with_btc(),
        Snapshot("BTC", tomorrow, Decimal(4000)),
        tomorrow,
    )
    assert fill is not None and len(posted(api)) == 2


def test_limit_orders_are_refused_on_exchanges(api: FakeAPI, store: Store, box: SecretBox) -> None:
    router = make_router(api, store, box)
    with pytest.raises(OrderRejected, match="market orders only"):
        router.submit(
            order(type=OrderType.LIMIT, limit_price=Decimal(1)), wallet_with_btc(), btc(), NOW
        )


# -- fills ---------------------------------------------------------------------------------------
def test_fill_uses_the_exchange_price_and_fee_and_the_ledger_applies_it(
    api: FakeAPI, store: Store, box: SecretBox
) -> None:
    router = make_router(
        api, store, box, order_cap_usd=Decimal(50000), daily_cap_usd=Decimal(50000)
    )
    wallet = wallet_with_btc()
    fill = router.submit(order(), wallet, btc(), NOW)
    assert fill is not None
    # the documented FULL answer: 10 BTC in five fills worth 39983 USDT, commission 39.983 USDT
    assert (fill.quantity, fill.price, fill.fee) == (
        Decimal(10),
        Decimal("3998.3"),
        Decimal("39.983"),
    )
    assert fill.idempotency_key == "order:1" and fill.order_id == "f" * 32
    ledger = Ledger()
    ledger.restore(wallet)
    after = ledger.apply(fill)
    assert after.cash == wallet.cash + Decimal("39983") - Decimal("39.983")  # exact
    assert "BTC" not in after.positions
    sent = posted(api)[0]
    assert (sent["symbol"], sent["side"], sent["type"], sent["quantity"]) == (
        "BTCUSDT",
        "SELL",
        "MARKET",
        "10",
    )
    assert (
        sent["newClientOrderId"].startswith(agent_prefix(AGENT))
        and len(sent["newClientOrderId"]) <= 36
    )
    assert "signature" in sent  # signed with the stored key
    assert api.calls("/api/v3/order")[0].headers["x-mbx-apikey"] == API_KEY
    # the same order key is never sent twice
    with pytest.raises(OrderRejected, match="duplicate"):
        router.submit(order(), wallet, btc(), NOW)


def test_fee_taken_in_the_bought_asset_reduces_the_quantity(
    api: FakeAPI, store: Store, box: SecretBox
) -> None:
    answer = fixture("binance/order_market_full.json")
    answer["side"] = "BUY"
    for f in answer["fills"]:
        f["commission"], f["commissionAsset"] = "0.00100000", "BTC"
    api.route("POST", "/api/v3/order", Reply(body=answer))
    router = make_router(
        api, store, box, order_cap_usd=Decimal(50000), daily_cap_usd=Decimal(50000)
    )
    fill = router.submit(order(Side.BUY), wallet_with_btc("1", cash="50000"), btc(), NOW)
    assert fill is not None
    assert fill.quantity == Decimal("9.995")  # 10 bought, 5 x 0.001 BTC commission
    assert fill.quantity * fill.price + fill.fee == Decimal(39983)  # cash paid is exact


@pytest.mark.parametrize(
    "reply,match",
    [
        (
            Reply(
                400,
                {"code": -2010, "msg": "Account has insufficient balance for requested action."},
            ),
            "refused the order",
        ),
        (Reply(400, fixture("binance/error_invalid_symbol.json")), "refused the order"),
        (
            Reply(429, {"code": -1003, "msg": "Too many requests."}, headers={"Retry-After": "3"}),
            "rate limiting",
        ),
        (Reply(body=fixture("binance/order_market_full.json"), delay=2.0), "status unknown"),
        (Reply(503, "Service Unavailable"), "status unknown"),
    ],
)
def test_exchange_errors_become_clear_refusals(
    api: FakeAPI, store: Store, box: SecretBox, reply: Reply, match: str
) -> None:
    api.route("POST", "/api/v3/order", reply)
    router = make_router(
        api, store, box, order_cap_usd=Decimal(50000), daily_cap_usd=Decimal(50000)
    )
    router.brokers[TESTNET].client.timeout = 500
    with pytest.raises(OrderRejected, match=match):
        router.submit(order(), wallet_with_btc(), btc(), NOW)


def test_unfilled_answer_is_no_fill(api: FakeAPI, store: Store, box: SecretBox) -> None:
    answer = fixture("binance/order_market_full.json")
    answer |= {
        "status": "EXPIRED",
        "executedQty": "0.00000000",
        "cummulativeQuoteQty": "0.00000000",
        "fills": [],
    }
    api.route("POST", "/api/v3/order", Reply(body=answer))
    router = make_router(
        api, store, box, order_cap_usd=Decimal(50000), daily_cap_usd=Decimal(50000)
    )
    with pytest.raises(OrderRejected, match="did not fill"):
        router.submit(order(), wallet_with_btc(), btc(), NOW)


# -- kill switch ---------------------------------------------------------------------------------
def test_kill_cancels_the_agents_open_orders_on_the_exchange(
    api: FakeAPI, store: Store, box: SecretBox
) -> None:
    mine = copy.deepcopy(fixture("binance/open_orders.json")[0])
    mine |= {"orderId": 7, "clientOrderId": agent_prefix(AGENT) + "0" * 24}
    api.route("GET", "/api/v3/openOrders", Reply(body=[*fixture("binance/open_orders.json"), mine]))
    router = make_router(api, store, box)
    router.cancel_all(AGENT)  # what the kernel's kill (and delete) path calls per agent
    cancels = [r for r in api.calls("/api/v3/order") if r.method == "DELETE"]
    assert [(r.arg("symbol"), r.arg("orderId")) for r in cancels] == [("LTCBTC", "7")]
    # the global kill hook cancels every open order on the account
    assert router.cancel_exchange_orders() == {TESTNET: ["1", "7"]}


def test_kill_goes_on_when_the_exchange_fails(api: FakeAPI, store: Store, box: SecretBox) -> None:
    api.route("GET", "/api/v3/openOrders", Reply(503, "Service Unavailable"))
    router = make_router(api, store, box)
    assert router.cancel_all(AGENT) == []
    assert router.cancel_exchange_orders() == {TESTNET: []}


def test_start_up_reset_leaves_exchange_orders_alone(
    api: FakeAPI, store: Store, box: SecretBox
) -> None:
    router = make_router(api, store, box)
    router.cancel_all()  # the kernel's load() resets paper state this way
    assert api.calls("/api/v3/openOrders") == []


# -- reconciliation ------------------------------------------------------------------------------
def account(balances: dict[str, str]) -> dict[str, Any]:
    body = fixture("binance/account.json")
    body["balances"] = [
        {"asset": a, "free": v, "locked": "0.00000000"} for a, v in balances.items()
    ]
    return body


def test_reconciliation_reports_a_difference_and_never_adjusts(
    api: FakeAPI, store: Store, box: SecretBox
) -> None:
    api.route(
        "GET",
        "/api/v3/account",
        Reply(body=account({"USDT": "91000.00000000", "BTC": "10.00000000"})),
    )
    api.route("GET", "/api/v3/openOrders", Reply(body=[]))
    router = make_router(api, store, box)
    wallet = wallet_with_btc()  # cash 70000 + 10 BTC
    wallets = {AGENT: wallet, "paper-agent": Wallet("paper-agent", cash=Decimal(5))}
    clean = reconcile_all(router, {AGENT: wallet_with_btc("10", cash="121000")})
    assert clean[0].clean, clean[0].lines()

    reports = reconcile_all(router, wallets)
    assert len(reports) == 1 and reports[0].agents == [AGENT]
    (usdt,) = reports[0].differences
    assert (usdt.asset, usdt.ledger, usdt.exchange, usdt.status) == (
        "USDT",
        Decimal(70000),
        Decimal(91000),
        "surplus",
    )
    assert wallets[AGENT] == wallet_with_btc()  # the ledger was not touched

    # the documented account: no USDT at all, BTC and LTC the ledger doesn't know, an open order
    api.route("GET", "/api/v3/account", Reply(body=fixture("binance/account.json")))
    api.route("GET", "/api/v3/openOrders", Reply(body=fixture("binance/open_orders.json")))
    report = reconcile_all(router, wallets)[0]
    status = {a.asset: a.status for a in report.differences}
    assert status == {"USDT": "short", "BTC": "surplus", "LTC": "surplus"}
    assert (
        report.open_orders[0]["client_order_id"] == "myOrder1" and not report.open_orders[0]["ours"]
    )
    assert any("not placed by PhantomEx" in line for line in report.lines())
    data = report.as_dict()
    assert data["clean"] is False and data["assets"][0]["asset"] == "BTC"

    recorded: list[tuple[str, str]] = []
    report_findings([report], lambda venue, line: recorded.append((venue, line)))
    assert len(recorded) == 4 and all(v == TESTNET for v, _ in recorded)


def test_reconciliation_reports_an_unreachable_exchange(
    api: FakeAPI, store: Store, box: SecretBox
) -> None:
    api.route(
        "GET",
        "/api/v3/account",
        Reply(401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}),
    )
    router = make_router(api, store, box)
    (report,) = reconcile_all(router, {AGENT: wallet_with_btc()})
    assert report.error and "-2015" in report.error
    assert report.lines() == [f"{TESTNET}: could not reconcile: {report.error}"]


# -- wired into a real kernel --------------------------------------------------------------------
def test_kernel_start_up_reconciles_and_global_kill_cancels(
    api: FakeAPI, store: Store, box: SecretBox
) -> None:
    data = {s: bars[:60] for s, bars in load_dataset("demo", ["BTC"]).items()}
    router = make_router(api, store, box)
    kernel = Kernel(
        store,
        ReplayFeed(data, speed=0, warmup_bars=10),
        router,
        config=KernelConfig(persist_snapshots=False),
    )
    kernel.load()
    kernel.warm_up()
    agent = kernel.create_agent(
        AgentSpec(name="ex", brain="rsi", symbols=["BTC"], allowance=Decimal(1000))
    )
    set_agent_venue(router, store, box, settings_for(api), agent.id, TESTNET)

    (report,) = exchange_setup.attach(kernel)
    assert report.agents == [agent.id]  # only the kernel's agents on the venue are counted
    usdt = next(a for a in report.assets if a.asset == "USDT")
    assert (usdt.ledger, usdt.exchange, usdt.status) == (Decimal(1000), Decimal(0), "short")
    stored = [e["detail"] for e in store.risk_events() if e["kind"] == "reconcile"]
    assert any("USDT ledger 1000 vs exchange 0" in d for d in stored)
    assert kernel.ledger.wallet(agent.id).cash == Decimal(1000)  # never adjusted

    kernel.kill()  # global: the agent's own orders, then every open order on the account
    cancels = [r for r in api.calls("/api/v3/order") if r.method == "DELETE"]
    assert [(r.arg("symbol"), r.arg("orderId")) for r in cancels] == [("LTCBTC", "1")]


def test_a_lost_answer_is_looked_up_by_client_id(
    api: FakeAPI, store: Store, box: SecretBox
) -> None:
    api.route(
        "POST", "/api/v3/order", Reply(body=fixture("binance/order_market_full.json"), delay=2.0)
    )
    found = fixture("binance/query_order.json")
    found |= {
        "symbol": "BTCUSDT",
        "orderId": 28,
        "clientOrderId": "set below",
        "type": "MARKET",
        "side": "SELL",
        "price": "0.0",
        "origQty": "10.0",
        "executedQty": "10.0",
        "cummulativeQuoteQty": "39983.0",
        "status": "FILLED",
        "isWorking": False,
    }

    def query(request: Any) -> Reply:
        return Reply(body=found | {"clientOrderId": request.arg("origClientOrderId")})

    api.route("GET", "/api/v3/order", query)
    trade = fixture("binance/my_trades.json")[0]
    trade |= {
        "symbol": "BTCUSDT",
        "orderId": 28,
        "price": "3998.30000000",
        "qty": "10.00000000",
        "quoteQty": "39983.00000000",
        "commission": "39.98300000",
        "commissionAsset": "USDT",
        "isBuyer": False,
    }
    api.route("GET", "/api/v3/myTrades", Reply(body=[trade]))
    router = make_router(
        api, store, box, order_cap_usd=Decimal(50000), daily_cap_usd=Decimal(50000)
    )
    router.brokers[TESTNET].client.timeout = 500
    fill = router.submit(order(), wallet_with_btc(), btc(), NOW)
    assert fill is not None
    assert (fill.quantity, fill.price, fill.fee) == (
        Decimal(10),
        Decimal("3998.3"),
        Decimal("39.983"),
    )
    (asked,) = [r for r in api.calls("/api/v3/order") if r.method == "GET"]
    assert asked.arg("origClientOrderId") == posted(api)[0]["newClientOrderId"]
    assert api.calls("/api/v3/myTrades")[0].arg("orderId") == "28"


def test_a_lost_answer_for_an_order_the_exchange_never_got(
    api: FakeAPI, store: Store, box: SecretBox
) -> None:
    api.route("POST", "/api/v3/order", Reply(503, "Service Unavailable"))
    api.route("GET", "/api/v3/order", Reply(400, {"code": -2013, "msg": "Order does not exist."}))
    router = make_router(
        api, store, box, order_cap_usd=Decimal(50000), daily_cap_usd=Decimal(50000)
    )
    with pytest.raises(OrderRejected, match="was not placed"):
        router.submit(order(), wallet_with_btc(), btc(), NOW)
