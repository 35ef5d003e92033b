"""Paper broker: market fills, fees and slippage, resizing, idempotency, resting orders."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from phantomex.broker.base import OrderRejected
from phantomex.broker.paper import PaperBroker, PaperBrokerConfig
from phantomex.domain.models import (
    Bar,
    Deposit,
    Order,
    OrderType,
    Position,
    Side,
    Snapshot,
    Tick,
    Wallet,
)
from phantomex.ledger.ledger import Ledger

D = Decimal
AGENT = "a1"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)

_ids = itertools.count()


def order(
    side: Side | str,
    qty: Decimal | str,
    *,
    symbol: str = "BTC",
    type: OrderType = OrderType.MARKET,
    limit: Decimal | str | None = None,
    stop: Decimal | str | None = None,
    key: str | None = None,
    agent: str = AGENT,
) -> Order:
    n = next(_ids)
    return Order(
        id=f"o{n}",
        agent_id=agent,
        symbol=symbol,
        side=Side(side),
        quantity=D(qty),
        idempotency_key=key or f"key{n}",
        type=type,
        limit_price=D(limit) if limit is not None else None,
        stop_price=D(stop) if stop is not None else None,
        decision_id=f"d{n}",
        reason="because",
    )


def wallet(cash: Decimal | str = "10000", **holdings: Decimal | str) -> Wallet:
    ledger = Ledger()
    ledger.open_wallet(Deposit(AGENT, D(cash), T0, "allowance", initial=True))
    w = ledger.wallet(AGENT)
    for sym, qty in holdings.items():
        w.positions[sym] = Position(sym, D(qty), D(qty) * 100, T0)
    return w


def snap(price: Decimal | str, symbol: str = "BTC", time: datetime = T0) -> Snapshot:
    return Snapshot(symbol, time, D(price))


def bar_tick(
    o: str, h: str, low: str, c: str, symbol: str = "BTC", time: datetime = T0 + MIN
) -> Tick:
    bar = Bar(symbol, time - MIN, D(o), D(h), D(low), D(c), D(1))
    return Tick(time, {symbol: Snapshot(symbol, time, D(c))}, {symbol: bar})


# ----------------------------------------------------------------------------- market orders


def test_market_buy_fills_at_snapshot_price_with_default_10bps_fee() -> None:
    broker = PaperBroker()
    o = order("buy", "2")
    f = broker.submit(o, wallet(), snap("1000"), T0 + MIN)
    assert f is not None
    assert (f.side, f.quantity, f.price) == (Side.BUY, D(2), D(1000))
    assert f.fee == D("2")  # 2000 * 10 / 10000
    assert f.time == T0 + MIN
    assert f.idempotency_key == o.idempotency_key
    assert f.order_id == o.id and f.decision_id == o.decision_id and f.reasoning == "because"
    assert f.agent_id == AGENT and f.symbol == "BTC"


@pytest.mark.parametrize("fee_bps", [D(0), D(1), D("7.5"), D(25)])
def test_fee_is_notional_times_fee_bps(fee_bps: Decimal) -> None:
    broker = PaperBroker(PaperBrokerConfig(fee_bps=fee_bps))
    f = broker.submit(order("sell", "0.37"), wallet(BTC="1"), snap("123.45"), T0)
    assert f is not None
    assert f.fee == D("0.37") * D("123.45") * fee_bps / 10000


def test_slippage_moves_buys_up_and_sells_down() -> None:
    broker = PaperBroker(PaperBrokerConfig(slippage_bps=D(50), fee_bps=D(0)))
    buy = broker.submit(order("buy", "1"), wallet(), snap("1000"), T0)
    sell = broker.submit(order("sell", "1"), wallet(BTC="1"), snap("1000"), T0)
    assert buy is not None and sell is not None
    assert buy.price == D(1005)
    assert sell.price == D(995)


def test_fee_is_charged_on_the_slipped_price() -> None:
    broker = PaperBroker(PaperBrokerConfig(slippage_bps=D(100), fee_bps=D(10)))
    f = broker.submit(order("buy", "1"), wallet(), snap("1000"), T0)
    assert f is not None
    assert f.price == D(1010)
    assert f.fee == D("1.01")


def test_insufficient_cash_is_rejected_with_a_reason() -> None:
    broker = PaperBroker()
    with pytest.raises(OrderRejected) as exc:
        broker.submit(order("buy", "10"), wallet("10000"), snap("1000"), T0)
    assert "insufficient cash" in exc.value.reason
    assert str(exc.value) == exc.value.reason


def test_buy_of_exactly_cash_without_resize_fills() -> None:
    broker = PaperBroker()
    f = broker.submit(order("buy", "1"), wallet("1001"), snap("1000"), T0)
    assert f is not None and f.quantity == 1 and f.fee == 1


def test_fee_tipping_a_buy_over_cash_is_rejected() -> None:
    broker = PaperBroker()
    with pytest.raises(OrderRejected):
        broker.submit(order("buy", "1"), wallet("1000"), snap("1000"), T0)


def test_resize_shrinks_a_buy_to_what_cash_covers() -> None:
    broker = PaperBroker()
    w = wallet("1000")
    f = broker.submit(order("buy", "10"), w, snap("300"), T0, resize=True)
    assert f is not None
    assert f.quantity < 10
    assert f.quantity * f.price + f.fee <= w.cash
    # and it is the most cash covers (not just any smaller quantity)
    assert f.quantity * f.price + f.fee > w.cash - D("1e-20")


def test_resize_does_not_change_an_affordable_order() -> None:
    broker = PaperBroker()
    f = broker.submit(order("buy", "1"), wallet("1000"), snap("300"), T0, resize=True)
    assert f is not None and f.quantity == 1


def test_selling_more_than_held_is_rejected() -> None:
    broker = PaperBroker()
    with pytest.raises(OrderRejected) as exc:
        broker.submit(order("sell", "2"), wallet(BTC="1.5"), snap("100"), T0)
    assert "insufficient holdings" in exc.value.reason


def test_selling_more_than_held_with_resize_sells_the_holding() -> None:
    broker = PaperBroker()
    f = broker.submit(order("sell", "2"), wallet(BTC="1.5"), snap("100"), T0, resize=True)
    assert f is not None and f.quantity == D("1.5")
    assert f.fee == D("0.15")


def test_selling_something_not_held_is_rejected_even_with_resize() -> None:
    broker = PaperBroker()
    with pytest.raises(OrderRejected):
        broker.submit(
            order("sell", "1", symbol="ETH"), wallet(BTC="1"), snap("100", "ETH"), T0, resize=True
        )


@pytest.mark.parametrize("qty", ["0", "-1", "NaN", "Infinity"])
def test_non_positive_or_non_finite_quantity_is_rejected(qty: str) -> None:
    broker = PaperBroker()
    with pytest.raises(OrderRejected):
        broker.submit(order("buy", qty), wallet(), snap("100"), T0, resize=True)


@pytest.mark.parametrize("price", ["0", "-5", "NaN", "Infinity"])
def test_market_order_on_invalid_price_is_rejected(price: str) -> None:
    broker = PaperBroker()
    with pytest.raises(OrderRejected) as exc:
        broker.submit(order("buy", "1"), wallet(), snap(price), T0)
    assert "price" in exc.value.reason


def test_zero_cash_resize_is_rejected_not_a_zero_fill() -> None:
    broker = PaperBroker()
    w = wallet("1")
    w.cash = D(0)
    with pytest.raises(OrderRejected):
        broker.submit(order("buy", "1"), w, snap("1000"), T0, resize=True)


def test_broker_never_changes_the_wallet() -> None:
    broker = PaperBroker()
    w = wallet("1000", BTC="1")
    before = (w.cash, w.positions["BTC"].quantity, w.version)
    broker.submit(order("buy", "1"), w, snap("100"), T0)
    broker.submit(order("sell", "1"), w, snap("100"), T0)
    assert (w.cash, w.positions["BTC"].quantity, w.version) == before


# ----------------------------------------------------------------------------- quantity step


def test_quantity_step_rounds_down() -> None:
    broker = PaperBroker(PaperBrokerConfig(quantity_step=D("0.01")))
    f = broker.submit(order("buy", "1.23999"), wallet(), snap("100"), T0)
    assert f is not None and f.quantity == D("1.23")


def test_quantity_step_rounds_a_resized_buy_down_to_the_step() -> None:
    broker = PaperBroker(PaperBrokerConfig(quantity_step=D("0.001")))
    f = broker.submit(order("buy", "100"), wallet("1000"), snap("300"), T0, resize=True)
    assert f is not None
    assert f.quantity == D("3.330")  # 1000 / 300.3 = 3.33000333...
    assert f.quantity * f.price + f.fee <= D(1000)


def test_quantity_below_one_step_is_rejected() -> None:
    broker = PaperBroker(PaperBrokerConfig(quantity_step=D(1)))
    with pytest.raises(OrderRejected) as exc:
        broker.submit(order("buy", "0.9"), wallet(), snap("100"), T0)
    assert "zero" in exc.value.reason


def test_no_quantity_step_keeps_every_digit() -> None:
    broker = PaperBroker(PaperBrokerConfig(quantity_step=None))
    qty = D("0.123456789012345678901234567")
    f = broker.submit(order("buy", qty), wallet(), snap("100"), T0)
    assert f is not None and f.quantity == qty


# ----------------------------------------------------------------------------- the backtest spec


@pytest.mark.parametrize(
    "price",
    ["16547.5", "0.07012", "1", "3", "67123.45678901", "0.00000123", "29999.99", "7"],
)
def test_all_in_resize_matches_the_backtest_spec(price: str) -> None:
    """Cash 10000, fee 10 bps, all-in: quantity = cash / (price * 1.001), never above cash."""
    p = D(price)
    cash = D(10000)
    broker = PaperBroker()
    f = broker.submit(order("buy", "1e12"), wallet(cash), snap(p), T0, resize=True)
    assert f is not None
    expected = cash / (p * D("1.001"))
    assert abs(f.quantity - expected) / expected <= D("1e-20")
    assert f.quantity * f.price + f.fee <= cash
    assert f.fee == f.quantity * p * 10 / 10000


@pytest.mark.parametrize(
    ("cash", "price"),
    [("1234.56", "16547.5"), ("10000", "0.07012"), ("987.654321", "67123.45678901"),
     ("250", "3"), ("10069.88612", "100.43327474552243"), ("7", "29999.99")],
)  # fmt: skip
def test_all_in_buy_without_resize_is_never_rejected_for_its_own_rounding(
    cash: str, price: str
) -> None:
    """An all-in (whole) buy is sized to the cash at the fill price; Decimal rounding can put
    its cost a last digit above the cash (~15 % of cash/price pairs), which is trimmed, not a
    rejection, whether or not the agent's risk profile resizes orders."""
    broker = PaperBroker()
    for c, p in ((D(cash), D(price)), *((D(cash) + k, D(price)) for k in range(1, 40))):
        o = replace(order("buy", "1"), whole=True)
        f = broker.submit(o, wallet(c), snap(p), T0, resize=False)
        assert f is not None
        assert f.quantity * f.price + f.fee <= c
        assert abs(f.quantity - c / (p * D("1.001"))) <= f.quantity * D("1e-25")


# ----------------------------------------------------------------------------- idempotency


def test_same_idempotency_key_never_fills_twice() -> None:
    broker = PaperBroker()
    first = broker.submit(order("buy", "1", key="same"), wallet(), snap("100"), T0)
    assert first is not None
    with pytest.raises(OrderRejected) as exc:
        broker.submit(order("buy", "1", key="same"), wallet(), snap("100"), T0)
    assert "duplicate" in exc.value.reason


def test_key_of_a_resting_order_cannot_be_reused() -> None:
    broker = PaperBroker()
    o = order("buy", "1", type=OrderType.LIMIT, limit="90", key="k-rest")
    assert broker.submit(o, wallet(), snap("100"), T0) is None
    with pytest.raises(OrderRejected):
        broker.submit(order("buy", "1", key="k-rest"), wallet(), snap("100"), T0)


def test_remember_keys_blocks_previously_used_keys() -> None:
    broker = PaperBroker()
    broker.remember_keys({"old-1", "old-2"})
    for k in ("old-1", "old-2"):
        with pytest.raises(OrderRejected):
            broker.submit(order("buy", "1", key=k), wallet(), snap("100"), T0)
    assert broker.submit(order("buy", "1", key="new"), wallet(), snap("100"), T0) is not None


def test_restore_order_rests_it_and_blocks_its_key() -> None:
    broker = PaperBroker()
    o = order("buy", "1", type=OrderType.LIMIT, limit="90", key="restored")
    broker.restore_order(o)
    assert broker.open_orders() == [o]
    with pytest.raises(OrderRejected):
        broker.submit(order("buy", "1", key="restored"), wallet(), snap("100"), T0)


# ----------------------------------------------------------------------------- resting orders


def test_limit_buy_rests_then_fills_when_a_bar_low_crosses() -> None:
    broker = PaperBroker()
    o = order("buy", "2", type=OrderType.LIMIT, limit="95")
    assert broker.submit(o, wallet(), snap("100"), T0) is None
    assert broker.open_orders(AGENT) == [o]
    # not crossed: low stays above the limit
    assert broker.on_tick(bar_tick("100", "101", "95.01", "100"), {AGENT: wallet()}) == []
    assert broker.open_orders() == [o]
    done = broker.on_tick(bar_tick("99", "100", "94", "96", time=T0 + 2 * MIN), {AGENT: wallet()})
    assert len(done) == 1
    got, f = done[0]
    assert got is o
    assert not isinstance(f, OrderRejected)
    assert f.price == D(95)  # min(open 99, limit 95)
    assert f.quantity == 2
    assert f.fee == D("0.19")
    assert f.time == T0 + 2 * MIN
    assert f.idempotency_key == o.idempotency_key
    assert broker.open_orders() == []
    # filled orders do not fill again
    assert broker.on_tick(bar_tick("90", "91", "80", "85"), {AGENT: wallet()}) == []


def test_limit_buy_gapping_below_fills_at_the_open() -> None:
    broker = PaperBroker()
    broker.submit(order("buy", "1", type=OrderType.LIMIT, limit="95"), wallet(), snap("100"), T0)
    [(_, f)] = broker.on_tick(bar_tick("90", "92", "89", "91"), {AGENT: wallet()})
    assert not isinstance(f, OrderRejected)
    assert f.price == D(90)


def test_limit_sell_fills_when_high_crosses_at_max_open_limit() -> None:
    broker = PaperBroker()
    w = wallet(BTC="1")
    broker.submit(order("sell", "1", type=OrderType.LIMIT, limit="110"), w, snap("100"), T0)
    assert broker.on_tick(bar_tick("100", "109.99", "99", "105"), {AGENT: w}) == []
    [(_, f)] = broker.on_tick(bar_tick("105", "111", "104", "110"), {AGENT: w})
    assert not isinstance(f, OrderRejected)
    assert f.price == D(110)
    broker.submit(order("sell", "1", type=OrderType.LIMIT, limit="110"), w, snap("100"), T0)
    [(_, g)] = broker.on_tick(bar_tick("115", "116", "112", "113"), {AGENT: w})
    assert not isinstance(g, OrderRejected)
    assert g.price == D(115)


def test_stop_sell_triggers_when_low_reaches_the_stop() -> None:
    broker = PaperBroker()
    w = wallet(BTC="1")
    broker.submit(order("sell", "1", type=OrderType.STOP, stop="90"), w, snap("100"), T0)
    assert broker.on_tick(bar_tick("100", "101", "90.01", "95"), {AGENT: w}) == []
    [(_, f)] = broker.on_tick(bar_tick("95", "96", "90", "92"), {AGENT: w})
    assert not isinstance(f, OrderRejected)
    assert f.price == D(90)  # min(open 95, stop 90)
    assert f.side is Side.SELL


def test_stop_sell_gapping_below_fills_at_the_open() -> None:
    broker = PaperBroker()
    w = wallet(BTC="1")
    broker.submit(order("sell", "1", type=OrderType.STOP, stop="90"), w, snap("100"), T0)
    [(_, f)] = broker.on_tick(bar_tick("80", "85", "79", "84"), {AGENT: w})
    assert not isinstance(f, OrderRejected)
    assert f.price == D(80)


def test_stop_buy_triggers_when_high_reaches_the_stop() -> None:
    broker = PaperBroker()
    broker.submit(order("buy", "1", type=OrderType.STOP, stop="110"), wallet(), snap("100"), T0)
    [(_, f)] = broker.on_tick(bar_tick("105", "111", "104", "110"), {AGENT: wallet()})
    assert not isinstance(f, OrderRejected)
    assert f.price == D(110)


def test_resting_order_fills_on_snapshot_when_no_bar() -> None:
    broker = PaperBroker()
    broker.submit(order("buy", "1", type=OrderType.LIMIT, limit="95"), wallet(), snap("100"), T0)
    tick = Tick(T0 + MIN, {"BTC": snap("96", time=T0 + MIN)})
    assert broker.on_tick(tick, {AGENT: wallet()}) == []
    tick = Tick(T0 + 2 * MIN, {"BTC": snap("94", time=T0 + 2 * MIN)})
    [(_, f)] = broker.on_tick(tick, {AGENT: wallet()})
    assert not isinstance(f, OrderRejected)
    assert f.price == D(94)


def test_resting_orders_of_other_symbols_are_not_touched() -> None:
    broker = PaperBroker()
    o = order("buy", "1", symbol="ETH", type=OrderType.LIMIT, limit="95")
    broker.submit(o, wallet(), snap("100", "ETH"), T0)
    assert broker.on_tick(bar_tick("50", "50", "50", "50"), {AGENT: wallet()}) == []
    assert broker.open_orders() == [o]


def test_resting_order_the_wallet_cannot_cover_is_rejected_at_fill_time() -> None:
    broker = PaperBroker()
    o = order("buy", "10", type=OrderType.LIMIT, limit="95")
    broker.submit(o, wallet("10000"), snap("100"), T0)
    poor = wallet("100")
    [(got, result)] = broker.on_tick(bar_tick("96", "97", "94", "95"), {AGENT: poor})
    assert got is o
    assert isinstance(result, OrderRejected)
    assert "insufficient cash" in result.reason
    assert broker.open_orders() == []  # it does not stay resting


def test_resting_sell_of_a_holding_that_is_gone_is_rejected() -> None:
    broker = PaperBroker()
    o = order("sell", "1", type=OrderType.STOP, stop="90")
    broker.submit(o, wallet(BTC="1"), snap("100"), T0)
    [(_, result)] = broker.on_tick(bar_tick("95", "96", "89", "90"), {AGENT: wallet()})
    assert isinstance(result, OrderRejected)


def test_resting_order_of_a_removed_agent_is_rejected() -> None:
    broker = PaperBroker()
    broker.submit(order("buy", "1", type=OrderType.LIMIT, limit="95"), wallet(), snap("100"), T0)
    [(_, result)] = broker.on_tick(bar_tick("95", "96", "90", "92"), {})
    assert isinstance(result, OrderRejected)
    assert result.reason


@pytest.mark.parametrize(
    ("type_", "limit", "stop"),
    [
        (OrderType.LIMIT, None, None),
        (OrderType.LIMIT, "0", None),
        (OrderType.LIMIT, "NaN", None),
        (OrderType.LIMIT, "-1", None),
        (OrderType.STOP, None, None),
        (OrderType.STOP, None, "0"),
        (OrderType.STOP, "100", None),  # a stop order needs a stop price, not a limit
    ],
)
def test_resting_order_without_a_valid_trigger_is_rejected(
    type_: OrderType, limit: str | None, stop: str | None
) -> None:
    broker = PaperBroker()
    with pytest.raises(OrderRejected):
        broker.submit(
            order("buy", "1", type=type_, limit=limit, stop=stop), wallet(), snap("100"), T0
        )
    assert broker.open_orders() == []


def test_cancel_and_cancel_all() -> None:
    broker = PaperBroker()
    a1 = order("buy", "1", type=OrderType.LIMIT, limit="90")
    a2 = order("sell", "1", type=OrderType.STOP, stop="80")
    b1 = order("buy", "1", type=OrderType.LIMIT, limit="90", agent="b")
    for o in (a1, a2, b1):
        broker.submit(o, wallet(BTC="1"), snap("100"), T0)
    assert broker.cancel(a1.id) == a1
    assert broker.cancel(a1.id) is None
    assert broker.cancel("nope") is None
    assert broker.open_orders(AGENT) == [a2]
    assert broker.cancel_all(AGENT) == [a2]
    assert broker.open_orders() == [b1]
    assert broker.cancel_all() == [b1]
    assert broker.open_orders() == []
    # cancelled orders never fill
    assert broker.on_tick(bar_tick("50", "200", "10", "60"), {AGENT: wallet(BTC="1")}) == []
