"""The broker contract: one set of tests run against every broker behind the kernel's
:class:`~phantomex.broker.base.Broker` port (paper, a ccxt testnet venue, the IB paper venue).

Where brokers legitimately differ, the fixture declares it (:class:`Capabilities`) and the test
checks the declared behaviour."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from broker_contract_fixtures import (
    AGENT,
    BROKERS,
    CAPABILITIES,
    BrokerUnderTest,
    Capabilities,
    Outcome,
    eventually,
)

from phantomex.broker.base import OrderRejected
from phantomex.domain.models import Deposit, Fill, Order, OrderType, Side
from phantomex.domain.money import is_valid_price
from phantomex.ledger.ledger import Ledger
from phantomex.ledger.reconcile import reconcile

D = Decimal


def brokers(only: Callable[[Capabilities], bool] = lambda _caps: True) -> pytest.MarkDecorator:
    """Run the test against every broker whose declared capabilities satisfy ``only``."""
    names = [n for n in BROKERS if only(CAPABILITIES[n])]
    return pytest.mark.parametrize("b", names, indirect=True)


@pytest.fixture
def b(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BrokerUnderTest]:
    """The broker named by the test's parameter."""
    yield from BROKERS[request.param](tmp_path)


def _funded(b: BrokerUnderTest, cash: str = "100000") -> tuple[Ledger, list[Fill | Deposit]]:
    """A ledger with the agent's wallet and the history of what was applied to it."""
    allowance = Deposit(AGENT, D(cash), b.now, "deposit:1", initial=True)
    history: list[Fill | Deposit] = [allowance]
    ledger = Ledger(on_commit=lambda entry, _before, _after: history.append(entry))
    ledger.open_wallet(allowance)
    return ledger, history


def _fills_of(b: BrokerUnderTest, order: Order, first: Fill | None) -> list[Fill]:
    """Every fill of ``order``: the one ``submit`` returned and, on a broker whose fills may
    come later, those ``on_tick`` hands over until the order is done."""
    if not b.caps.async_fills:
        assert first is not None, f"{b.name} declares synchronous fills"
        return [first]
    fills = [first] if first is not None else []

    def done(got: list[Outcome]) -> bool:
        qty = sum((f.quantity for f in fills), D(0))
        qty += sum((r.quantity for o, r in got if isinstance(r, Fill) and o.id == order.id), D(0))
        return qty >= order.quantity

    if not done([]):
        got = b.collect(done)
        assert all(isinstance(r, Fill) for _, r in got), got
        fills += [r for o, r in got if isinstance(r, Fill) and o.id == order.id]
    return fills


# -- fills ---------------------------------------------------------------------------------------
@brokers()
def test_a_market_buy_fills_at_a_valid_price_and_the_wallet_reconciles(b: BrokerUnderTest) -> None:
    ledger, history = _funded(b)
    order = b.order(Side.BUY, "2")
    first = b.broker.submit(order, ledger.view(AGENT), b.snapshot(), b.now)
    fills = _fills_of(b, order, first)
    for fill in fills:
        assert is_valid_price(fill.price) and fill.price == b.price
        assert (fill.agent_id, fill.symbol, fill.side) == (AGENT, b.symbol, Side.BUY)
        assert fill.order_id == order.id and fill.idempotency_key.startswith(order.idempotency_key)
        ledger.apply(fill)
    assert sum(f.quantity for f in fills) == 2
    wallet = ledger.wallet(AGENT)
    assert wallet.quantity(b.symbol) == 2
    assert D(100000) - wallet.cash == sum(f.quantity * f.price + f.fee for f in fills)  # exact
    assert reconcile({AGENT: wallet}, {AGENT: history}) == []  # the audit
    assert b.broker.open_orders(AGENT) == [] and b.sent() == (1 if b.caps.remote else 0)


@brokers()
def test_fees_are_applied_on_both_sides(b: BrokerUnderTest) -> None:
    ledger, history = _funded(b)
    paid = D(0)
    for side in (Side.BUY, Side.SELL):
        order = b.order(side, "2")
        fills = _fills_of(b, order, b.broker.submit(order, ledger.view(AGENT), b.snapshot(), b.now))
        for fill in fills:
            assert fill.fee > 0 and fill.fee == b.fee_for(fill.quantity, fill.price)
            ledger.apply(fill)
            paid += fill.fee
    wallet = ledger.wallet(AGENT)
    assert wallet.fees_paid == paid and wallet.quantity(b.symbol) == 0
    assert wallet.cash == D(100000) - paid  # bought and sold at the same price: fees only
    assert wallet.realized_pnl == -paid
    assert reconcile({AGENT: wallet}, {AGENT: history}) == []


# -- refusals ------------------------------------------------------------------------------------
@brokers()
def test_a_sell_of_more_than_held_is_refused(b: BrokerUnderTest) -> None:
    ledger, _ = _funded(b)
    buy = b.order(Side.BUY, "1")
    for fill in _fills_of(b, buy, b.broker.submit(buy, ledger.view(AGENT), b.snapshot(), b.now)):
        ledger.apply(fill)
    sent = b.sent()
    with pytest.raises(OrderRejected, match="insufficient holdings"):
        b.broker.submit(b.order(Side.SELL, "2"), ledger.view(AGENT), b.snapshot(), b.now)
    assert b.sent() == sent and b.broker.open_orders(AGENT) == []


@brokers()
@pytest.mark.parametrize("price", [D(0), D(-1), D("NaN"), D("Infinity")])
def test_no_fill_on_a_missing_or_invalid_price(b: BrokerUnderTest, price: Decimal) -> None:
    ledger, _ = _funded(b)
    with pytest.raises(OrderRejected, match="no valid price"):
        b.broker.submit(b.order(), ledger.view(AGENT), b.snapshot(price), b.now)
    assert b.sent() == 0 and b.broker.open_orders(AGENT) == []


@brokers(only=lambda caps: caps.remote)
def test_no_fill_on_a_stale_price(b: BrokerUnderTest) -> None:
    """A venue whose orders leave the process refuses a price a day old itself (see
    :attr:`Capabilities.remote` for why the paper broker is not in this case)."""
    ledger, _ = _funded(b)
    stale = b.snapshot(at=b.now - timedelta(days=1))
    with pytest.raises(OrderRejected, match="stale"):
        b.broker.submit(b.order(), ledger.view(AGENT), stale, b.now)
    assert b.sent() == 0


@brokers()
def test_order_types_it_does_not_take_are_refused_before_anything_is_sent(
    b: BrokerUnderTest,
) -> None:
    ledger, _ = _funded(b)
    limit = b.order(type=OrderType.LIMIT, limit_price=D(1))  # far under the market
    stop = b.order(type=OrderType.STOP, stop_price=b.price * 10)  # far over it
    for kind, order in ((OrderType.LIMIT, limit), (OrderType.STOP, stop)):
        if kind in b.caps.order_types:  # it rests: nothing fills at once
            assert b.broker.submit(order, ledger.view(AGENT), b.snapshot(), b.now) is None
            assert order in b.broker.open_orders(AGENT)
        else:
            with pytest.raises(OrderRejected, match="market orders only"):
                b.broker.submit(order, ledger.view(AGENT), b.snapshot(), b.now)
            assert order not in b.broker.open_orders(AGENT)
    assert b.sent() == 0


# -- working orders ------------------------------------------------------------------------------
@brokers()
def test_a_working_order_is_listed_and_cancel_removes_it(b: BrokerUnderTest) -> None:
    """Paper: a limit order rests. IB: a market order IB has not filled keeps working. A
    market-only venue whose fills are synchronous lists nothing as working after submit."""
    ledger, _ = _funded(b)
    if OrderType.LIMIT not in b.caps.order_types and not b.caps.async_fills:
        fill = b.broker.submit(b.order(), ledger.view(AGENT), b.snapshot(), b.now)
        assert fill is not None and b.broker.open_orders(AGENT) == []
        return
    order = b.order()
    b.make_working(order)
    assert [o.id for o in b.broker.open_orders(AGENT)] == [order.id]
    assert b.ref(order) in b.working_at_venue()
    cancelled = b.broker.cancel(order.id)
    assert cancelled is not None and cancelled.id == order.id
    eventually(lambda: b.ref(order) not in b.working_at_venue())
    outcomes = b.collect(lambda got: not b.broker.open_orders(AGENT))
    assert not any(isinstance(r, Fill) for _, r in outcomes)
    assert b.broker.open_orders(AGENT) == []


@brokers()
def test_the_kill_switch_cancels_working_orders(b: BrokerUnderTest) -> None:
    """``cancel_all(agent)`` is what the kernel's kill switch (and deleting an agent) calls."""
    order = b.order()
    b.make_working(order)
    assert b.ref(order) in b.working_at_venue()
    b.broker.cancel_all(AGENT)
    eventually(lambda: b.ref(order) not in b.working_at_venue())
    outcomes = b.collect(lambda got: not b.broker.open_orders(AGENT))
    assert not any(isinstance(r, Fill) for _, r in outcomes)  # nothing fills after the kill
    assert b.broker.open_orders(AGENT) == []


# -- idempotency ---------------------------------------------------------------------------------
@brokers()
def test_the_same_client_order_id_is_never_executed_twice(b: BrokerUnderTest) -> None:
    ledger, _ = _funded(b)
    order = b.order()
    for fill in _fills_of(
        b, order, b.broker.submit(order, ledger.view(AGENT), b.snapshot(), b.now)
    ):
        ledger.apply(fill)
    sent = b.sent()
    with pytest.raises(OrderRejected, match="duplicate order"):
        b.broker.submit(order, ledger.view(AGENT), b.snapshot(), b.now)
    # after a restart the store hands the used keys back: still never twice
    used = b.order()
    b.broker.remember_keys({used.idempotency_key})
    with pytest.raises(OrderRejected, match="duplicate order"):
        b.broker.submit(used, ledger.view(AGENT), b.snapshot(), b.now)
    assert b.sent() == sent


@brokers(only=lambda caps: caps.remote)
def test_a_lost_answer_is_found_and_never_sent_again(b: BrokerUnderTest) -> None:
    """The venue executes the order but its answer is lost (a timeout, a dropped connection):
    the broker finds the order by its client id and books it once; a resubmit is refused. (An
    in-process broker has no answer to lose.)"""
    assert b.lose_next_answer is not None
    ledger, history = _funded(b)
    order = b.order()
    b.lose_next_answer()
    first = b.broker.submit(order, ledger.view(AGENT), b.snapshot(), b.now)
    for fill in _fills_of(b, order, first):
        ledger.apply(fill)
    assert ledger.wallet(AGENT).quantity(b.symbol) == 2 and b.sent() == 1
    with pytest.raises(OrderRejected, match="duplicate order"):
        b.broker.submit(order, ledger.view(AGENT), b.snapshot(), b.now)
    assert b.sent() == 1
    assert not any(isinstance(r, Fill) for _, r in b.broker.on_tick(b.tick(), {}))
    assert reconcile({AGENT: ledger.wallet(AGENT)}, {AGENT: history}) == []
