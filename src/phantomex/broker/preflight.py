"""The refusals every exchange venue makes before it sends an order (ccxt venues, ``ib-paper``)."""

from __future__ import annotations

from datetime import datetime

from phantomex.broker.base import OrderRejected
from phantomex.broker.venues import ExchangeSettings, Venue, real_money_refusal
from phantomex.domain.models import Order, OrderType, Snapshot
from phantomex.domain.money import is_valid_price

__all__ = ["refuse_unsendable"]


def refuse_unsendable(
    venue: Venue,
    settings: ExchangeSettings,
    order: Order,
    snapshot: Snapshot,
    used_keys: set[str],
    now: datetime,
    max_age_s: float,
) -> None:
    """OrderRejected unless the venue may trade (real money only when allowed), the order's
    idempotency key is unused, it is a market order and its price is valid and at most
    ``max_age_s`` old at ``now``."""
    refusal = real_money_refusal(venue, settings)
    if refusal:
        raise OrderRejected(refusal)
    if order.idempotency_key in used_keys:
        raise OrderRejected(f"duplicate order: key {order.idempotency_key} was already used")
    if order.type is not OrderType.MARKET:
        raise OrderRejected(f"{venue.name} takes market orders only, not {order.type}")
    if not is_valid_price(snapshot.price):
        raise OrderRejected(f"{venue.name}: no valid price for {order.symbol}")
    age = (now - snapshot.time).total_seconds()
    if age > max_age_s:
        raise OrderRejected(
            f"{venue.name}: the price of {order.symbol} is stale "
            f"({age:.0f}s old, limit {max_age_s:.0f}s)"
        )
