"""The broker port: orders in, fills out."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Protocol

from phantomex.domain.models import Fill, Order, Snapshot, Tick, Wallet


class OrderRejected(ValueError):
    """The broker refused an order; ``reason`` says why in words a user understands."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Broker(Protocol):
    """Executes orders against a wallet. Market orders fill at once; others rest until crossed.
    The kernel runs on one (:class:`~phantomex.broker.paper.PaperBroker` or a
    :class:`~phantomex.broker.router.VenueRouter` of venues)."""

    @property
    def fee_bps(self) -> Decimal:
        """The fee the risk engine sizes orders with (basis points of the notional)."""
        ...

    def submit(
        self,
        order: Order,
        wallet: Wallet,
        snapshot: Snapshot,
        now: datetime,
        *,
        resize: bool = False,
    ) -> Fill | None:
        """Fill a market order now (or raise OrderRejected); rest a limit/stop order (None).
        With ``resize``, a buy the cash cannot pay is trimmed to what it can (paper only)."""
        ...

    def on_tick(
        self, tick: Tick, wallets: dict[str, Wallet]
    ) -> list[tuple[Order, Fill | OrderRejected]]:
        """Check resting orders against the tick; return what filled or was cancelled."""
        ...

    def open_orders(self, agent_id: str | None = None) -> list[Order]: ...

    def cancel(self, order_id: str) -> Order | None:
        """The cancelled resting order; None when no such order rests; OrderRejected when the
        venue could not confirm the cancel."""
        ...

    def cancel_all(self, agent_id: str | None = None) -> list[Order]: ...

    def remember_keys(self, keys: set[str]) -> None:
        """The idempotency keys already used (after a restart: never fill one twice)."""
        ...

    def restore_order(self, order: Order) -> None:
        """Rest a stored open order again (after a restart)."""
        ...
