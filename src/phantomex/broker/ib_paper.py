"""Interactive Brokers *paper* accounts through ib_async (optional extra: ``phantomex[ib]``).

ib_async is imported only when a broker is built, with a clear error when the extra is missing.
The mapping from PhantomEx instruments and orders to IB contracts and orders is plain code
(:func:`contract_spec`, :func:`order_spec`) so it is tested without TWS; only paper accounts
(ids starting with ``DU``) are accepted (:func:`require_paper_accounts`). The connection lives in
:mod:`phantomex.broker.ib_link`, the ``ib-paper`` venue in :mod:`phantomex.broker.ib_broker`.
TWS listens on 7497 for paper trading, IB Gateway on 4002."""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from types import ModuleType

from phantomex.broker.base import OrderRejected
from phantomex.domain.models import AssetClass, Instrument, Order, OrderType

__all__ = [
    "ContractSpec",
    "IBUnavailable",
    "OrderSpec",
    "contract_spec",
    "load_ib_async",
    "order_spec",
    "require_paper_accounts",
]

INSTALL_HINT = 'pip install "phantomex[ib]"'
#: PhantomEx venue -> IB primary exchange (orders route through SMART).
PRIMARY_EXCHANGES = {"NYSE": "NYSE", "NASDAQ": "NASDAQ"}
_ORDER_TYPES = {OrderType.MARKET: "MKT", OrderType.LIMIT: "LMT", OrderType.STOP: "STP"}


class IBUnavailable(RuntimeError):
    """ib_async is not installed, or the account behind TWS is not a paper account."""


@dataclass(frozen=True, slots=True)
class ContractSpec:
    sec_type: str  # STK | CRYPTO
    symbol: str
    exchange: str
    currency: str
    primary_exchange: str | None = None


@dataclass(frozen=True, slots=True)
class OrderSpec:
    action: str  # BUY | SELL
    quantity: Decimal
    order_type: str  # MKT | LMT | STP
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    order_ref: str = ""  # our idempotency key: IB echoes it on executions


def load_ib_async() -> ModuleType:
    """The ib_async module, or :class:`IBUnavailable` saying how to install it."""
    try:
        return importlib.import_module("ib_async")
    except ImportError as exc:
        raise IBUnavailable(
            f"Interactive Brokers support needs the optional extra 'ib' ({INSTALL_HINT})"
        ) from exc


def contract_spec(instrument: Instrument) -> ContractSpec:
    """The IB contract of ``instrument`` (US stocks via SMART, crypto via PAXOS)."""
    if instrument.asset_class is AssetClass.EQUITY:
        primary = PRIMARY_EXCHANGES.get(instrument.venue or "")
        return ContractSpec("STK", instrument.symbol, "SMART", instrument.quote, primary)
    if instrument.asset_class is AssetClass.CRYPTO:
        return ContractSpec("CRYPTO", instrument.symbol, "PAXOS", instrument.quote)
    raise OrderRejected(
        f"{instrument.symbol}: Interactive Brokers does not trade {instrument.asset_class} here"
    )


def order_spec(order: Order, instrument: Instrument) -> OrderSpec:
    """The IB order for ``order``; quantities must be whole lots of the instrument."""
    qty = order.quantity
    if not qty.is_finite() or qty <= 0:
        raise OrderRejected(f"quantity must be positive, got {qty}")
    step = instrument.quantity_step
    if step is not None and qty % step != 0:
        raise OrderRejected(f"{order.symbol}: {qty} is not a multiple of the lot size {step}")
    kind = _ORDER_TYPES[order.type]
    if kind == "LMT" and order.limit_price is None:
        raise OrderRejected("a limit order needs a limit price")
    if kind == "STP" and order.stop_price is None:
        raise OrderRejected("a stop order needs a stop price")
    return OrderSpec(
        action=order.side.value.upper(),
        quantity=qty,
        order_type=kind,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        order_ref=order.idempotency_key,
    )


def require_paper_accounts(accounts: Iterable[str]) -> None:
    """Refuse anything but IB paper accounts (ids starting with ``DU``)."""
    found = list(accounts)
    live = [a for a in found if not a.startswith("DU")]
    if not found or live:
        raise IBUnavailable(f"refusing to trade: not a paper account ({live or 'no account'})")
