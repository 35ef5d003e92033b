"""The broker port: orders in, fills out."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from phantomex.domain.models import Fill, Order, Snapshot, Tick, Wallet


class OrderRejected(ValueError):
    """The broker refused an order; ``reason`` says why in words a user understands."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Broker(Protocol):
    """Executes orders against a wallet. Market orders fill at once; others rest until crossed."""

    def submit(
        self, order: Order, wallet: Wallet, snapshot: Snapshot, now: datetime
    ) -> Fill | None:
        """Fill a market order now (or raise OrderRejected); rest a limit/stop order (None)."""
        ...

    def on_tick(
        self, tick: Tick, wallets: dict[str, Wallet]
    ) -> list[tuple[Order, Fill | OrderRejected]]:
        """Check resting orders against the tick; return what filled or was cancelled."""
        ...

    def open_orders(self, agent_id: str | None = None) -> list[Order]: ...

    def cancel(self, order_id: str) -> Order | None: ...

    def cancel_all(self, agent_id: str | None = None) -> list[Order]: ...
