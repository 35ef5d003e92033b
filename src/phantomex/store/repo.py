"""The store: every read and write of PhantomEx's database goes through here."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Engine,
    bindparam,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from phantomex.domain.agent import Agent, AgentSpec
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import (
    AgentStatus,
    Deposit,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Side,
    Snapshot,
    Wallet,
)
from phantomex.domain.news import NewsItem
from phantomex.store import news as news_sql
from phantomex.store.db import make_engine, migrate
from phantomex.store.ledger_rows import read_wallets, write_entry
from phantomex.store.models import (
    AgentRow,
    DepositRow,
    LLMCallRow,
    OrderRow,
    RiskEventRow,
    TradeRow,
)
from phantomex.store.port import UNREADABLE, BadAgentRow, DuplicateEntry
from phantomex.store.rows import (
    agent_fields,
    agent_from_row,
    decision_fields,
    decision_from_row,
    state_params,
    trade_dict,
)
from phantomex.store.tables import (
    AGENTS,
    CACHE,
    DECISIONS,
    ORDERS,
    SNAPSHOTS,
    STATE,
    WALLETS,
)
from phantomex.store.upsert import upsert

#: ``Session.info`` key of a unit's decisions not yet written (see :meth:`Store.save_decision`)
PENDING_DECISIONS = "phantomex.pending_decisions"

_STATE_COLUMNS = ("status", "status_reason", "risk_state", "brain_state", "last_decided_at")
_SAVE_STATE = (
    update(AGENTS)
    .where(AGENTS.c.id == bindparam("p_id"))
    .values({c: bindparam(f"p_{c}", type_=AGENTS.c[c].type) for c in _STATE_COLUMNS})
)


_PRICE_AT = (
    select(SNAPSHOTS.c.price)
    .where(
        SNAPSHOTS.c.symbol == bindparam("p_symbol"),
        SNAPSHOTS.c.time <= bindparam("p_time", type_=SNAPSHOTS.c.time.type),
    )
    .order_by(SNAPSHOTS.c.time.desc())
    .limit(1)
)


class Store:
    """Repository over SQLAlchemy. Opens (and migrates) the database at ``url``.

    The hot writes (agents, decisions, fills, wallets, the clock) are SQLAlchemy Core statements
    (dialect upserts on SQLite and PostgreSQL), not ORM merges; reads of those tables are Core
    too, so no ORM identity map can hold a stale copy of a row written this way."""

    def __init__(self, url: str, *, run_migrations: bool = True) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        if run_migrations:
            migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._unit: ContextVar[Session | None] = ContextVar(f"unit-{id(self)}", default=None)
        self._written_specs: dict[str, AgentSpec] = {}  # the spec each agent's row was saved with

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def unit(self) -> Iterator[None]:
        """Group every write made in this context (this task) into one transaction.

        The kernel runs each tick and each command in a unit: it commits whole or not at all, so a
        crash never leaves half a tick behind. Other tasks (API reads) keep their own sessions."""
        if self._unit.get() is not None:
            yield
            return
        with self._forget_on_rollback(), self._sessions.begin() as s:
            token = self._unit.set(s)
            try:
                yield
                self._write_pending(s)  # in the same transaction, before it commits
            finally:
                self._unit.reset(token)

    @contextmanager
    def _forget_on_rollback(self) -> Iterator[None]:
        """A transaction that rolls back may have saved specs it never committed: forget them
        all, so each agent's next save writes its whole row."""
        try:
            yield
        except BaseException:
            self._written_specs.clear()
            raise

    @contextmanager
    def session(self) -> Iterator[Session]:
        """The current unit's session, or a transaction of its own committed on success.

        In a unit, the decisions saved so far are written first, so whatever the caller reads or
        writes sees them."""
        current = self._unit.get()
        if current is not None:
            self._write_pending(current)
            yield current
            current.flush()
            return
        with self._forget_on_rollback(), self._sessions.begin() as s:
            yield s

    def _write_pending(self, s: Session) -> None:
        pending: dict[str, dict[str, Any]] | None = s.info.get(PENDING_DECISIONS)
        if pending:
            rows = list(pending.values())
            pending.clear()
            upsert(s.connection(), DECISIONS, rows, ("id",))

    # -- agents -----------------------------------------------------------------------------------
    def add_agent(self, agent: Agent, allowance: Deposit, wallet: Wallet) -> None:
        """Insert the agent, its wallet and its opening deposit in one transaction."""
        with self.session() as s:
            s.connection().execute(insert(AGENTS), [agent_fields(agent)])
            write_entry(s.connection(), allowance, wallet)

    def save_agent(self, agent: Agent) -> None:
        self.save_agents([agent])

    def save_agents(self, agents: Iterable[Agent]) -> None:
        """Write the agents' settings and state: the whole row of an agent whose spec changed
        since it was last saved, only the state columns of the others (one statement each)."""
        latest = {a.id: a for a in agents}  # an agent given twice: its last state
        if not latest:
            return
        whole: list[Agent] = []
        states: list[dict[str, Any]] = []
        for a in latest.values():
            if self._written_specs.get(a.id) is a.spec:
                states.append(state_params(a))
            else:
                whole.append(a)
        with self.session() as s:
            conn = s.connection()
            upsert(conn, AGENTS, [agent_fields(a) for a in whole], ("id",))
            if states:
                conn.execute(_SAVE_STATE, states)
        self._written_specs.update((a.id, a.spec) for a in whole)

    def delete_agent(self, agent_id: str, when: datetime) -> None:
        """Soft delete: the agent leaves every list, its trades stay for the audit."""
        with self.session() as s:
            s.connection().execute(
                update(AGENTS)
                .where(AGENTS.c.id == agent_id)
                .values(deleted_at=when, status=AgentStatus.STOPPED.value)
            )

    def agent_names(self) -> dict[str, str]:
        """Every agent's name by id, deleted agents included."""
        with self.session() as s:
            return {i: n for i, n in s.execute(select(AGENTS.c.id, AGENTS.c.name))}

    def load_agents(self, on_error: BadAgentRow | None = None) -> list[Agent]:
        """The live agents, oldest first. A row that cannot be read raises; with ``on_error``
        it is passed to it as (id, name, error) and left out instead."""
        query = (
            select(AGENTS, WALLETS.c.allowance.label("wallet_allowance"))
            .join(WALLETS, WALLETS.c.agent_id == AGENTS.c.id)
            .where(AGENTS.c.deleted_at.is_(None))
            .order_by(AGENTS.c.created_at)
        )
        with self.session() as s:
            conn = s.connection()
            try:
                rows = list(conn.execute(query).all())
            except UNREADABLE:  # a column that does not decode (bad JSON or number text)
                if on_error is None:
                    raise
                rows = []
                heads = query.with_only_columns(AGENTS.c.id, AGENTS.c.name)
                for head in conn.execute(heads).all():
                    try:
                        rows.append(conn.execute(query.where(AGENTS.c.id == head.id)).one())
                    except UNREADABLE as exc:
                        on_error(head.id, head.name, exc)
            agents = []
            for r in rows:
                try:
                    agents.append(agent_from_row(r, r.wallet_allowance))
                except UNREADABLE as exc:
                    if on_error is None:
                        raise
                    on_error(r.id, r.name, exc)
            return agents

    # -- wallets ----------------------------------------------------------------------------------
    def commit_entry(self, entry: Fill | Deposit, before: Wallet, after: Wallet) -> None:
        """Store a fill or deposit together with the wallet it produced, in one transaction.

        Raises DuplicateEntry when the idempotency key was used before (nothing is written)."""
        try:
            with (
                self.session() as s,
                s.begin_nested(),
            ):  # a savepoint: a duplicate undoes only itself
                realized = after.realized_pnl - before.realized_pnl
                write_entry(s.connection(), entry, after, realized=realized)
        except IntegrityError as exc:
            if "idempotency_key" in str(exc.orig) or "UNIQUE" in str(exc.orig).upper():
                raise DuplicateEntry(f"entry {entry.idempotency_key} is already stored") from exc
            raise

    def load_wallets(self) -> dict[str, Wallet]:
        with self.session() as s:
            return read_wallets(s.connection())

    def ledger_entries(self, agent_id: str | None = None) -> dict[str, list[Fill | Deposit]]:
        """Every stored fill and deposit per agent, in the order they were applied."""
        with self.session() as s:
            trades = select(TradeRow)
            deposits = select(DepositRow)
            if agent_id is not None:
                trades = trades.where(TradeRow.agent_id == agent_id)
                deposits = deposits.where(DepositRow.agent_id == agent_id)
            entries: dict[str, list[tuple[int, Fill | Deposit]]] = {}
            for t in s.scalars(trades):
                fill = Fill(
                    agent_id=t.agent_id,
                    symbol=t.symbol,
                    side=Side(t.side),
                    quantity=t.quantity,
                    price=t.price,
                    fee=t.fee,
                    time=t.time,
                    idempotency_key=t.idempotency_key,
                    order_id=t.order_id,
                    decision_id=t.decision_id,
                    reasoning=t.reasoning,
                )
                entries.setdefault(t.agent_id, []).append((t.seq, fill))
            for d in s.scalars(deposits):
                dep = Deposit(d.agent_id, d.amount, d.time, d.idempotency_key, d.initial)
                entries.setdefault(d.agent_id, []).append((d.seq, dep))
        return {a: [e for _, e in sorted(es, key=lambda x: x[0])] for a, es in entries.items()}

    def used_keys(self) -> set[str]:
        with self.session() as s:
            keys = set(s.scalars(select(TradeRow.idempotency_key)))
            keys |= set(s.scalars(select(OrderRow.idempotency_key)))
            return keys

    # -- decisions --------------------------------------------------------------------------------
    def save_decision(self, rec: DecisionRecord) -> None:
        """Insert the decision, or update it when it was saved before.

        In a unit the row is kept and written with the unit's other new decisions in one
        statement: before the next store call of the unit (so every read, and a fill marking the
        decision executed, sees it) or when the unit ends, in its transaction either way."""
        fields = decision_fields(rec)
        current = self._unit.get()
        if current is not None:
            current.info.setdefault(PENDING_DECISIONS, {})[rec.id] = fields
            return
        with self.session() as s:
            upsert(s.connection(), DECISIONS, [fields], ("id",))

    def get_decision(self, decision_id: str) -> DecisionRecord | None:
        with self.session() as s:
            row = s.connection().execute(select(DECISIONS).where(DECISIONS.c.id == decision_id))
            found = row.first()
            return decision_from_row(found) if found is not None else None

    def decisions(
        self,
        agent_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DecisionRecord]:
        with self.session() as s:
            q = select(DECISIONS)
            if agent_id:
                q = q.where(DECISIONS.c.agent_id == agent_id)
            if status:
                q = q.where(DECISIONS.c.status == status)
            q = q.order_by(DECISIONS.c.time.desc(), DECISIONS.c.id).limit(limit).offset(offset)
            return [decision_from_row(r) for r in s.connection().execute(q)]

    # -- orders -----------------------------------------------------------------------------------
    def save_order(self, order: Order, status: OrderStatus) -> None:
        row = {
            "id": order.id,
            "agent_id": order.agent_id,
            "decision_id": order.decision_id,
            "symbol": order.symbol,
            "side": order.side.value,
            "type": order.type.value,
            "quantity": order.quantity,
            "limit_price": order.limit_price,
            "stop_price": order.stop_price,
            "status": OrderStatus(status).value,
            "reason": order.reason,
            "idempotency_key": order.idempotency_key,
            "created_at": order.created_at,
        }
        with self.session() as s:
            upsert(s.connection(), ORDERS, [row], ("id",))

    def open_orders(self) -> list[Order]:
        with self.session() as s:
            rows = s.connection().execute(
                select(ORDERS).where(ORDERS.c.status == OrderStatus.OPEN.value)
            )
            return [
                Order(
                    id=r.id,
                    agent_id=r.agent_id,
                    symbol=r.symbol,
                    side=Side(r.side),
                    quantity=r.quantity,
                    idempotency_key=r.idempotency_key,
                    type=OrderType(r.type),
                    limit_price=r.limit_price,
                    stop_price=r.stop_price,
                    decision_id=r.decision_id,
                    reason=r.reason,
                    created_at=r.created_at,
                )
                for r in rows
            ]

    # -- trades -----------------------------------------------------------------------------------
    def trades(
        self,
        agent_id: str | None = None,
        symbol: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> tuple[list[dict[str, Any]], int]:
        """Trades newest first, with the total count for pagination."""
        with self.session() as s:
            q = select(TradeRow, AgentRow.name).join(AgentRow, AgentRow.id == TradeRow.agent_id)
            count = select(func.count(TradeRow.id))
            if agent_id:
                q = q.where(TradeRow.agent_id == agent_id)
                count = count.where(TradeRow.agent_id == agent_id)
            if symbol:
                q = q.where(TradeRow.symbol == symbol)
                count = count.where(TradeRow.symbol == symbol)
            q = q.order_by(TradeRow.time.desc(), TradeRow.id.desc()).limit(limit).offset(offset)
            rows = [trade_dict(t, name) for t, name in s.execute(q)]
            return rows, s.scalar(count) or 0

    def count_trades(self, agent_id: str, side: str | None = None) -> int:
        with self.session() as s:
            q = select(func.count(TradeRow.id)).where(TradeRow.agent_id == agent_id)
            if side:
                q = q.where(TradeRow.side == side)
            return s.scalar(q) or 0

    # -- market and risk events -------------------------------------------------------------------
    def save_snapshots(self, snapshots: list[Snapshot]) -> None:
        if not snapshots:
            return
        rows = {
            (snap.symbol, snap.time): {
                "symbol": snap.symbol,
                "time": snap.time,
                "price": snap.price,
                "change_24h_pct": snap.change_24h_pct,
            }
            for snap in snapshots
        }  # one row per symbol and time, the last one given (as merging them one by one did)
        with self.session() as s:
            upsert(s.connection(), SNAPSHOTS, list(rows.values()), ("symbol", "time"))

    def prices_at(self, symbol: str, times: Sequence[datetime]) -> list[Decimal | None]:
        """The latest stored price of ``symbol`` at or before each of ``times`` (None before
        its first): one indexed lookup per time, in one transaction."""
        with self.session() as s:
            conn = s.connection()
            return [
                conn.execute(_PRICE_AT, {"p_symbol": symbol, "p_time": t}).scalar() for t in times
            ]

    def add_risk_event(
        self,
        kind: str,
        detail: str,
        time: datetime,
        agent_id: str | None = None,
        symbol: str | None = None,
    ) -> None:
        with self.session() as s:
            s.add(
                RiskEventRow(agent_id=agent_id, time=time, kind=kind, symbol=symbol, detail=detail)
            )

    def risk_events(self, agent_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        with self.session() as s:
            q = select(RiskEventRow).order_by(RiskEventRow.id.desc()).limit(limit)
            if agent_id:
                q = q.where(RiskEventRow.agent_id == agent_id)
            return [
                {
                    "id": r.id,
                    "agent_id": r.agent_id,
                    "time": r.time,
                    "kind": r.kind,
                    "symbol": r.symbol,
                    "detail": r.detail,
                }
                for r in s.scalars(q)
            ]

    # -- LLM audit trail and response cache ------------------------------------------------------
    def add_llm_calls(
        self, decision_id: str, agent_id: str, time: datetime, calls: list[dict[str, Any]]
    ) -> None:
        """Store the calls behind one decision (dicts with LLMCallRow's column names)."""
        columns = {c.key for c in LLMCallRow.__table__.columns} - {"id", "decision_id", "agent_id"}
        with self.session() as s:
            for call in calls:
                fields = {k: v for k, v in call.items() if k in columns}
                fields.setdefault("time", time)
                s.add(LLMCallRow(decision_id=decision_id, agent_id=agent_id, **fields))

    def llm_calls(self, decision_id: str) -> list[dict[str, Any]]:
        with self.session() as s:
            rows = s.scalars(
                select(LLMCallRow)
                .where(LLMCallRow.decision_id == decision_id)
                .order_by(LLMCallRow.id)
            )
            names = [c.key for c in LLMCallRow.__table__.columns]
            return [{c: getattr(r, c) for c in names} for r in rows]

    def cache_get(self, key: str) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.connection().execute(select(CACHE.c.response).where(CACHE.c.key == key))
            found = row.first()
            return dict(found.response) if found is not None else None

    def cache_entries(self) -> list[tuple[str, dict[str, Any], datetime]]:
        """Every cached LLM response as (key, response, stored at)."""
        with self.session() as s:
            rows = s.connection().execute(select(CACHE))
            return [(r.key, dict(r.response), r.created_at) for r in rows]

    def cache_put(self, key: str, response: dict[str, Any], when: datetime) -> None:
        with self.session() as s:
            row = {"key": key, "response": response, "created_at": when}
            upsert(s.connection(), CACHE, [row], ("key",))

    # -- news (store/news.py) ------------------------------------------------------------------
    def add_news(self, items: Sequence[NewsItem]) -> int:
        """Store news items, deduplicated by key (guid, else link) and by link; an item stored
        already keeps the earlier ``first_seen``. Returns how many were new."""
        with self.session() as s:
            return news_sql.add_news(s.connection(), items)

    def news(
        self,
        until: datetime,
        *,
        since: datetime | None = None,
        symbols: Sequence[str] | None = None,
        query: str | None = None,
        limit: int = 20,
    ) -> list[NewsItem]:
        """Items first seen in ``(since, until]``, newest first (never one seen after ``until``)."""
        with self.session() as s:
            return news_sql.read_news(
                s.connection(), until, since=since, symbols=symbols, query=query, limit=limit
            )

    def count_news(self) -> int:
        with self.session() as s:
            return news_sql.count_news(s.connection())

    # -- key/value state --------------------------------------------------------------------------
    def get_state(self, key: str) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.connection().execute(select(STATE.c.value).where(STATE.c.key == key))
            found = row.first()
            return dict(found.value) if found is not None else None

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        with self.session() as s:
            upsert(s.connection(), STATE, [{"key": key, "value": value}], ("key",))
