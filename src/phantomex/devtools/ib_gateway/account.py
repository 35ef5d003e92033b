"""The paper account behind the stand-in: cash, positions, orders and executions, kept in a JSON
file so that a restarted gateway serves the same account (like a real gateway's account, which
lives at IB and not in the gateway). Money is Decimal throughout."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["Account", "Execution", "GatewayOrder", "Position", "commission_for"]

#: IB's fixed US stock pricing: USD 0.005 a share, at least USD 1.00, at most 1% of the value.
PER_SHARE, MINIMUM, MAXIMUM_PCT = Decimal("0.005"), Decimal("1.00"), Decimal("0.01")
DONE = ("Filled", "Cancelled", "Inactive", "ApiCancelled")


def commission_for(shares: Decimal, price: Decimal) -> Decimal:
    """The commission of one execution (fixed pricing), rounded to the cent."""
    fee = max(MINIMUM, shares * PER_SHARE)
    return min(fee, shares * price * MAXIMUM_PCT).quantize(Decimal("0.01"))


@dataclass
class GatewayOrder:
    """An order as the gateway keeps it (what openOrder and orderStatus report)."""

    order_id: int
    perm_id: int
    client_id: int
    symbol: str
    action: str  # BUY | SELL
    quantity: Decimal
    order_type: str  # MKT | LMT | STP
    limit_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    order_ref: str
    status: str = "PreSubmitted"
    filled: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)  # sum of shares * price of the executions
    last_price: Decimal = Decimal(0)
    held: bool = False  # scripted to stay working, unfilled

    @property
    def remaining(self) -> Decimal:
        return self.quantity - self.filled

    @property
    def avg_price(self) -> Decimal:
        return self.notional / self.filled if self.filled else Decimal(0)

    @property
    def done(self) -> bool:
        return self.status in DONE


@dataclass
class Execution:
    exec_id: str
    order_id: int
    perm_id: int
    client_id: int
    symbol: str
    side: str  # BOT | SLD
    shares: Decimal
    price: Decimal
    cum_qty: Decimal
    avg_price: Decimal
    order_ref: str
    time: str  # TWS format
    commission: Decimal


@dataclass
class Position:
    quantity: Decimal = Decimal(0)
    cost: Decimal = Decimal(0)  # total cost basis including commissions

    @property
    def avg_cost(self) -> Decimal:
        return self.cost / self.quantity if self.quantity else Decimal(0)


@dataclass
class Account:
    """One paper account (``DU…``) with its orders and executions."""

    account_id: str = "DU1234567"
    cash: Decimal = Decimal(100_000)
    currency: str = "USD"
    positions: dict[str, Position] = field(default_factory=dict)
    orders: dict[int, GatewayOrder] = field(default_factory=dict)  # by perm id
    executions: list[Execution] = field(default_factory=list)
    next_order_id: int = 1
    next_perm_id: int = 1_000_001
    next_exec: int = 1

    def apply(self, order: GatewayOrder, shares: Decimal, price: Decimal, time: str) -> Execution:
        """Execute ``shares`` of ``order`` at ``price``: cash, position, order and commission."""
        fee = commission_for(shares, price)
        order.filled += shares
        order.notional += shares * price
        order.last_price = price
        order.status = "Filled" if order.remaining == 0 else "Submitted"
        pos = self.positions.setdefault(order.symbol, Position())
        if order.action == "BUY":
            self.cash -= shares * price + fee
            pos.cost += shares * price + fee
            pos.quantity += shares
        else:
            self.cash += shares * price - fee
            pos.cost -= pos.avg_cost * shares
            pos.quantity -= shares
        if pos.quantity == 0:
            del self.positions[order.symbol]
        ex = Execution(
            exec_id=f"0000e0d5.{self.next_exec:08x}.01.01",
            order_id=order.order_id,
            perm_id=order.perm_id,
            client_id=order.client_id,
            symbol=order.symbol,
            side="BOT" if order.action == "BUY" else "SLD",
            shares=shares,
            price=price,
            cum_qty=order.filled,
            avg_price=order.avg_price,
            order_ref=order.order_ref,
            time=time,
            commission=fee,
        )
        self.next_exec += 1
        self.executions.append(ex)
        return ex

    # -- persistence ------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        data = asdict(self)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, default=str, indent=1))
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> Account:
        raw: dict[str, Any] = json.loads(path.read_text())
        dec = {"cash", "quantity", "cost", "filled", "notional", "last_price", "shares", "price"}
        dec |= {"cum_qty", "avg_price", "commission", "limit_price", "aux_price"}

        def fix(d: dict[str, Any]) -> dict[str, Any]:
            return {k: Decimal(v) if k in dec and v is not None else v for k, v in d.items()}

        return cls(
            account_id=raw["account_id"],
            cash=Decimal(raw["cash"]),
            currency=raw["currency"],
            positions={k: Position(**fix(v)) for k, v in raw["positions"].items()},
            orders={int(k): GatewayOrder(**fix(v)) for k, v in raw["orders"].items()},
            executions=[Execution(**fix(e)) for e in raw["executions"]],
            next_order_id=raw["next_order_id"],
            next_perm_id=raw["next_perm_id"],
            next_exec=raw["next_exec"],
        )
