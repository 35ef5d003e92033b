"""The gateway's shared state: the account (persisted), prices, the script, the connections."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from phantomex.devtools.ib_gateway import messages as m
from phantomex.devtools.ib_gateway.account import Account, GatewayOrder
from phantomex.devtools.ib_gateway.behaviour import Behaviour, Fill, Hold, Partial
from phantomex.devtools.ib_gateway.wire import tws_time
from phantomex.market.calendars import session_at

if TYPE_CHECKING:
    from phantomex.devtools.ib_gateway.session import Session

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_STOCKS", "GatewayState"]

DEFAULT_STOCKS = {
    "AAPL": m.Stock(265598, "AAPL", "NASDAQ", "APPLE INC"),
    "MSFT": m.Stock(272093, "MSFT", "NASDAQ", "MICROSOFT CORP"),
    "IBM": m.Stock(8314, "IBM", "NYSE", "INTL BUSINESS MACHINES CORP"),
}


@dataclass
class GatewayState:
    """Everything sessions share. Only the gateway's event loop touches it."""

    path: Path
    account: Account
    stocks: dict[str, m.Stock] = field(default_factory=lambda: dict(DEFAULT_STOCKS))
    prices: dict[str, Decimal] = field(default_factory=dict)
    #: the account has real-time data; without it IB serves delayed data (type 3) instead
    realtime_data: bool = False
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    script: deque[Behaviour] = field(default_factory=deque)
    sessions: list[Session] = field(default_factory=list)
    #: orders execute in this exchange calendar's regular session only (None: always)
    calendar: str | None = "XNYS"
    #: every request received, as (message id, fields), for tests that count what was sent
    received: list[list[str]] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path, account_id: str, cash: Decimal) -> GatewayState:
        account = Account.load(path) if path.exists() else Account(account_id, cash)
        return cls(path, account)

    def save(self) -> None:
        self.account.save(self.path)

    def stock(self, symbol: str) -> m.Stock | None:
        return self.stocks.get(symbol.upper())

    def trading(self) -> bool:
        """Is the regular session open? Outside it IB accepts a DAY order (PreSubmitted) and
        works it from the open."""
        return self.calendar is None or session_at(self.calendar, self.clock()).open

    def next_behaviour(self) -> Behaviour:
        return self.script.popleft() if self.script else Fill()

    # -- executing -------------------------------------------------------------------------------
    def execute(self, order: GatewayOrder, shares: Decimal, price: Decimal) -> None:
        """Book an execution and tell every session (the owner gets execDetails)."""
        ex = self.account.apply(order, shares, price, tws_time(self.clock()))
        self.save()
        stock = self.stocks[order.symbol]
        for s in self.sessions:
            if s.client_id == order.client_id:
                s.send(m.exec_details(-1, ex, stock, self.account.account_id))
            s.send(m.order_status(order))
            if s.client_id == order.client_id:
                s.send(m.commission_report(ex, self.account.currency))
            s.send_portfolio(order.symbol)

    def crossed(self, order: GatewayOrder, price: Decimal) -> bool:
        if order.order_type == "MKT":
            return True
        buy = order.action == "BUY"
        if order.order_type == "LMT" and order.limit_price is not None:
            return price <= order.limit_price if buy else price >= order.limit_price
        if order.order_type == "STP" and order.aux_price is not None:
            return price >= order.aux_price if buy else price <= order.aux_price
        return False

    def on_price(self, symbol: str, price: Decimal) -> None:
        """A new price: working orders it crosses fill (a partial's rest, released holds)."""
        self.prices[symbol] = price
        for order in list(self.account.orders.values()):
            if order.symbol != symbol or order.done or order.held or not self.trading():
                continue
            if self.crossed(order, price):
                self.execute(order, order.remaining, price)
        for s in self.sessions:
            s.send_ticks(symbol)

    def start_order(self, order: GatewayOrder, behaviour: Behaviour) -> None:
        """What happens right after the order is accepted."""
        price = self.prices.get(order.symbol)
        if isinstance(behaviour, Hold):
            order.held = True
            self.save()
            return
        if price is None or not self.trading() or not self.crossed(order, price):
            return  # works until a price in the regular session crosses it
        if isinstance(behaviour, Partial) and 0 < behaviour.now < order.quantity:
            self.execute(order, behaviour.now, price)
        else:
            self.execute(order, order.remaining, price)
