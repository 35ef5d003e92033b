"""An in-memory store for backtests: the kernel's store port without a database.

A backtest's records live as long as the run (its trades, decisions and equity go into the
result) and are never read by anyone else, so they need no durability, no transactions shared
with other readers and no SQL. This store keeps them in Python lists and dicts with the same
semantics as :class:`~phantomex.store.repo.Store` for everything the kernel and the backtest
runner use: agents and wallets saved as copies (the wallet a fill or deposit produced is kept as
the ledger made it: the ledger never changes a wallet in place), fills and deposits with unique
idempotency keys (a duplicate raises :class:`DuplicateEntry` and writes nothing), decisions and
orders updated by the fills that execute them, the LLM response cache and the key/value state.

Freqtrade does the same in its backtests (``Trade.use_db = False``: trades kept in memory).
A unit is not a transaction here: a backtest stops at the first failing tick, so there is never
a state to roll back to.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, fields, replace
from datetime import datetime
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any

from phantomex.domain.agent import Agent
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import (
    ORDER_FILLED,
    SELL_SIDE,
    AgentStatus,
    Deposit,
    Fill,
    Order,
    OrderStatus,
    Snapshot,
    Wallet,
)
from phantomex.domain.news import NewsItem, visible
from phantomex.store.port import BadAgentRow, DuplicateEntry

_NO_UNIT: AbstractContextManager[None] = nullcontext()

__all__ = ["MemoryStore"]

_RECORD_FIELDS = attrgetter(*(f.name for f in fields(DecisionRecord)))
_SEQ = itemgetter(0)  # of a (seq, entry) pair
_TIME_SEQ = attrgetter("fill.time", "seq")  # of a _Trade


def _copy_record(rec: DecisionRecord) -> DecisionRecord:
    """A shallow copy of ``rec`` (as ``copy.copy``, without its generic reduce protocol)."""
    return DecisionRecord(*_RECORD_FIELDS(rec))


@dataclass(slots=True)
class _Trade:
    fill: Fill
    seq: int
    realized_pnl: Decimal | None
    id: int


class MemoryStore:
    """The kernel's store, in memory (see the module docstring)."""

    url = "memory://"

    def __init__(self) -> None:
        self._agents: dict[str, Agent] = {}
        self._deleted: set[str] = set()
        self._wallets: dict[str, Wallet] = {}
        self._trades: list[_Trade] = []
        self._deposits: list[tuple[int, Deposit]] = []
        self._keys: set[str] = set()  # idempotency keys of fills and deposits
        self._decisions: dict[str, DecisionRecord] = {}
        self._orders: dict[str, tuple[Order, str]] = {}
        self._snapshots: dict[str, Snapshot] = {}
        self._risk_events: list[dict[str, Any]] = []
        self._llm_calls: list[dict[str, Any]] = []
        self._cache: dict[str, tuple[dict[str, Any], datetime]] = {}
        self._state: dict[str, dict[str, Any]] = {}
        self._news: dict[str, NewsItem] = {}

    def close(self) -> None:
        """Nothing to release."""

    def unit(self) -> AbstractContextManager[None]:
        return _NO_UNIT  # nothing to commit or roll back

    # -- agents ---------------------------------------------------------------------------------
    def add_agent(self, agent: Agent, allowance: Deposit, wallet: Wallet) -> None:
        self._key(allowance.idempotency_key)
        self._agents[agent.id] = copy.deepcopy(agent)
        self._deposits.append((wallet.version, allowance))
        self._wallets[agent.id] = wallet.copy()

    def save_agent(self, agent: Agent) -> None:
        self._agents[agent.id] = copy.deepcopy(agent)

    def save_agents(self, agents: Iterable[Agent]) -> None:
        for agent in agents:
            self.save_agent(agent)

    def delete_agent(self, agent_id: str, when: datetime) -> None:
        self._deleted.add(agent_id)
        if agent_id in self._agents:
            self._agents[agent_id].status = AgentStatus.STOPPED

    def load_agents(self, on_error: BadAgentRow | None = None) -> list[Agent]:
        """The live agents (kept as objects here: none is ever unreadable)."""
        agents = [a for i, a in self._agents.items() if i not in self._deleted]
        return [copy.deepcopy(a) for a in sorted(agents, key=lambda a: a.created_at)]

    # -- wallets --------------------------------------------------------------------------------
    def commit_entry(self, entry: Fill | Deposit, before: Wallet, after: Wallet) -> None:
        """Record a fill or deposit and the wallet it produced (DuplicateEntry: nothing
        written)."""
        self._key(entry.idempotency_key)
        if isinstance(entry, Fill):
            realized = after.realized_pnl - before.realized_pnl if entry.side is SELL_SIDE else None
            self._trades.append(_Trade(entry, after.version, realized, len(self._trades) + 1))
            rec = self._decisions.get(entry.decision_id or "")
            if rec is not None:
                rec.status, rec.price, rec.resolved_at = "executed", entry.price, entry.time
            if entry.order_id in self._orders:
                self._orders[entry.order_id] = (self._orders[entry.order_id][0], ORDER_FILLED)
        else:
            self._deposits.append((after.version, entry))
        self._wallets[after.agent_id] = after  # never changed in place (see the module doc)

    def _key(self, key: str) -> None:
        if key in self._keys:
            raise DuplicateEntry(f"entry {key} is already stored")
        self._keys.add(key)

    def load_wallets(self) -> dict[str, Wallet]:
        return {a: w.copy() for a, w in self._wallets.items()}

    def ledger_entries(self, agent_id: str | None = None) -> dict[str, list[Fill | Deposit]]:
        """Every fill and deposit per agent, in the order they were applied."""
        entries: dict[str, list[tuple[int, Fill | Deposit]]] = {}
        items: list[tuple[int, Fill | Deposit]] = [(t.seq, t.fill) for t in self._trades]
        items += self._deposits
        for seq, entry in items:
            if agent_id is None or entry.agent_id == agent_id:
                entries.setdefault(entry.agent_id, []).append((seq, entry))
        return {a: [e for _, e in sorted(es, key=_SEQ)] for a, es in entries.items()}

    def used_keys(self) -> set[str]:
        return {t.fill.idempotency_key for t in self._trades} | {
            o.idempotency_key for o, _ in self._orders.values()
        }

    # -- decisions and orders ---------------------------------------------------------------------
    def save_decision(self, rec: DecisionRecord) -> None:
        self._decisions[rec.id] = _copy_record(rec)

    def get_decision(self, decision_id: str) -> DecisionRecord | None:
        rec = self._decisions.get(decision_id)
        return _copy_record(rec) if rec else None

    def decisions(
        self,
        agent_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DecisionRecord]:
        """Newest first (then by id), as :meth:`Store.decisions`."""
        found = [
            d
            for d in self._decisions.values()
            if (agent_id is None or d.agent_id == agent_id)
            and (status is None or d.status == status)
        ]
        found.sort(key=lambda d: d.id)
        found.sort(key=lambda d: d.time, reverse=True)
        return [_copy_record(d) for d in found[offset : offset + limit]]

    def save_order(self, order: Order, status: OrderStatus) -> None:
        self._orders[order.id] = (order, status)

    def open_orders(self) -> list[Order]:
        return [o for o, status in self._orders.values() if status is OrderStatus.OPEN]

    # -- trades ---------------------------------------------------------------------------------
    def trades(
        self,
        agent_id: str | None = None,
        symbol: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Trades newest first, with the total count (as :meth:`Store.trades`)."""
        found = [
            t
            for t in self._trades
            if (agent_id is None or t.fill.agent_id == agent_id)
            and (symbol is None or t.fill.symbol == symbol)
        ]
        found.sort(key=lambda t: (t.fill.time, t.id), reverse=True)
        return [self._trade_dict(t) for t in found[offset : offset + limit]], len(found)

    def fills(self, agent_id: str) -> list[Fill]:
        """Every fill of the agent, in the order :meth:`Kernel.trades` lists them (by time,
        then by the wallet version each produced), without the rows' other fields."""
        mine = [t for t in self._trades if t.fill.agent_id == agent_id]
        mine.sort(key=_TIME_SEQ)
        return [t.fill for t in mine]

    def _trade_dict(self, t: _Trade) -> dict[str, Any]:
        f = t.fill
        agent = self._agents.get(f.agent_id)
        return {
            "id": t.id,
            "agent_id": f.agent_id,
            "agent_name": agent.name if agent else None,
            "seq": t.seq,
            "decision_id": f.decision_id,
            "order_id": f.order_id,
            "symbol": f.symbol,
            "side": f.side.value,
            "quantity": f.quantity,
            "price": f.price,
            "fee": f.fee,
            "notional": f.quantity * f.price,
            "realized_pnl": t.realized_pnl,
            "reasoning": f.reasoning,
            "idempotency_key": f.idempotency_key,
            "time": f.time,
        }

    def count_trades(self, agent_id: str, side: str | None = None) -> int:
        return sum(
            1
            for t in self._trades
            if t.fill.agent_id == agent_id and (side is None or t.fill.side.value == side)
        )

    # -- market and risk events, LLM calls and cache, state -------------------------------------
    def save_snapshots(self, snapshots: list[Snapshot]) -> None:
        self._snapshots.update((s.symbol, s) for s in snapshots)

    def prices_at(self, symbol: str, times: Sequence[datetime]) -> list[Decimal | None]:
        """Only the latest snapshot is kept here: its price for the times at or after it."""
        snap = self._snapshots.get(symbol)
        return [snap.price if snap is not None and snap.time <= t else None for t in times]

    def add_risk_event(
        self,
        kind: str,
        detail: str,
        time: datetime,
        agent_id: str | None = None,
        symbol: str | None = None,
    ) -> None:
        event = {"agent_id": agent_id, "time": time, "kind": kind, "symbol": symbol}
        self._risk_events.append({"id": len(self._risk_events) + 1, **event, "detail": detail})

    def risk_events(self, agent_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        found = [e for e in reversed(self._risk_events) if agent_id in (None, e["agent_id"])]
        return found[:limit]

    def add_llm_calls(
        self, decision_id: str, agent_id: str, time: datetime, calls: list[dict[str, Any]]
    ) -> None:
        for call in calls:
            self._llm_calls.append(
                {"time": time, **call, "decision_id": decision_id, "agent_id": agent_id}
            )

    def llm_calls(self, decision_id: str) -> list[dict[str, Any]]:
        return [dict(c) for c in self._llm_calls if c["decision_id"] == decision_id]

    def agent_llm_calls(self, agent_id: str) -> list[dict[str, Any]]:
        """Every LLM call of an agent in the order made (a lean backtest keeps no holds, so
        its calls are not reachable through the decisions)."""
        return [dict(c) for c in self._llm_calls if c["agent_id"] == agent_id]

    def cache_get(self, key: str) -> dict[str, Any] | None:
        found = self._cache.get(key)
        return dict(found[0]) if found else None

    def cache_entries(self) -> list[tuple[str, dict[str, Any], datetime]]:
        return [(k, dict(r), when) for k, (r, when) in self._cache.items()]

    def cache_put(self, key: str, response: dict[str, Any], when: datetime) -> None:
        self._cache[key] = (dict(response), when)

    def add_news(self, items: Sequence[NewsItem]) -> int:
        added = 0
        for item in items:
            found = next(
                (
                    k
                    for k, old in self._news.items()
                    if k == item.key or (item.link and old.link == item.link)
                ),
                None,
            )
            if found is None:
                self._news[item.key] = item
                added += 1
            elif item.first_seen < self._news[found].first_seen:
                self._news[found] = replace(self._news[found], first_seen=item.first_seen)
        return added

    def news(
        self,
        until: datetime,
        *,
        since: datetime | None = None,
        symbols: Sequence[str] | None = None,
        query: str | None = None,
        limit: int = 20,
    ) -> list[NewsItem]:
        return visible(
            self._news.values(), until, since=since, symbols=symbols, query=query, limit=limit
        )

    def count_news(self) -> int:
        return len(self._news)

    def get_state(self, key: str) -> dict[str, Any] | None:
        value = self._state.get(key)
        return dict(value) if value is not None else None

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        self._state[key] = dict(value)
