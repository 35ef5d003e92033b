"""The session tables (on the store's declarative Base; migration ``0003_sessions``)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from phantomex.store.base import Base


class SessionRow(Base):
    """One session: what it runs (``spec``), on which market window, and how far it got."""

    __tablename__ = "sessions"
    __table_args__ = (Index("ix_sessions_fingerprint", "fingerprint"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(16))  # replay | live
    status: Mapped[str] = mapped_column(String(16))  # running | finished | stopped | ...
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    window: Mapped[dict[str, Any]] = mapped_column(JSON)  # symbols, start, end, source, period
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    ends_at: Mapped[datetime | None]  # live: the planned end (wall clock)
    finished_at: Mapped[datetime | None]
    clock: Mapped[datetime | None]  # the market time reached
    progress: Mapped[float] = mapped_column(default=0.0)
    times: Mapped[list[str]] = mapped_column(JSON, default=list)  # when each equity was marked
    error: Mapped[str | None] = mapped_column(Text)


class SessionAgentRow(Base):
    """One agent (or benchmark) of a session with its results so far."""

    __tablename__ = "session_agents"
    __table_args__ = (Index("ix_session_agents_session", "session_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(16))  # agent | benchmark
    entrant: Mapped[str] = mapped_column(String(300))  # what is ranked across sessions
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    agent_id: Mapped[str | None] = mapped_column(String(32))  # live sessions: the kernel's agent
    start_equity: Mapped[Decimal]
    equity: Mapped[list[str]] = mapped_column(JSON, default=list)  # exact decimal strings
    trades: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    decisions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    holds: Mapped[int] = mapped_column(Integer, default=0)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16))


class SessionSummaryRow(Base):
    """A summary of a session: written by an LLM (prompt and output kept) or from a template."""

    __tablename__ = "session_summaries"
    __table_args__ = (Index("ix_session_summaries_session", "session_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # periodic | final
    time: Mapped[datetime]  # the market time it covers up to
    created_at: Mapped[datetime]
    author: Mapped[str] = mapped_column(String(16))  # template | llm
    text: Mapped[str] = mapped_column(Text)
    figures: Mapped[dict[str, Any]] = mapped_column(JSON)
    endpoint: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(200))
    prompt: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    raw_output: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    latency_seconds: Mapped[float | None]
    tokens_in: Mapped[int | None] = mapped_column(Integer)
    tokens_out: Mapped[int | None] = mapped_column(Integer)
