"""The store: every read and write of PhantomEx's database goes through here."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from phantomex.domain.models import (
    AgentStatus,
    Deposit,
    Fill,
    Order,
    OrderType,
    Position,
    Side,
    Snapshot,
    Wallet,
)
from phantomex.kernel.agent import Agent, AgentSpec
from phantomex.risk.profile import RiskState
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


class DuplicateEntry(ValueError):
    """A fill or deposit whose idempotency key is already stored: it was not applied again."""


@dataclass(slots=True)
class DecisionRecord:
    """A decision as stored: what was decided, what became of it and why."""

    id: str
    agent_id: str
    time: datetime
    source: str
    action: str
    status: str
    symbol: str | None = None
    quantity: Decimal | None = None
    notional: Decimal | None = None
    price: Decimal | None = None
    reasoning: str = ""
    confidence: float | None = None
    reason: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None
    resolved_at: datetime | None = None


class Store:
    """Repository over SQLAlchemy. Opens (and migrates) the database at ``url``."""

    def __init__(self, url: str, *, run_migrations: bool = True) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        if run_migrations:
            migrate(self.engine)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._unit: ContextVar[Session | None] = ContextVar(f"unit-{id(self)}", default=None)

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
        with self._sessions.begin() as s:
            token = self._unit.set(s)
            try:
                yield
            finally:
                self._unit.reset(token)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """The current unit's session, or a transaction of its own committed on success."""
        current = self._unit.get()
        if current is not None:
            yield current
            current.flush()
            return
        with self._sessions.begin() as s:
            yield s

    # -- agents -----------------------------------------------------------------------------------
    def add_agent(self, agent: Agent, allowance: Deposit, wallet: Wallet) -> None:
        """Insert the agent, its wallet and its opening deposit in one transaction."""
        with self.session() as s:
            s.add(_agent_row(agent))
            s.flush()
            self._write_entry(s, allowance, wallet)

    def save_agent(self, agent: Agent) -> None:
        with self.session() as s:
            s.merge(_agent_row(agent))

    def delete_agent(self, agent_id: str, when: datetime) -> None:
        """Soft delete: the agent leaves every list, its trades stay for the audit."""
        with self.session() as s:
            s.execute(
                update(AgentRow)
                .where(AgentRow.id == agent_id)
                .values(deleted_at=when, status=AgentStatus.STOPPED.value)
            )

    def load_agents(self) -> list[Agent]:
        with self.session() as s:
            rows = s.execute(
                select(AgentRow, WalletRow.allowance)
                .join(WalletRow, WalletRow.agent_id == AgentRow.id)
                .where(AgentRow.deleted_at.is_(None))
                .order_by(AgentRow.created_at)
            ).all()
            return [_agent_from_row(r, allowance) for r, allowance in rows]

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
        if isinstance(entry, Fill):
            s.add(
                TradeRow(
                    agent_id=entry.agent_id,
                    seq=wallet.version,
                    decision_id=entry.decision_id,
                    order_id=entry.order_id,
                    symbol=entry.symbol,
                    side=entry.side.value,
                    quantity=entry.quantity,
                    price=entry.price,
                    fee=entry.fee,
                    realized_pnl=realized if entry.side is Side.SELL else None,
                    reasoning=entry.reasoning,
                    idempotency_key=entry.idempotency_key,
                    time=entry.time,
                )
            )
            if entry.decision_id:
                s.execute(
                    update(DecisionRow)
                    .where(DecisionRow.id == entry.decision_id)
                    .values(status="executed", price=entry.price, resolved_at=entry.time)
                )
            if entry.order_id:
                s.execute(
                    update(OrderRow).where(OrderRow.id == entry.order_id).values(status="filled")
                )
        else:
            s.add(
                DepositRow(
                    agent_id=entry.agent_id,
                    seq=wallet.version,
                    amount=entry.amount,
                    initial=entry.initial,
                    idempotency_key=entry.idempotency_key,
                    time=entry.time,
                )
            )
        s.flush()
        s.merge(
            WalletRow(
                agent_id=wallet.agent_id,
                allowance=wallet.allowance,
                cash=wallet.cash,
                deposits=wallet.deposits,
                realized_pnl=wallet.realized_pnl,
                fees_paid=wallet.fees_paid,
                version=wallet.version,
            )
        )
        s.execute(delete(PositionRow).where(PositionRow.agent_id == wallet.agent_id))
        for pos in wallet.positions.values():
            s.add(
                PositionRow(
                    agent_id=wallet.agent_id,
                    symbol=pos.symbol,
                    quantity=pos.quantity,
                    cost=pos.cost,
                    opened_at=pos.opened_at,
                )
            )

    def load_wallets(self) -> dict[str, Wallet]:
        with self.session() as s:
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
                for w in s.scalars(select(WalletRow))
            }
            for p in s.scalars(select(PositionRow)):
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
        with self.session() as s:
            s.merge(DecisionRow(**_decision_fields(rec)))

    def get_decision(self, decision_id: str) -> DecisionRecord | None:
        with self.session() as s:
            row = s.get(DecisionRow, decision_id)
            return _decision_from_row(row) if row else None

    def decisions(
        self,
        agent_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[DecisionRecord]:
        with self.session() as s:
            q = select(DecisionRow)
            if agent_id:
                q = q.where(DecisionRow.agent_id == agent_id)
            if status:
                q = q.where(DecisionRow.status == status)
            q = q.order_by(DecisionRow.time.desc(), DecisionRow.id).limit(limit).offset(offset)
            return [_decision_from_row(r) for r in s.scalars(q)]

    # -- orders -----------------------------------------------------------------------------------
    def save_order(self, order: Order, status: str) -> None:
        with self.session() as s:
            s.merge(
                OrderRow(
                    id=order.id,
                    agent_id=order.agent_id,
                    decision_id=order.decision_id,
                    symbol=order.symbol,
                    side=order.side.value,
                    type=order.type.value,
                    quantity=order.quantity,
                    limit_price=order.limit_price,
                    stop_price=order.stop_price,
                    status=status,
                    reason=order.reason,
                    idempotency_key=order.idempotency_key,
                    created_at=order.created_at,
                )
            )

    def open_orders(self) -> list[Order]:
        with self.session() as s:
            rows = s.scalars(select(OrderRow).where(OrderRow.status == "open"))
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
        with self.session() as s:
            for snap in snapshots:
                s.merge(_snapshot_row(s, snap))

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
            row = s.get(LLMCacheRow, key)
            return dict(row.response) if row else None

    def cache_entries(self) -> list[tuple[str, dict[str, Any], datetime]]:
        """Every cached LLM response as (key, response, stored at)."""
        with self.session() as s:
            rows = s.scalars(select(LLMCacheRow))
            return [(r.key, dict(r.response), r.created_at) for r in rows]

    def cache_put(self, key: str, response: dict[str, Any], when: datetime) -> None:
        with self.session() as s:
            s.merge(LLMCacheRow(key=key, response=response, created_at=when))

    # -- key/value state --------------------------------------------------------------------------
    def get_state(self, key: str) -> dict[str, Any] | None:
        with self.session() as s:
            row = s.get(SettingRow, key)
            return dict(row.value) if row else None

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        with self.session() as s:
            s.merge(SettingRow(key=key, value=value))


def _snapshot_row(s: Session, snap: Snapshot) -> PriceSnapshotRow:
    existing = s.scalar(
        select(PriceSnapshotRow.id).where(
            PriceSnapshotRow.symbol == snap.symbol, PriceSnapshotRow.time == snap.time
        )
    )
    return PriceSnapshotRow(
        id=existing,
        symbol=snap.symbol,
        time=snap.time,
        price=snap.price,
        change_24h_pct=snap.change_24h_pct,
    )


def _agent_row(agent: Agent) -> AgentRow:
    spec = agent.spec
    return AgentRow(
        id=agent.id,
        name=spec.name,
        brain=spec.brain,
        params=spec.params,
        goal=spec.goal,
        mode=spec.mode.value,
        status=agent.status.value,
        status_reason=agent.status_reason,
        symbols=spec.symbols,
        interval_seconds=spec.interval_seconds,
        risk=spec.risk.model_dump(mode="json"),
        risk_state=agent.risk_state.to_json(),
        brain_state=agent.brain_state,
        last_decided_at=agent.last_decided_at,
        created_at=agent.created_at,
    )


def _agent_from_row(r: AgentRow, allowance: Decimal) -> Agent:
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
        "checks": rec.checks,
        "meta": rec.meta,
        "expires_at": rec.expires_at,
        "resolved_at": rec.resolved_at,
    }


def _decision_from_row(r: DecisionRow) -> DecisionRecord:
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
