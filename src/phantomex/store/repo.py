"""The store: every read and write of PhantomEx's database goes through here."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Table,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.expression import Executable

from phantomex.domain.agent import Agent, AgentSpec
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import (
    AgentStatus,
    Deposit,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    Side,
    Snapshot,
    Wallet,
)
from phantomex.domain.news import NewsItem
from phantomex.domain.risk import RiskState
from phantomex.store import news as news_sql
from phantomex.store.db import make_engine, migrate
from phantomex.store.models import (
    AgentRow,
    DecisionRow,
    DepositRow,
    LLMCacheRow,
    LLMCallRow,
    OrderRow,
    PositionRow,
    PriceSnapshotRow,
    RiskEventRow,
    SettingRow,
    TradeRow,
    WalletRow,
)
from phantomex.store.port import UNREADABLE, BadAgentRow, DuplicateEntry

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

#: ``Session.info`` key of a unit's decisions not yet written (see :meth:`Store.save_decision`)
PENDING_DECISIONS = "phantomex.pending_decisions"


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
            _upsert(s.connection(), DECISIONS, rows, ("id",))

    # -- agents -----------------------------------------------------------------------------------
    def add_agent(self, agent: Agent, allowance: Deposit, wallet: Wallet) -> None:
        """Insert the agent, its wallet and its opening deposit in one transaction."""
        with self.session() as s:
            s.connection().execute(insert(AGENTS), [_agent_fields(agent)])
            self._write_entry(s, allowance, wallet)

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
                states.append(_state_params(a))
            else:
                whole.append(a)
        with self.session() as s:
            conn = s.connection()
            _upsert(conn, AGENTS, [_agent_fields(a) for a in whole], ("id",))
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
                    agents.append(_agent_from_row(r, r.wallet_allowance))
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
                self._write_entry(
                    s, entry, after, realized=after.realized_pnl - before.realized_pnl
                )
        except IntegrityError as exc:
            if "idempotency_key" in str(exc.orig) or "UNIQUE" in str(exc.orig).upper():
                raise DuplicateEntry(f"entry {entry.idempotency_key} is already stored") from exc
            raise

    def _write_entry(
        self, s: Session, entry: Fill | Deposit, wallet: Wallet, realized: Decimal | None = None
    ) -> None:
        conn = s.connection()
        if isinstance(entry, Fill):
            conn.execute(
                insert(TRADES),
                [
                    {
                        "agent_id": entry.agent_id,
                        "seq": wallet.version,
                        "decision_id": entry.decision_id,
                        "order_id": entry.order_id,
                        "symbol": entry.symbol,
                        "side": entry.side.value,
                        "quantity": entry.quantity,
                        "price": entry.price,
                        "fee": entry.fee,
                        "realized_pnl": realized if entry.side is Side.SELL else None,
                        "reasoning": entry.reasoning,
                        "idempotency_key": entry.idempotency_key,
                        "time": entry.time,
                    }
                ],
            )
            if entry.decision_id:
                conn.execute(
                    update(DECISIONS)
                    .where(DECISIONS.c.id == entry.decision_id)
                    .values(status="executed", price=entry.price, resolved_at=entry.time)
                )
            if entry.order_id:
                conn.execute(
                    update(ORDERS)
                    .where(ORDERS.c.id == entry.order_id)
                    .values(status=OrderStatus.FILLED.value)
                )
        else:
            conn.execute(
                insert(DEPOSITS),
                [
                    {
                        "agent_id": entry.agent_id,
                        "seq": wallet.version,
                        "amount": entry.amount,
                        "initial": entry.initial,
                        "idempotency_key": entry.idempotency_key,
                        "time": entry.time,
                    }
                ],
            )
        _upsert(
            conn,
            WALLETS,
            [
                {
                    "agent_id": wallet.agent_id,
                    "allowance": wallet.allowance,
                    "cash": wallet.cash,
                    "deposits": wallet.deposits,
                    "realized_pnl": wallet.realized_pnl,
                    "fees_paid": wallet.fees_paid,
                    "version": wallet.version,
                }
            ],
            ("agent_id",),
        )
        conn.execute(delete(POSITIONS).where(POSITIONS.c.agent_id == wallet.agent_id))
        positions = [
            {
                "agent_id": wallet.agent_id,
                "symbol": pos.symbol,
                "quantity": pos.quantity,
                "cost": pos.cost,
                "opened_at": pos.opened_at,
            }
            for pos in wallet.positions.values()
        ]
        if positions:
            conn.execute(insert(POSITIONS), positions)

    def load_wallets(self) -> dict[str, Wallet]:
        with self.session() as s:
            conn = s.connection()
            wallets = {
                w.agent_id: Wallet(
                    agent_id=w.agent_id,
                    allowance=w.allowance,
                    cash=w.cash,
                    deposits=w.deposits,
                    realized_pnl=w.realized_pnl,
                    fees_paid=w.fees_paid,
                    version=w.version,
                )
                for w in conn.execute(select(WALLETS))
            }
            for p in conn.execute(select(POSITIONS)):
                if p.agent_id in wallets:
                    wallets[p.agent_id].positions[p.symbol] = Position(
                        p.symbol, p.quantity, p.cost, p.opened_at
                    )
            return wallets

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
        fields = _decision_fields(rec)
        current = self._unit.get()
        if current is not None:
            current.info.setdefault(PENDING_DECISIONS, {})[rec.id] = fields
            return
        with self.session() as s:
            _upsert(s.connection(), DECISIONS, [fields], ("id",))

    def get_decision(self, decision_id: str) -> DecisionRecord | None:
        with self.session() as s:
            row = s.connection().execute(select(DECISIONS).where(DECISIONS.c.id == decision_id))
            found = row.first()
            return _decision_from_row(found) if found is not None else None

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
            return [_decision_from_row(r) for r in s.connection().execute(q)]

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
            _upsert(s.connection(), ORDERS, [row], ("id",))

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
            rows = [_trade_dict(t, name) for t, name in s.execute(q)]
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
            _upsert(s.connection(), SNAPSHOTS, list(rows.values()), ("symbol", "time"))

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
            _upsert(s.connection(), CACHE, [row], ("key",))

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
            _upsert(s.connection(), STATE, [{"key": key, "value": value}], ("key",))


def _upsert(
    conn: Connection, table: Table, rows: list[dict[str, Any]], keys: Sequence[str]
) -> None:
    """Insert ``rows`` (dicts with the same columns, distinct ``keys``), updating those whose
    ``keys`` are stored already: one executemany statement on SQLite and PostgreSQL."""
    if not rows:
        return
    dialect = conn.dialect.name
    columns = tuple(c for c in rows[0] if c not in keys)
    if dialect in ("sqlite", "postgresql"):
        conn.execute(_upsert_statement(dialect, table, tuple(keys), columns), rows)
        return
    for row in rows:  # any other database: update, else insert
        where = [table.c[k] == row[k] for k in keys]
        done = conn.execute(update(table).where(*where).values({c: row[c] for c in columns}))
        if done.rowcount == 0:
            conn.execute(insert(table), [row])


@functools.cache
def _upsert_statement(
    dialect: str, table: Table, keys: tuple[str, ...], columns: tuple[str, ...]
) -> Executable:
    """INSERT .. ON CONFLICT (keys) DO UPDATE SET columns (built once per shape)."""
    stmt = (sqlite.insert if dialect == "sqlite" else postgresql.insert)(table)
    if not columns:
        return stmt.on_conflict_do_nothing(index_elements=list(keys))
    return stmt.on_conflict_do_update(
        index_elements=list(keys), set_={c: stmt.excluded[c] for c in columns}
    )


def _agent_fields(agent: Agent) -> dict[str, Any]:
    spec = agent.spec
    return {
        "id": agent.id,
        "name": spec.name,
        "brain": spec.brain,
        "params": spec.params,
        "goal": spec.goal,
        "mode": spec.mode.value,
        "symbols": spec.symbols,
        "interval_seconds": spec.interval_seconds,
        "risk": spec.risk.model_dump(mode="json"),
        "created_at": agent.created_at,
        **_agent_state(agent),
    }


def _agent_state(agent: Agent) -> dict[str, Any]:
    """The columns that running an agent changes (its spec changes only by a user's edit)."""
    return {
        "status": agent.status.value,
        "status_reason": agent.status_reason,
        "risk_state": agent.risk_state.to_json(),
        "brain_state": agent.brain_state,
        "last_decided_at": agent.last_decided_at,
    }


def _state_params(agent: Agent) -> dict[str, Any]:
    """The parameters of :data:`_SAVE_STATE` (bound names must differ from column names)."""
    return {"p_id": agent.id, **{f"p_{c}": v for c, v in _agent_state(agent).items()}}


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


def _agent_from_row(r: Row[Any], allowance: Decimal) -> Agent:
    spec = AgentSpec(
        name=r.name,
        brain=r.brain,
        params=r.params,
        goal=r.goal,
        mode=r.mode,
        allowance=allowance,
        symbols=r.symbols,
        interval_seconds=r.interval_seconds,
        risk=r.risk,
    )
    return Agent(
        id=r.id,
        spec=spec,
        created_at=r.created_at,
        status=AgentStatus(r.status),
        status_reason=r.status_reason,
        risk_state=RiskState.from_json(r.risk_state),
        brain_state=dict(r.brain_state or {}),
        last_decided_at=r.last_decided_at,
    )


def _decision_fields(rec: DecisionRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "agent_id": rec.agent_id,
        "time": rec.time,
        "source": rec.source,
        "action": rec.action,
        "symbol": rec.symbol,
        "quantity": rec.quantity,
        "notional": rec.notional,
        "price": rec.price,
        "reasoning": rec.reasoning,
        "confidence": rec.confidence,
        "status": rec.status,
        "reason": rec.reason,
        "checks": list(rec.checks),  # copies: a buffered row must not change with the record
        "meta": dict(rec.meta),
        "expires_at": rec.expires_at,
        "resolved_at": rec.resolved_at,
    }


def _decision_from_row(r: Row[Any]) -> DecisionRecord:
    return DecisionRecord(
        id=r.id,
        agent_id=r.agent_id,
        time=r.time,
        source=r.source,
        action=r.action,
        status=r.status,
        symbol=r.symbol,
        quantity=r.quantity,
        notional=r.notional,
        price=r.price,
        reasoning=r.reasoning,
        confidence=r.confidence,
        reason=r.reason,
        checks=list(r.checks or []),
        meta=dict(r.meta or {}),
        expires_at=r.expires_at,
        resolved_at=r.resolved_at,
    )


def _trade_dict(t: TradeRow, agent_name: str) -> dict[str, Any]:
    return {
        "id": t.id,
        "agent_id": t.agent_id,
        "agent_name": agent_name,
        "seq": t.seq,
        "decision_id": t.decision_id,
        "order_id": t.order_id,
        "symbol": t.symbol,
        "side": t.side,
        "quantity": t.quantity,
        "price": t.price,
        "fee": t.fee,
        "notional": t.quantity * t.price,
        "realized_pnl": t.realized_pnl,
        "reasoning": t.reasoning,
        "idempotency_key": t.idempotency_key,
        "time": t.time,
    }
