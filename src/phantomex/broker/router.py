"""Route each agent's orders to its venue: the paper broker, or an exchange broker.

:class:`VenueRouter` is a :class:`~phantomex.broker.base.Broker` made of brokers: agents on
paper are served by its :class:`PaperBroker`, so the kernel takes it as any broker. Orders of
agents set to an exchange venue go to that venue's :class:`CcxtBroker`; an agent whose venue
has no broker (no keys, real money not allowed) gets a refusal, never a paper fill in its
place."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from phantomex.broker.base import OrderRejected
from phantomex.broker.paper import PaperBroker, PaperBrokerConfig
from phantomex.broker.venues import VenueBook
from phantomex.domain.models import Fill, Order, Snapshot, Tick, Wallet

if TYPE_CHECKING:
    from phantomex.broker.ccxt_broker import CcxtBroker
    from phantomex.broker.ib_broker import IBBroker

    ExchangeBroker = CcxtBroker | IBBroker

log = logging.getLogger(__name__)


@runtime_checkable
class WorkingOrders(Protocol):
    """A venue whose orders keep working after ``submit`` (IB): their later fills come back
    on ticks, and they are listed with the paper broker's resting orders."""

    def on_tick(
        self, tick: Tick, wallets: dict[str, Wallet]
    ) -> list[tuple[Order, Fill | OrderRejected]]: ...

    def open_orders(self, agent_id: str | None = None) -> list[Order]: ...

    def cancel(self, order_id: str) -> Order | None: ...


class VenueRouter:
    """Routes each agent's orders to its venue's broker (paper unless its venue is set)."""

    def __init__(
        self,
        config: PaperBrokerConfig | None,
        book: VenueBook,
        brokers: dict[str, ExchangeBroker],
        refusals: dict[str, str] | None = None,
    ) -> None:
        self.paper = PaperBroker(config)
        self.book = book
        self.brokers = brokers
        #: venues that have no broker, with the reason (shown when one of their agents trades)
        self.refusals = dict(refusals or {})

    def exchange_broker(self, agent_id: str) -> ExchangeBroker | None:
        """The agent's exchange broker; None for paper agents; OrderRejected when its venue
        can't trade."""
        venue = self.book.venue_of(agent_id)
        if venue is None:
            return None
        broker = self.brokers.get(venue.name)
        if broker is None:
            why = self.refusals.get(venue.name, "no API keys stored for it")
            raise OrderRejected(f"venue {venue.name!r} is not available: {why}")
        return broker

    def submit(
        self,
        order: Order,
        wallet: Wallet,
        snapshot: Snapshot,
        now: datetime,
        *,
        resize: bool = False,
    ) -> Fill | None:
        broker = self.exchange_broker(order.agent_id)
        if broker is None:
            return self.paper.submit(order, wallet, snapshot, now, resize=resize)
        return broker.submit(order, wallet, snapshot, now)  # never resized on an exchange

    def cancel_all(self, agent_id: str | None = None) -> list[Order]:
        """Paper orders as before; for one agent on an exchange venue (the kill switch, deleting
        the agent) also its open orders on the exchange. ``cancel_all()`` without an agent is the
        kernel's start-up reset of paper state and leaves exchanges alone."""
        cancelled = self.paper.cancel_all(agent_id)
        if agent_id is not None:
            try:
                broker = self.exchange_broker(agent_id)
            except OrderRejected:
                broker = None
            if broker is not None:
                try:
                    broker.cancel_open_orders(agent_id)
                except Exception:  # the kill path must go on; the failure is in the log
                    log.exception("cancelling exchange orders of agent %s failed", agent_id)
        return cancelled

    def cancel_exchange_orders(self) -> dict[str, list[str]]:
        """Cancel every open order on every exchange account (the global kill switch's hook).
        Returns the cancelled exchange order ids per venue; failures are logged, not raised."""
        out: dict[str, list[str]] = {}
        for name, broker in sorted(self.brokers.items()):
            try:
                out[name] = broker.cancel_open_orders()
            except Exception:
                log.exception("cancelling open orders on %s failed", name)
                out[name] = []
        return out

    @property
    def fee_bps(self) -> Decimal:
        return self.paper.fee_bps

    def on_tick(
        self, tick: Tick, wallets: dict[str, Wallet]
    ) -> list[tuple[Order, Fill | OrderRejected]]:
        """Paper resting orders, then fills that exchange venues deliver later (IB)."""
        done = self.paper.on_tick(tick, wallets)
        for broker in self.brokers.values():
            if isinstance(broker, WorkingOrders):
                done += broker.on_tick(tick, wallets)
        return done

    def open_orders(self, agent_id: str | None = None) -> list[Order]:
        """Paper resting orders and orders working on an exchange venue (IB)."""
        out = self.paper.open_orders(agent_id)
        for broker in self.brokers.values():
            if isinstance(broker, WorkingOrders):
                out += broker.open_orders(agent_id)
        return out

    def cancel(self, order_id: str) -> Order | None:
        """A paper resting order, or an order working on an exchange venue (IB)."""
        order = self.paper.cancel(order_id)
        for broker in self.brokers.values():
            if order is None and isinstance(broker, WorkingOrders):
                order = broker.cancel(order_id)
        return order

    def restore_order(self, order: Order) -> None:
        """Paper orders rest here again; an exchange agent's order is its venue's business
        (IB keeps its own journal), never a paper order: only its key stays used."""
        if self.book.venue_of(order.agent_id) is None:
            self.paper.restore_order(order)
        else:
            self.paper.remember_keys({order.idempotency_key})

    def remember_keys(self, keys: set[str]) -> None:
        self.paper.remember_keys(keys)
        for broker in self.brokers.values():
            broker.remember_keys(keys)
