"""The store port: what the kernel and the backtest runner need from a store.

Implemented by :class:`~phantomex.store.repo.Store` (SQLite or PostgreSQL through SQLAlchemy)
and :class:`~phantomex.store.memory.MemoryStore` (backtests).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from phantomex.domain.agent import Agent
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import Deposit, Fill, Order, OrderStatus, Snapshot, Wallet
from phantomex.domain.news import NewsItem

__all__ = [
    "CLOCK_KEY",
    "UNREADABLE",
    "BadAgentRow",
    "DuplicateEntry",
    "KernelStore",
    "NewsStore",
]


class DuplicateEntry(ValueError):
    """A fill or deposit whose idempotency key is already stored: it was not applied again."""


#: The kernel state entry holding the kernel's clock (``{"time": iso}``).
CLOCK_KEY = "clock"
#: Told about a stored agent that cannot be read: (agent id, name, the error).
BadAgentRow = Callable[[str, str, Exception], None]
#: What reading a damaged or outdated row raises (validation, decoding, numbers).
UNREADABLE = (ValueError, TypeError, KeyError, ArithmeticError)


class KernelStore(Protocol):
    """A store the kernel runs on (see :class:`~phantomex.store.repo.Store` for the semantics)."""

    url: str

    def unit(self) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...

    def add_agent(self, agent: Agent, allowance: Deposit, wallet: Wallet) -> None: ...

    def save_agent(self, agent: Agent) -> None: ...

    def save_agents(self, agents: Iterable[Agent]) -> None: ...

    def delete_agent(self, agent_id: str, when: datetime) -> None: ...

    def load_agents(self, on_error: BadAgentRow | None = None) -> list[Agent]: ...

    def commit_entry(self, entry: Fill | Deposit, before: Wallet, after: Wallet) -> None: ...

    def load_wallets(self) -> dict[str, Wallet]: ...

    def ledger_entries(self, agent_id: str | None = None) -> dict[str, list[Fill | Deposit]]: ...

    def used_keys(self) -> set[str]: ...

    def save_decision(self, rec: DecisionRecord) -> None: ...

    def get_decision(self, decision_id: str) -> DecisionRecord | None: ...

    def decisions(
        self,
        agent_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DecisionRecord]: ...

    def save_order(self, order: Order, status: OrderStatus) -> None: ...

    def open_orders(self) -> list[Order]: ...

    def trades(
        self,
        agent_id: str | None = None,
        symbol: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]: ...

    def count_trades(self, agent_id: str, side: str | None = None) -> int: ...

    def save_snapshots(self, snapshots: list[Snapshot]) -> None: ...

    def prices_at(self, symbol: str, times: Sequence[datetime]) -> list[Decimal | None]: ...

    def add_risk_event(
        self,
        kind: str,
        detail: str,
        time: datetime,
        agent_id: str | None = None,
        symbol: str | None = None,
    ) -> None: ...

    def risk_events(
        self, agent_id: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]: ...

    def add_llm_calls(
        self, decision_id: str, agent_id: str, time: datetime, calls: list[dict[str, Any]]
    ) -> None: ...

    def llm_calls(self, decision_id: str) -> list[dict[str, Any]]: ...

    def cache_get(self, key: str) -> dict[str, Any] | None: ...

    def cache_entries(self) -> list[tuple[str, dict[str, Any], datetime]]: ...

    def cache_put(self, key: str, response: dict[str, Any], when: datetime) -> None: ...

    def get_state(self, key: str) -> dict[str, Any] | None: ...

    def set_state(self, key: str, value: dict[str, Any]) -> None: ...


class NewsStore(Protocol):
    """News items kept by a store (:class:`~phantomex.store.repo.Store` and
    :class:`~phantomex.store.memory.MemoryStore`), read only up to a time: see
    :func:`phantomex.domain.news.visible` for the semantics."""

    def add_news(self, items: Sequence[NewsItem]) -> int: ...

    def news(
        self,
        until: datetime,
        *,
        since: datetime | None = None,
        symbols: Sequence[str] | None = None,
        query: str | None = None,
        limit: int = 20,
    ) -> list[NewsItem]: ...

    def count_news(self) -> int: ...
