"""The brokers the contract suite runs against, each behind the :class:`Broker` port the kernel
holds, with what legitimately differs between them declared as :class:`Capabilities`.

- ``paper``: the :class:`PaperBroker` (simulated, in-process fills).
- ``ccxt-testnet``: a :class:`VenueRouter` whose agent trades on ``binance-testnet``, built by
  the kernel's own wiring (``build_router``, ``set_agent_venue``), its ccxt client talking to a
  local server that answers Binance's documented order endpoints (:class:`BinanceOrders`).
- ``ib-paper``: a :class:`VenueRouter` whose agent trades on ``ib-paper``, its ib_async link on
  a real loopback socket to the TWS-protocol stand-in (:mod:`phantomex.devtools.ib_gateway`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from fakeapi import FakeAPI, Reply, Request, fixture
from ib_helpers import OPEN, Clock, gateway, ib_settings

from phantomex.broker.base import Broker, OrderRejected
from phantomex.broker.ccxt_broker import CcxtBroker
from phantomex.broker.ccxt_broker import client_order_id as ccxt_order_id
from phantomex.broker.credentials import Credentials, save_credentials
from phantomex.broker.ib_broker import IBBroker
from phantomex.broker.ib_broker import client_order_id as ib_order_id
from phantomex.broker.paper import PaperBroker, PaperBrokerConfig
from phantomex.broker.venues import ExchangeSettings
from phantomex.devtools.ib_gateway import Disconnect, Hold
from phantomex.devtools.ib_gateway.account import commission_for
from phantomex.domain.models import Fill, Order, OrderType, Side, Snapshot, Tick, Wallet
from phantomex.domain.money import BPS
from phantomex.kernel.exchange_setup import build_router, set_agent_venue
from phantomex.secrets import SecretBox
from phantomex.store.repo import Store

AGENT = "c0ffee00" + "0" * 24
D = Decimal
#: Far longer than the ccxt client's timeout in a lost-answer case: the answer never arrives.
LOST_DELAY_S = 4.0
PLACE_ORDER = 3  # the TWS message id of placeOrder
AAPL = D("187.25")  # the stock's price on paper and at the IB stand-in
Outcome = tuple[Order, Fill | OrderRejected]


@dataclass(frozen=True)
class Capabilities:
    """What a broker does where brokers legitimately differ."""

    #: the order types it takes (others are refused before anything is sent)
    order_types: frozenset[OrderType]
    #: a market order may still be working when ``submit`` returns (its fills come by on_tick)
    async_fills: bool
    #: orders leave the process: a venue that can lose an answer, and must refuse stale prices
    #: itself (an in-process simulation fills at the snapshot it is handed - a backtest's bar -
    #: and the age limit is the risk engine's, before submit)
    remote: bool


CAPABILITIES = {
    "paper": Capabilities(frozenset(OrderType), async_fills=False, remote=False),
    "ccxt-testnet": Capabilities(frozenset({OrderType.MARKET}), async_fills=False, remote=True),
    "ib-paper": Capabilities(frozenset({OrderType.MARKET}), async_fills=True, remote=True),
}


@dataclass
class BrokerUnderTest:
    """One broker behind the port, and the view of its venue a test needs."""

    name: str
    broker: Broker
    symbol: str
    price: Decimal
    caps: Capabilities
    #: the fee the venue charges for ``quantity`` at ``price``
    fee_for: Callable[[Decimal, Decimal], Decimal]
    #: how many orders reached the venue (always 0 for an in-process broker)
    sent: Callable[[], int]
    #: ids (as the venue knows them) of the orders working there
    working_at_venue: Callable[[], set[str]]
    #: the venue's id of one of our orders
    ref: Callable[[Order], str]
    #: make ``order`` keep working at the venue (returns when it is)
    make_working: Callable[[Order], None]
    #: lose the venue's answer to the next order (it still executes); None: nothing to lose
    lose_next_answer: Callable[[], None] | None = None
    now: datetime = OPEN
    _serial: list[int] = field(default_factory=lambda: [0])

    def order(self, side: Side = Side.BUY, qty: str = "2", **kw: Any) -> Order:
        """A new order of the agent (a fresh id and idempotency key each time)."""
        self._serial[0] += 1
        oid = f"{self._serial[0]:032x}"
        return Order(oid, AGENT, self.symbol, side, D(qty), f"order:{oid}", decision_id=oid, **kw)

    def snapshot(self, price: Decimal | None = None, at: datetime | None = None) -> Snapshot:
        return Snapshot(self.symbol, at or self.now, self.price if price is None else price)

    def tick(self) -> Tick:
        return Tick(self.now, {self.symbol: self.snapshot()})

    def collect(self, done: Callable[[list[Outcome]], bool]) -> list[Outcome]:
        """``on_tick`` until ``done`` holds for what came back: once for a broker whose fills
        are synchronous, polled (generous deadline, a loaded machine) for one that is not."""
        got = list(self.broker.on_tick(self.tick(), {}))
        deadline = time.monotonic() + 30
        while self.caps.async_fills and not done(got):
            assert time.monotonic() < deadline, f"{self.name}: nothing more arrived"
            time.sleep(0.05)
            got += self.broker.on_tick(self.tick(), {})
        return got


def eventually(check: Callable[[], bool], timeout: float = 30.0) -> None:
    """Poll ``check`` (a venue answers on its own thread); fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the venue did not get there in time"
        time.sleep(0.05)


# -- paper ---------------------------------------------------------------------------------------
def paper(_tmp: Path) -> Iterator[BrokerUnderTest]:
    broker = PaperBroker(PaperBrokerConfig(fee_bps=D(10)))

    def make_working(order: Order) -> None:  # a limit far under the market rests
        rest = replace(order, type=OrderType.LIMIT, limit_price=D(1))
        assert broker.submit(rest, _rich(), _snap("AAPL", AAPL), OPEN) is None

    yield BrokerUnderTest(
        name="paper",
        broker=broker,
        symbol="AAPL",
        price=AAPL,
        caps=CAPABILITIES["paper"],
        fee_for=lambda q, p: q * p * broker.fee_bps / BPS,
        sent=lambda: 0,
        working_at_venue=lambda: {o.id for o in broker.open_orders()},
        ref=lambda o: o.id,
        make_working=make_working,
    )


# -- ccxt testnet --------------------------------------------------------------------------------
TESTNET = "binance-testnet"
FEE_RATE = D("0.001")  # the stand-in's taker commission, in USDT


class BinanceOrders:
    """Binance's order endpoints, answered as documented: a market order fills at once at
    ``price`` with a 10 bps USDT commission; orders are kept by client id (``GET /order`` finds
    one whose answer was lost); open orders left on the account are listed and cancelled."""

    def __init__(self, api: FakeAPI, price: Decimal) -> None:
        self.price, self.placed, self.lose_next = price, 0, False
        self.orders: dict[str, dict[str, Any]] = {}  # by clientOrderId
        api.route("GET", "/api/v3/exchangeInfo", Reply(body=fixture("binance/exchange_info.json")))
        api.route("POST", "/api/v3/order", self._place)
        api.route("GET", "/api/v3/order", self._query)
        api.route("DELETE", "/api/v3/order", self._cancel)
        api.route("GET", "/api/v3/openOrders", self._open)
        api.route("GET", "/api/v3/myTrades", self._trades)

    def leave_open(self, client_id: str, side: Side, qty: Decimal) -> None:
        """An order of ours working on the account (e.g. placed before a restart)."""
        self.orders[client_id] = self._order(client_id, side, qty, status="NEW", filled=D(0))

    def working(self) -> set[str]:
        return {cid for cid, o in self.orders.items() if o["status"] == "NEW"}

    def _order(
        self, cid: str, side: Side | str, qty: Decimal, *, status: str, filled: Decimal
    ) -> dict[str, Any]:
        body = fixture("binance/query_order.json")
        body |= {
            "symbol": "BTCUSDT",
            "orderId": len(self.orders) + 100,
            "clientOrderId": cid,
            "type": "MARKET",
            "side": str(side).upper(),
            "price": "0.0",
            "origQty": str(qty),
            "executedQty": str(filled),
            "cummulativeQuoteQty": str(filled * self.price),
            "status": status,
            "isWorking": status == "NEW",
        }
        return body

    def _place(self, request: Request) -> Reply:
        sent = request.form()
        self.placed += 1
        qty = D(sent["quantity"])
        order = self._order(
            sent["newClientOrderId"], sent["side"], qty, status="FILLED", filled=qty
        )
        self.orders[order["clientOrderId"]] = order
        fill = {
            "price": str(self.price),
            "qty": str(qty),
            "commission": str(qty * self.price * FEE_RATE),
            "commissionAsset": "USDT",
        }
        lost, self.lose_next = self.lose_next, False
        return Reply(body=order | {"fills": [fill]}, delay=LOST_DELAY_S if lost else 0.0)

    def _query(self, request: Request) -> Reply:
        found = self.orders.get(request.arg("origClientOrderId") or "")
        if found is None:
            return Reply(400, {"code": -2013, "msg": "Order does not exist."})
        return Reply(body=found)

    def _trades(self, request: Request) -> Reply:
        out = []
        for o in self.orders.values():
            if str(o["orderId"]) == request.arg("orderId") and o["status"] == "FILLED":
                qty = D(o["executedQty"])
                trade = fixture("binance/my_trades.json")[0]
                trade |= {
                    "symbol": "BTCUSDT",
                    "orderId": o["orderId"],
                    "price": str(self.price),
                    "qty": str(qty),
                    "quoteQty": str(qty * self.price),
                    "commission": str(qty * self.price * FEE_RATE),
                    "commissionAsset": "USDT",
                    "isBuyer": o["side"] == "BUY",
                }
                out.append(trade)
        return Reply(body=out)

    def _open(self, _request: Request) -> Reply:
        return Reply(body=[o for o in self.orders.values() if o["status"] == "NEW"])

    def _cancel(self, request: Request) -> Reply:
        for o in self.orders.values():
            if str(o["orderId"]) == request.arg("orderId") and o["status"] == "NEW":
                o["status"] = "CANCELED"
                return Reply(body=o | {"origClientOrderId": o["clientOrderId"]})
        return Reply(400, {"code": -2011, "msg": "Unknown order sent."})


def ccxt_testnet(tmp: Path) -> Iterator[BrokerUnderTest]:
    with FakeAPI() as api:
        venue = BinanceOrders(api, D(4000))
        urls = {"public": f"{api.url}/api/v3", "private": f"{api.url}/api/v3"}
        settings = ExchangeSettings(
            api_urls={TESTNET: urls}, order_cap_usd=D(50000), daily_cap_usd=D(500000)
        )
        store, box = Store(f"sqlite:///{tmp / 'px.db'}"), SecretBox(Fernet.generate_key())
        save_credentials(store, box, TESTNET, Credentials("testnet-key", "testnet-secret"))
        router = build_router(PaperBrokerConfig(), store, box, settings)
        set_agent_venue(router, store, box, settings, AGENT, TESTNET)
        exchange = router.brokers[TESTNET]
        assert isinstance(exchange, CcxtBroker)

        def lose_next_answer() -> None:
            exchange.client.timeout = 1000  # ms: the delayed answer is lost
            venue.lose_next = True

        try:
            yield BrokerUnderTest(
                name="ccxt-testnet",
                broker=router,
                symbol="BTC",
                price=venue.price,
                caps=CAPABILITIES["ccxt-testnet"],
                fee_for=lambda q, p: q * p * FEE_RATE,
                sent=lambda: venue.placed,
                working_at_venue=venue.working,
                ref=ccxt_order_id,
                make_working=lambda o: venue.leave_open(ccxt_order_id(o), o.side, o.quantity),
                lose_next_answer=lose_next_answer,
            )
        finally:
            store.close()


# -- IB paper ------------------------------------------------------------------------------------
def ib_paper(tmp: Path) -> Iterator[BrokerUnderTest]:
    gw = gateway(tmp / "account.json", Clock(OPEN))
    gw.set_price("AAPL", AAPL)
    store, box = Store(f"sqlite:///{tmp / 'px.db'}"), SecretBox(Fernet.generate_key())
    settings = ib_settings(gw)
    router = build_router(PaperBrokerConfig(), store, box, settings)
    set_agent_venue(router, store, box, settings, AGENT, "ib-paper")
    ib = router.brokers["ib-paper"]
    assert isinstance(ib, IBBroker)

    def make_working(order: Order) -> None:  # IB accepts the order and leaves it working
        gw.script(Hold())
        ib.ib = ib.ib.model_copy(update={"fill_wait_s": 0.2})
        assert router.submit(order, _rich(), _snap("AAPL", AAPL), OPEN) is None

    try:
        yield BrokerUnderTest(
            name="ib-paper",
            broker=router,
            symbol="AAPL",
            price=AAPL,
            caps=CAPABILITIES["ib-paper"],
            fee_for=commission_for,
            sent=lambda: len(gw.requests(PLACE_ORDER)),
            working_at_venue=lambda: {
                o.order_ref for o in gw.account().orders.values() if not o.done
            },
            ref=ib_order_id,
            make_working=make_working,
            lose_next_answer=lambda: gw.script(Disconnect()),
        )
    finally:
        ib.link.close()
        gw.stop()
        store.close()


def _rich() -> Wallet:
    return Wallet(AGENT, allowance=D(100000), cash=D(100000))


def _snap(symbol: str, price: Decimal) -> Snapshot:
    return Snapshot(symbol, OPEN, price)


BROKERS: dict[str, Callable[[Path], Iterator[BrokerUnderTest]]] = {
    "paper": paper,
    "ccxt-testnet": ccxt_testnet,
    "ib-paper": ib_paper,
}
