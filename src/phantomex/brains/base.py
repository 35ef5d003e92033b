"""The brain port: ``decide(context) -> Decision``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol

from phantomex.domain.models import Decision, Snapshot, Wallet
from phantomex.market.base import HistoryView


@dataclass(slots=True)
class BrainContext:
    """What a brain may know when it decides. ``state`` is the brain's own memory: the kernel
    persists it with the agent, so it survives restarts (keep it JSON-serialisable)."""

    agent_id: str
    agent_name: str
    goal: str
    now: datetime
    symbols: list[str]
    prices: dict[str, Snapshot]
    history: HistoryView
    wallet: Wallet
    max_buy_quantity: dict[str, Decimal] = field(default_factory=dict)
    state: dict[str, Any] = field(default_factory=dict)
    recent_decisions: list[dict[str, Any]] = field(default_factory=list)  # slow brains only
    recent_trades: list[dict[str, Any]] = field(default_factory=list)  # slow brains only
    closed_trades: int = 0  # the agent's sells so far (slow brains only)

    def mark(self, symbol: str) -> Decimal | None:
        snap = self.prices.get(symbol)
        return snap.price if snap else None


class Brain(Protocol):
    """Anything that turns a context into a decision with a short, human-readable reasoning."""

    kind: ClassVar[str]

    async def decide(self, ctx: BrainContext) -> Decision: ...

    def describe(self) -> str:
        """One line for the UI: the strategy or model and its key parameters."""
        ...
