"""The schema: the core tables here, every feature's tables imported from beside it.

Portable types only (``store/base.py``): SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

# Every feature's tables, so that Base.metadata (migrations, tests) is the whole schema.
from phantomex.store import (  # noqa: F401
    auth_tables,
    exchange_tables,
    news_tables,
    optimize_tables,
    session_tables,
)
from phantomex.store.base import Base


class AgentRow(Base):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    brain: Mapped[str] = mapped_column(String(40))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    goal: Mapped[str] = mapped_column(Text, default="")
    mode: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    status_reason: Mapped[str] = mapped_column(Text, default="")
    symbols: Mapped[list[str]] = mapped_column(JSON)
    interval_seconds: Mapped[int] = mapped_column(Integer)
    risk: Mapped[dict[str, Any]] = mapped_column(JSON)
    risk_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    brain_state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_decided_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None]


class WalletRow(Base):
    __tablename__ = "wallets"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), primary_key=True)
    allowance: Mapped[Decimal]
    cash: Mapped[Decimal]
    deposits: Mapped[Decimal]
    realized_pnl: Mapped[Decimal]
    fees_paid: Mapped[Decimal]
    version: Mapped[int] = mapped_column(Integer)


class PositionRow(Base):
    __tablename__ = "positions"

    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    quantity: Mapped[Decimal]
    cost: Mapped[Decimal]
    opened_at: Mapped[datetime | None]


class TradeRow(Base):
    __tablename__ = "trades"
    __table_args__ = (
        UniqueConstraint("agent_id", "seq", name="uq_trades_agent_seq"),
        Index("ix_trades_agent_time", "agent_id", "time"),
        Index("ix_trades_symbol_time", "symbol", "time"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"))
    seq: Mapped[int] = mapped_column(Integer)
    decision_id: Mapped[str | None] = mapped_column(String(32))
    order_id: Mapped[str | None] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal]
    price: Mapped[Decimal]
    fee: Mapped[Decimal]
    realized_pnl: Mapped[Decimal | None]
    reasoning: Mapped[str] = mapped_column(Text, default="")
    idempotency_key: Mapped[str] = mapped_column(String(96), unique=True)
    time: Mapped[datetime]


class DepositRow(Base):
    __tablename__ = "deposits"
    __table_args__ = (UniqueConstraint("agent_id", "seq", name="uq_deposits_agent_seq"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"))
    seq: Mapped[int] = mapped_column(Integer)
    amount: Mapped[Decimal]
    initial: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str] = mapped_column(String(96), unique=True)
    time: Mapped[datetime]


class DecisionRow(Base):
    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_agent_time", "agent_id", "time"),
        Index("ix_decisions_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"))
    time: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(32))  # brain | manual | risk:<kind>
    action: Mapped[str] = mapped_column(String(8))
    symbol: Mapped[str | None] = mapped_column(String(32))
    quantity: Mapped[Decimal | None]
    notional: Mapped[Decimal | None]
    price: Mapped[Decimal | None]
    reasoning: Mapped[str] = mapped_column(Text, default="")
    confidence: Mapped[float | None]
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    checks: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    expires_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]


class OrderRow(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id"))
    decision_id: Mapped[str | None] = mapped_column(String(32))
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    type: Mapped[str] = mapped_column(String(8))
    quantity: Mapped[Decimal]
    limit_price: Mapped[Decimal | None]
    stop_price: Mapped[Decimal | None]
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    idempotency_key: Mapped[str] = mapped_column(String(96), unique=True)
    created_at: Mapped[datetime]


class PriceSnapshotRow(Base):
    __tablename__ = "price_snapshots"
    __table_args__ = (UniqueConstraint("symbol", "time", name="uq_snapshots_symbol_time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    symbol: Mapped[str] = mapped_column(String(32))
    time: Mapped[datetime]
    price: Mapped[Decimal]
    change_24h_pct: Mapped[Decimal | None]


class RiskEventRow(Base):
    __tablename__ = "risk_events"
    __table_args__ = (Index("ix_risk_events_time", "time"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    agent_id: Mapped[str | None] = mapped_column(String(32))
    time: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(32))
    symbol: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")


class SettingRow(Base):
    """Small key/value state of the server (replay cursor, kill switch)."""

    __tablename__ = "kernel_state"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(JSON)


class LLMCallRow(Base):
    """One call to a language model: the full audit trail of an LLM decision."""

    __tablename__ = "llm_calls"
    __table_args__ = (Index("ix_llm_calls_decision", "decision_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decision_id: Mapped[str] = mapped_column(String(32))
    agent_id: Mapped[str] = mapped_column(String(32))
    time: Mapped[datetime]
    purpose: Mapped[str] = mapped_column(String(16))  # decide | repair | tool | reflect
    endpoint: Mapped[str] = mapped_column(String(64))
    model: Mapped[str] = mapped_column(String(200))
    mode: Mapped[str | None] = mapped_column(String(16))
    messages: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    raw_response: Mapped[str | None] = mapped_column(Text)
    thinking: Mapped[str | None] = mapped_column(Text)
    parsed: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    latency_seconds: Mapped[float | None]
    tokens_in: Mapped[int | None] = mapped_column(Integer)
    tokens_out: Mapped[int | None] = mapped_column(Integer)
    cost: Mapped[Decimal | None]
    cached: Mapped[bool] = mapped_column(Boolean, default=False)
    cache_key: Mapped[str | None] = mapped_column(String(64))


class LLMCacheRow(Base):
    """Responses keyed by endpoint, model, messages and options, for exact re-runs."""

    __tablename__ = "llm_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    response: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime]
