"""Execution: orders to the broker, fills through the ledger, resting orders and forced exits."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

from phantomex.broker.base import OrderRejected
from phantomex.domain.agent import Agent
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import (
    MARKET_ORDER,
    ORDER_OPEN,
    SELL_SIDE,
    Action,
    Decision,
    DecisionStatus,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Side,
    Tick,
    Wallet,
)
from phantomex.kernel.events import DecisionChanged, TradeMade
from phantomex.kernel.journal import Journal
from phantomex.kernel.state import KernelError, KernelState, NotFound
from phantomex.kernel.unit import UnitOfWork
from phantomex.ledger.ledger import LedgerError
from phantomex.ledger.settlement import settle_resolved
from phantomex.market.base import ResolvingFeed
from phantomex.risk.engine import Verdict, price_problem
from phantomex.risk.market_hours import market_closed
from phantomex.store.port import DuplicateEntry

log = logging.getLogger(__name__)
_EXECUTED = DecisionStatus.EXECUTED.value


class Execution:
    """Sends sized orders, applies fills, fills resting orders and closes positions by force."""

    def __init__(self, state: KernelState, journal: Journal, work: UnitOfWork) -> None:
        self.state = state
        self.journal = journal
        self.work = work
        feed = state.feed
        self._resolving = feed if isinstance(feed, ResolvingFeed) else None

    def execute(self, agent: Agent, rec: DecisionRecord, verdict: Verdict) -> Fill | None:
        """Send the sized order to the broker and apply the fill through the ledger."""
        assert verdict.side is not None and verdict.symbol is not None
        s, journal = self.state, self.journal
        now = s.time()
        shape = rec.meta.get("order")
        if shape:  # a limit or stop order, as the record keeps it
            kind = OrderType(shape.get("type", OrderType.MARKET.value))
            limit, stop = _dec(shape.get("limit_price")), _dec(shape.get("stop_price"))
        else:
            kind, limit, stop = MARKET_ORDER, None, None
        order = Order(
            id=rec.id,
            agent_id=agent.id,
            symbol=verdict.symbol,
            side=verdict.side,
            quantity=verdict.quantity,
            idempotency_key=f"order:{rec.id}",
            type=kind,
            limit_price=limit,
            stop_price=stop,
            decision_id=rec.id,
            reason=rec.reasoning,
            created_at=now,
            whole=verdict.whole,
        )
        rec.quantity = verdict.quantity
        snap = s.prices[verdict.symbol]
        try:
            fill = s.broker.submit(
                order, s.ledger.view(agent.id), snap, now, resize=agent.spec.risk.resize_to_fit
            )
        except OrderRejected as exc:
            journal.resolve(rec, DecisionStatus.REJECTED, exc.reason)
            journal.risk_event(agent, "rejected", verdict.symbol, exc.reason)
            return None
        if fill is None:  # a limit or stop order now rests with the broker
            s.store.save_decision(rec)
            s.store.save_order(order, ORDER_OPEN)
            journal.publish_agent(agent)
            return None
        s.store.save_decision(rec)
        realized_before = s.ledger.view(agent.id).realized_pnl
        try:
            after = s.ledger.post(fill)  # the live wallet: only read here
        except DuplicateEntry:
            log.info("fill %s already stored; not applied twice", fill.idempotency_key)
            return None
        except LedgerError as exc:
            journal.resolve(rec, DecisionStatus.REJECTED, str(exc))
            return None
        agent.risk_state.last_trade_at = now
        rec.status, rec.price, rec.resolved_at = _EXECUTED, fill.price, now
        s.bus.emit(DecisionChanged(rec), now)
        realized = after.realized_pnl - realized_before if fill.side is SELL_SIDE else None
        s.bus.emit(TradeMade(fill, agent.name, realized), now)
        journal.publish_agent(agent)
        return fill

    def fill_resting(self, tick: Tick) -> None:
        s = self.state
        if not s.broker.open_orders():
            return
        wallets = {a: s.ledger.view(a) for a in s.agents}
        for order, result in s.broker.on_tick(tick, wallets):
            agent = s.agents.get(order.agent_id)
            if isinstance(result, OrderRejected) or agent is None:
                s.store.save_order(order, OrderStatus.CANCELLED)
                continue
            before = s.ledger.view(order.agent_id)
            try:
                after = s.ledger.post(result)  # read only: the realized P&L
            except (DuplicateEntry, LedgerError) as exc:
                s.store.save_order(order, OrderStatus.CANCELLED)
                log.warning("resting order %s not applied: %s", order.id, exc)
                continue
            agent.risk_state.last_trade_at = tick.time
            self.journal.publish_agent(agent)
            if s.bus.wants(TradeMade.type):  # a backtest follows no trade event
                realized = _realized(result, before, after)
                s.bus.emit(TradeMade(result, agent.name, realized), tick.time)

    def cancel_order(self, order_id: str) -> Order:
        """Cancel a resting order for a person; its decision is rejected. A venue that cannot
        confirm the cancel is a conflict (the order may still be working there)."""
        s = self.state
        try:
            order = s.broker.cancel(order_id)
        except OrderRejected as exc:
            raise KernelError(str(exc), code="conflict") from exc
        if order is None:
            raise NotFound("open order", order_id)
        s.store.save_order(order, OrderStatus.CANCELLED)
        rec = s.store.get_decision(order.decision_id or "")
        if rec is not None and rec.status != DecisionStatus.EXECUTED.value:  # IB: partly filled
            self.journal.resolve(rec, DecisionStatus.REJECTED, "order cancelled by a person")
        return order

    def settle_resolved(self, now: datetime) -> None:
        """Pay out positions in resolved markets (feeds with ``resolutions()``: Polymarket)."""
        s = self.state
        if self._resolving is None:
            return
        for fill in settle_resolved(s.ledger, self._resolving.resolutions(), now):
            agent = s.agents.get(fill.agent_id)
            name = agent.name if agent else None
            s.bus.emit(TradeMade(fill, name), now)
            if agent is not None:
                self.journal.publish_agent(agent)

    # -- forced exits -----------------------------------------------------------------------------
    def flatten(self, agent: Agent, kind: str) -> None:
        """Close every position; one without a tradable price now waits for one (recorded)."""
        for sym, pos in sorted(self.state.ledger.wallet(agent.id).positions.items()):
            problem = self.exit_problem(agent, sym)
            if problem:
                agent.risk_state.pending_exits[sym] = (kind, pos.quantity)
                self.journal.risk_event(
                    agent, kind, sym, f"cannot close {sym} now: {problem}; the exit waits"
                )
                continue
            self.force_sell(agent, sym, pos.quantity, kind, f"{kind}: closing {sym}")

    def exit_problem(self, agent: Agent, symbol: str) -> str | None:
        """Why a forced exit of ``symbol`` can't execute now (market closed, price suspect,
        missing, invalid or stale), or None."""
        s = self.state
        now = s.time()
        return (
            market_closed(s.feed.instruments.get(symbol), now)
            or s.guard.held().get(symbol)
            or price_problem(s.prices.get(symbol), now, agent.spec.risk.max_price_age_seconds)
        )

    def retry_exits(self, agent: Agent) -> None:
        """Execute the forced exits that waited for a tradable price, once there is one."""
        pending = agent.risk_state.pending_exits
        for sym, (kind, quantity) in sorted(pending.items()):
            held = self.state.ledger.wallet(agent.id).quantity(sym)
            if held > 0 and self.exit_problem(agent, sym):
                continue
            del pending[sym]
            self.work.save_agent(agent)
            if held > 0:
                detail = f"{kind}: closing {sym} (waited for a tradable price)"
                self.force_sell(agent, sym, min(quantity, held), kind, detail)

    def force_sell(self, agent: Agent, symbol: str, qty: Decimal, kind: str, detail: str) -> None:
        decision = Decision(Action.SELL, symbol, quantity=qty, reasoning=detail)
        rec = self.journal.record(agent, decision, source=f"risk:{kind}")
        verdict = Verdict(True, Side.SELL, symbol, qty, price=self.state.prices[symbol].price)
        self.execute(agent, rec, verdict)


def _dec(value: object) -> Decimal | None:
    return Decimal(str(value)) if value is not None else None


def _realized(fill: Fill, before: Wallet, after: Wallet) -> Decimal | None:
    """The P&L a sell realized (as the store records it with the trade); None for a buy."""
    return after.realized_pnl - before.realized_pnl if fill.side is SELL_SIDE else None
