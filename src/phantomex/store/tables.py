"""The store's tables as SQLAlchemy Core tables (for statements built without the ORM)."""

from __future__ import annotations

from sqlalchemy import Table

from phantomex.store.models import (
    AgentRow,
    DecisionRow,
    DepositRow,
    LLMCacheRow,
    OrderRow,
    PositionRow,
    PriceSnapshotRow,
    SettingRow,
    TradeRow,
    WalletRow,
)

AGENTS: Table = AgentRow.__table__  # type: ignore[assignment]
WALLETS: Table = WalletRow.__table__  # type: ignore[assignment]
POSITIONS: Table = PositionRow.__table__  # type: ignore[assignment]
TRADES: Table = TradeRow.__table__  # type: ignore[assignment]
DEPOSITS: Table = DepositRow.__table__  # type: ignore[assignment]
DECISIONS: Table = DecisionRow.__table__  # type: ignore[assignment]
ORDERS: Table = OrderRow.__table__  # type: ignore[assignment]
SNAPSHOTS: Table = PriceSnapshotRow.__table__  # type: ignore[assignment]
STATE: Table = SettingRow.__table__  # type: ignore[assignment]
CACHE: Table = LLMCacheRow.__table__  # type: ignore[assignment]
