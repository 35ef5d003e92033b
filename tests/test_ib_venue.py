"""The ib-paper venue against the IB Gateway stand-in: ib_async over a real loopback socket.

Refusals, partial fills, a lost answer, a gateway restart mid-order, a PhantomEx restart, the
kill switch, cancelling one order, fills at IB's execution time and reconciliation - with the
clock driven by the test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from ib_helpers import CLOSED, OPEN, Clock, D, broker, gateway, ib_settings

from phantomex.broker.base import OrderRejected
from phantomex.broker.ib_broker import IBBroker, client_order_id
from phantomex.broker.ib_feed import IBFeed
from phantomex.broker.ib_venue import reconcile_ib
from phantomex.broker.paper import PaperBrokerConfig
from phantomex.broker.router import VenueRouter
from phantomex.broker.venues import VenueBook
from phantomex.devtools.ib_gateway import Disconnect, Hold, IBGateway, Partial, Reject
from phantomex.domain.models import Fill, Order, OrderType, Side, Snapshot, Tick, Wallet
from phantomex.kernel import exchange_setup
from phantomex.kernel.bus import Event
from phantomex.ledger.ledger import apply_fill
from phantomex.secrets import SecretBox
from phantomex.store.repo import Store

AGENT = "a" * 32
PLACE_ORDER, CANCEL_ORDER = 3, 4


@pytest.fixture
def clock() -> Clock:
    return Clock(OPEN)


@pytest.fixture
def gw(tmp_path: Path, clock: Clock) -> Iterator[IBGateway]:
    g = gateway(tmp_path / "account.json", clock)
    g.set_price("AAPL", "187.25")
    yield g
    g.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'px.db'}")
    yield s
    s.close()


@pytest.fixture
def ib(gw: IBGateway, store: Store) -> Iterator[IBBroker]:
    b = broker(store, ib_settings(gw))
    yield b
    b.link.close()


def order(n: int, side: Side = Side.BUY, qty: str = "5", **kw: object) -> Order:
    oid = f"{n:08x}{'0' * 24}"  # distinct in the 24 characters the orderRef carries
    return Order(oid, AGENT, "AAPL", side, D(qty), f"order:{oid}", decision_id=oid, **kw)  # type: ignore[arg-type]


def snap(clock: Clock, price: str = "187.25") -> Snapshot:
    return Snapshot("AAPL", clock.now, D(price))


def tick(clock: Clock) -> Tick:
    return Tick(clock.now, {})


def wallet(cash: str = "10000") -> Wallet:
    return Wallet(AGENT, allowance=D(cash), cash=D(cash))


def book(w: Wallet, fills: list[Fill]) -> Wallet:
    for f in fills:
        w = apply_fill(w, f)
    return w


def test_a_market_order_fills_at_ibs_price_with_ibs_commission(
    ib: IBBroker, gw: IBGateway, clock: Clock
) -> None:
    fill = ib.submit(order(1), wallet(), snap(clock), clock.now)
    assert fill is not None
    assert (fill.quantity, fill.price, fill.fee) == (D(5), D("187.25"), D("1.00"))
    assert fill.idempotency_key.startswith("order:") and fill.order_id == order(1).id
    (ex,) = gw.account().executions
    assert fill.idempotency_key.endswith(ex.exec_id) and ex.order_ref == client_order_id(order(1))
    after = book(wallet(), [fill])
    assert D(10000) - after.cash == D(100000) - gw.account().cash  # the same money moved
    assert ib.open_orders() == []


def test_a_partial_fill_books_each_execution_exactly(
    ib: IBBroker, gw: IBGateway, clock: Clock
) -> None:
    gw.script(Partial(D(2)))
    first = ib.submit(order(1), wallet(), snap(clock), clock.now)
    assert first is not None and first.quantity == 2
    assert [o.id for o in ib.open_orders(AGENT)] == [order(1).id]  # the rest is working
    assert ib.on_tick(tick(clock), {}) == []
    gw.set_price("AAPL", "187.51")
    rest = _drain(ib, clock)
    (done,) = rest
    assert done[0].id == order(1).id and isinstance(done[1], Fill)
    assert (done[1].quantity, done[1].price, done[1].fee) == (D(3), D("187.51"), D("1.00"))
    after = book(wallet(), [first, done[1]])
    assert after.quantity("AAPL") == 5
    assert D(10000) - after.cash == D(100000) - gw.account().cash == D("939.03")
    assert ib.open_orders() == []


def test_refusals_before_anything_is_sent(ib: IBBroker, gw: IBGateway, clock: Clock) -> None:
    cases = [
        (order(1, type=OrderType.LIMIT, limit_price=D(180)), snap(clock), "market orders only"),
        (order(2), Snapshot("AAPL", clock.now - timedelta(hours=1), D(187)), "AAPL is stale"),
        (order(3, qty="0.5"), snap(clock), "less than one share"),
        (order(4, qty="40"), snap(clock), "over the per-order cap"),
        (order(5, side=Side.SELL), snap(clock), "insufficient holdings"),
        (order(6, qty="26"), snap(clock, "400"), "insufficient cash"),
    ]
    for o, s, why in cases:
        with pytest.raises(OrderRejected, match=why):
            ib.submit(o, wallet(), s, clock.now)
    clock.now = CLOSED
    with pytest.raises(OrderRejected, match=r"market closed: next open 2026-12-03 14:30 UTC"):
        ib.submit(order(7), wallet(), snap(clock), clock.now)
    assert gw.requests(PLACE_ORDER) == []


def test_ib_rejection_reaches_the_agent(ib: IBBroker, gw: IBGateway, clock: Clock) -> None:
    gw.script(Reject("YOUR ORDER IS NOT ACCEPTED. MARGIN"))
    with pytest.raises(OrderRejected, match="Order rejected - reason:YOUR ORDER IS NOT ACCEPTED"):
        ib.submit(order(1), wallet(), snap(clock), clock.now)
    assert ib.open_orders() == [] and gw.account().executions == []


def test_the_same_order_is_never_sent_twice(ib: IBBroker, gw: IBGateway, clock: Clock) -> None:
    """The gateway executes the order and drops the connection before answering: the venue
    reconnects, finds the execution by its orderRef, books it - and never sends it again."""
    gw.script(Disconnect())
    fill = ib.submit(order(1), wallet(), snap(clock), clock.now)
    assert fill is not None and fill.quantity == 5 and fill.fee == D("1.00")
    assert len(gw.requests(PLACE_ORDER)) == 1
    assert ib.link.connects == 2  # reconnected once
    with pytest.raises(OrderRejected, match="duplicate order"):
        ib.submit(order(1), wallet(), snap(clock), clock.now)
    assert len(gw.requests(PLACE_ORDER)) == 1
    assert ib.on_tick(tick(clock), {}) == []  # nothing booked twice either


def test_an_order_that_cannot_be_sent_is_refused_not_left_hanging(
    ib: IBBroker, gw: IBGateway, clock: Clock
) -> None:
    gw.stop()  # the gateway is away when the agent trades
    with pytest.raises(OrderRejected, match="the order was not placed"):
        ib.submit(order(1), wallet(), snap(clock), clock.now)
    assert ib.open_orders() == [] and ib.journal.orders == {}
    gw.start()  # back on the same port: the next order goes through
    fill = ib.submit(order(2), wallet(), snap(clock), clock.now)
    assert fill is not None and fill.quantity == 5
    assert len(gw.requests(PLACE_ORDER)) == 1


def test_kill_switch_cancels_open_orders_at_ib(
    ib: IBBroker, gw: IBGateway, clock: Clock, store: Store
) -> None:
    gw.script(Hold())
    ib.ib = ib.ib.model_copy(update={"fill_wait_s": 0.2})
    assert ib.submit(order(1), wallet(), snap(clock), clock.now) is None  # working at IB
    router = VenueRouter(PaperBrokerConfig(), VenueBook({AGENT: "ib-paper"}), {"ib-paper": ib})
    assert [o.id for o in router.open_orders(AGENT)] == [order(1).id]
    hook = exchange_setup.follow_kill_switch(router)
    hook(Event("risk", {"kind": "kill", "agent_id": None}, clock.now, clock.now))
    # the cancel travels the socket to the gateway: wait for it there (a loaded machine is slow)
    _eventually(lambda: [o.status for o in gw.account().orders.values()] == ["Cancelled"])
    (o,) = gw.account().orders.values()
    assert o.status == "Cancelled" and o.filled == 0
    (done,) = _drain(ib, clock)
    assert isinstance(done[1], OrderRejected) and "Cancelled" in done[1].reason
    assert router.open_orders() == []


def test_killing_one_agent_cancels_only_its_orders_at_ib(
    ib: IBBroker, gw: IBGateway, clock: Clock
) -> None:
    other = "b" * 32
    gw.script(Hold(), Hold())
    ib.ib = ib.ib.model_copy(update={"fill_wait_s": 0.2})
    mine, theirs = order(1), replace(order(2), agent_id=other)
    assert ib.submit(mine, wallet(), snap(clock), clock.now) is None
    assert ib.submit(theirs, Wallet(other, cash=D(10000)), snap(clock), clock.now) is None
    book_ = VenueBook({AGENT: "ib-paper", other: "ib-paper"})
    router = VenueRouter(PaperBrokerConfig(), book_, {"ib-paper": ib})
    router.cancel_all(AGENT)  # the kernel's per-agent kill
    mine_ref = client_order_id(mine)
    _eventually(
        lambda: any(
            o.order_ref == mine_ref and o.status == "Cancelled"
            for o in gw.account().orders.values()
        )
    )
    status = {o.order_ref: o.status for o in gw.account().orders.values()}
    assert status == {
        client_order_id(mine): "Cancelled",
        client_order_id(theirs): "Submitted",
    }
    (done,) = _drain(ib, clock)
    assert done[0].id == mine.id and isinstance(done[1], OrderRejected)
    assert [o.id for o in router.open_orders()] == [theirs.id]


def test_gateway_restart_in_the_middle_of_an_order(
    ib: IBBroker, gw: IBGateway, clock: Clock
) -> None:
    gw.script(Partial(D(2)))
    first = ib.submit(order(1), wallet(), snap(clock), clock.now)
    assert first is not None and first.quantity == 2
    gw.restart()  # the account (and the working order) survive in the gateway's file
    gw.set_price("AAPL", "188")
    (done,) = _drain(ib, clock)
    assert isinstance(done[1], Fill) and (done[1].quantity, done[1].price) == (D(3), D(188))
    assert len(gw.requests(PLACE_ORDER)) == 1


def test_phantomex_restart_keeps_a_working_order(gw: IBGateway, store: Store, clock: Clock) -> None:
    settings = ib_settings(gw)
    first = broker(store, settings)
    gw.script(Hold())
    first.ib = first.ib.model_copy(update={"fill_wait_s": 0.2})
    assert first.submit(order(1), wallet(), snap(clock), clock.now) is None
    first.link.close()  # PhantomEx stops while IB works the order
    second = broker(store, settings)  # the journal is in the store
    try:
        assert [o.id for o in second.open_orders()] == [order(1).id]
        (o,) = gw.account().orders.values()
        assert o.status == "Submitted" and len(gw.requests(PLACE_ORDER)) == 1  # not resent
        gw.drop_connections()  # and a network break on top
        assert second.cancel_open_orders(AGENT) == [client_order_id(order(1))]
        (done,) = _drain(second, clock)
        assert isinstance(done[1], OrderRejected)
    finally:
        second.link.close()


def test_one_working_order_is_cancelled(ib: IBBroker, gw: IBGateway, clock: Clock) -> None:
    gw.script(Hold(), Hold())
    assert ib.submit(order(1), wallet(), snap(clock), clock.now) is None  # working at IB
    assert ib.submit(order(2), wallet(), snap(clock), clock.now) is None
    cancelled = ib.cancel(order(1).id)
    assert cancelled is not None and cancelled.id == order(1).id
    assert sorted((o.order_ref, o.status) for o in gw.account().orders.values()) == [
        (client_order_id(order(1)), "Cancelled"),
        (client_order_id(order(2)), "Submitted"),
    ]
    assert len(gw.requests(CANCEL_ORDER)) == 1  # only that one
    assert [o.id for o in ib.open_orders()] == [order(2).id]
    assert ib.cancel(order(1).id) is None  # no longer working
    assert ib.on_tick(tick(clock), {}) == []  # nothing to book, nothing sent again


def test_a_cancel_after_a_partial_fill_keeps_the_executed_part(
    ib: IBBroker, gw: IBGateway, clock: Clock
) -> None:
    gw.script(Partial(D(2)))
    first = ib.submit(order(1), wallet(), snap(clock), clock.now)
    assert first is not None and first.quantity == 2
    assert ib.cancel(order(1).id) is not None
    gw.set_price("AAPL", "187.60")  # would have filled the rest
    assert ib.on_tick(tick(clock), {}) == [] and ib.open_orders() == []
    (ex,) = gw.account().executions
    assert ex.shares == 2 and gw.account().positions["AAPL"].quantity == 2


def test_a_filled_order_is_not_cancelled(ib: IBBroker, gw: IBGateway, clock: Clock) -> None:
    assert ib.submit(order(1), wallet(), snap(clock), clock.now) is not None
    assert ib.cancel(order(1).id) is None
    assert gw.requests(CANCEL_ORDER) == []


def test_fills_carry_ibs_execution_time(ib: IBBroker, gw: IBGateway, clock: Clock) -> None:
    """The kernel's clock is not IB's: each fill is stamped with its execution report's time."""
    gw.script(Partial(D(2)))
    ahead = clock.now + timedelta(seconds=42)  # the kernel's clock runs ahead of IB's
    first = ib.submit(order(1), wallet(), snap(clock), ahead)
    assert first is not None and first.time == OPEN
    clock.now = OPEN + timedelta(minutes=3, seconds=17)
    gw.set_price("AAPL", "187.40")  # the rest executes now, at IB
    ((_, rest),) = _drain(ib, Clock(OPEN + timedelta(hours=1)))  # booked a lot later
    assert isinstance(rest, Fill) and rest.quantity == 3
    assert rest.time == OPEN + timedelta(minutes=3, seconds=17)


def test_reconciliation_reports_differences(ib: IBBroker, gw: IBGateway, clock: Clock) -> None:
    fill = ib.submit(order(1), wallet(), snap(clock), clock.now)
    assert fill is not None
    mine = book(wallet("100000"), [fill])
    report = reconcile_ib(ib, [mine])
    assert report.error is None and report.clean, report.lines()
    report = reconcile_ib(ib, [wallet("100000")])  # a ledger that missed the fill
    assert {a.asset: (a.ledger, a.exchange) for a in report.differences} == {
        "AAPL": (D(0), D(5)),
        "USD": (D(100000), D("99062.75")),
    }


@pytest.mark.parametrize("realtime", [False, True])
def test_prices_from_the_same_connection_marked_delayed(
    tmp_path: Path, clock: Clock, store: Store, realtime: bool
) -> None:
    g = gateway(tmp_path / "md.json", clock, realtime_data=realtime)
    b = broker(store, ib_settings(g))
    try:
        g.set_price("AAPL", "187.25")
        feed = IBFeed(b.link, ["AAPL"], interval_s=0, clock=clock)
        snapshot = feed.poll().snapshots["AAPL"]
        lag = timedelta(0) if realtime else timedelta(minutes=15)
        assert (snapshot.price, snapshot.time) == (D("187.25"), clock.now - lag)
        assert feed.delayed == {"AAPL": not realtime}
        assert feed.instruments["AAPL"].calendar == "XNYS"
        # a delayed price is as old as it is: the venue's staleness limit applies to it
        strict = b.ib.model_copy(update={"max_price_age_s": 600})
        b.ib = strict
        if not realtime:
            with pytest.raises(OrderRejected, match="stale"):
                b.submit(order(1), wallet(), snapshot, clock.now)
        else:
            assert b.submit(order(1), wallet(), snapshot, clock.now) is not None
    finally:
        b.link.close()
        g.stop()


def test_a_live_account_is_refused(tmp_path: Path, clock: Clock, store: Store) -> None:
    live = gateway(tmp_path / "live.json", clock, account="U7654321")
    try:
        settings = ib_settings(live)
        router = VenueRouter(PaperBrokerConfig(), VenueBook(), {})
        box = SecretBox(Fernet.generate_key())
        with pytest.raises(ValueError, match="not a paper account"):
            exchange_setup.set_agent_venue(router, store, box, settings, AGENT, "ib-paper")
        with pytest.raises(ValueError, match="trades real money"):
            exchange_setup.set_agent_venue(router, store, box, settings, AGENT, "ib")
        assert live.requests(PLACE_ORDER) == []
    finally:
        live.stop()


def _eventually(done: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until ``done()`` (polling; the gateway answers on its own thread)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the gateway did not get there in time"
        time.sleep(0.05)


def _drain(ib: IBBroker, clock: Clock) -> list[tuple[Order, Fill | OrderRejected]]:
    """on_tick until something arrives (generous deadline; the gateway answers in ms)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = ib.on_tick(tick(clock), {})
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError("nothing arrived from IB")


def test_a_cancel_ib_cannot_confirm_is_refused_and_the_order_stays_working(
    ib: IBBroker, gw: IBGateway, clock: Clock
) -> None:
    gw.script(Hold())
    assert ib.submit(order(1), wallet(), snap(clock), clock.now) is None  # working at IB
    gw.stop()  # the gateway goes away before the cancel
    with pytest.raises(OrderRejected, match=r"cannot cancel order .* may still be working"):
        ib.cancel(order(1).id)
    assert [o.id for o in ib.open_orders()] == [order(1).id]
