"""The IB venue's journal of working orders, kept in the store's state (``ib_orders``).

An order is written here *before* it is sent, so that after a lost answer, a reconnect or a
restart of PhantomEx its executions are still matched to the agent's order by the ``orderRef``
IB echoes - and the order is never sent again."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from phantomex.domain.models import Order, OrderType, Side

__all__ = ["STATE_KEY", "Journal", "Working"]

STATE_KEY = "ib_orders"


@dataclass
class Working:
    """An order sent to IB (``quantity`` as sent) whose executions are not all booked yet."""

    order: Order
    quantity: Decimal
    ref: str


def _dump(w: Working) -> dict[str, Any]:
    o = w.order
    return {
        "ref": w.ref,
        "quantity": str(w.quantity),
        "id": o.id,
        "agent_id": o.agent_id,
        "symbol": o.symbol,
        "side": o.side.value,
        "order_quantity": str(o.quantity),
        "idempotency_key": o.idempotency_key,
        "type": o.type.value,
        "decision_id": o.decision_id,
        "reason": o.reason,
        "created_at": o.created_at.isoformat() if o.created_at else None,
        "whole": o.whole,
    }


def _load(d: dict[str, Any]) -> Working:
    order = Order(
        id=d["id"],
        agent_id=d["agent_id"],
        symbol=d["symbol"],
        side=Side(d["side"]),
        quantity=Decimal(d["order_quantity"]),
        idempotency_key=d["idempotency_key"],
        type=OrderType(d["type"]),
        decision_id=d["decision_id"],
        reason=d["reason"],
        created_at=datetime.fromisoformat(d["created_at"]) if d["created_at"] else None,
        whole=bool(d["whole"]),
    )
    return Working(order, Decimal(d["quantity"]), d["ref"])


class Journal:
    """Working orders by orderRef, saved through ``save`` on every change."""

    def __init__(
        self,
        load: Callable[[], dict[str, Any] | None] = lambda: None,
        save: Callable[[dict[str, Any]], None] = lambda _state: None,
    ) -> None:
        self._save = save
        raw = (load() or {}).get("orders") or []
        self.orders: dict[str, Working] = {w.ref: w for w in map(_load, raw)}

    def add(self, working: Working) -> None:
        self.orders[working.ref] = working
        self._flush()

    def remove(self, ref: str) -> None:
        if self.orders.pop(ref, None) is not None:
            self._flush()

    def _flush(self) -> None:
        self._save({"orders": [_dump(w) for w in self.orders.values()]})
