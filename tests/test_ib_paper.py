"""The Interactive Brokers paper adapter: contract and order mapping, the paper-only guard and
the error when the optional extra is missing (ib_async itself needs TWS, so is not run here)."""

from __future__ import annotations

import importlib.util
from decimal import Decimal

import pytest

from phantomex.broker.base import OrderRejected
from phantomex.broker.ib_paper import (
    ContractSpec,
    IBUnavailable,
    OrderSpec,
    contract_spec,
    load_ib_async,
    order_spec,
    require_paper_accounts,
)
from phantomex.domain.models import AssetClass, Instrument, Order, OrderType, Side
from phantomex.market.yahoo import EquitySpec

D = Decimal
AAPL = EquitySpec("AAPL", "NASDAQ").instrument()
BTC = Instrument("BTC")


def order(qty: str, side: Side = Side.BUY, **kw: object) -> Order:
    return Order("o1", "a1", "AAPL", side, D(qty), "order:abc", **kw)  # type: ignore[arg-type]


def test_contracts() -> None:
    assert contract_spec(AAPL) == ContractSpec("STK", "AAPL", "SMART", "USD", "NASDAQ")
    ibm = EquitySpec("IBM").instrument()
    assert contract_spec(ibm).primary_exchange == "NYSE"
    assert contract_spec(BTC) == ContractSpec("CRYPTO", "BTC", "PAXOS", "USD")
    with pytest.raises(OrderRejected, match="does not trade prediction"):
        contract_spec(Instrument("X:YES", AssetClass.PREDICTION))


def test_orders() -> None:
    assert order_spec(order("3"), AAPL) == OrderSpec("BUY", D(3), "MKT", order_ref="order:abc")
    limit = order_spec(order("2", Side.SELL, type=OrderType.LIMIT, limit_price=D("150.25")), AAPL)
    assert (limit.action, limit.order_type, limit.limit_price) == ("SELL", "LMT", D("150.25"))
    stop = order_spec(order("1", type=OrderType.STOP, stop_price=D(140)), AAPL)
    assert (stop.order_type, stop.stop_price) == ("STP", D(140))
    assert order_spec(order("0.25"), EquitySpec("AAPL").instrument(fractional=True)).quantity == (
        D("0.25")
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (order("2.5"), "not a multiple of the lot size 1"),
        (order("0"), "quantity must be positive"),
        (order("1", type=OrderType.LIMIT), "needs a limit price"),
        (order("1", type=OrderType.STOP), "needs a stop price"),
    ],
)
def test_bad_orders_are_rejected(bad: Order, message: str) -> None:
    with pytest.raises(OrderRejected, match=message):
        order_spec(bad, AAPL)


def test_only_paper_accounts() -> None:
    require_paper_accounts(["DU1234567"])
    with pytest.raises(IBUnavailable, match="not a paper account"):
        require_paper_accounts(["DU1234567", "U7654321"])
    with pytest.raises(IBUnavailable, match="no account"):
        require_paper_accounts([])


@pytest.mark.skipif(
    importlib.util.find_spec("ib_async") is not None, reason="the ib extra is installed"
)
def test_missing_extra_is_a_clear_error() -> None:
    with pytest.raises(
        IBUnavailable, match=r"optional extra 'ib' \(pip install \"phantomex\[ib\]\"\)"
    ):
        load_ib_async()
