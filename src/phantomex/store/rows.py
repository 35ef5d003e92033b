"""Rows of the store's tables to domain objects and back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Row

from phantomex.domain.agent import Agent, AgentSpec
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import AgentStatus
from phantomex.domain.risk import RiskState
from phantomex.store.models import TradeRow


def agent_fields(agent: Agent) -> dict[str, Any]:
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
        **agent_state(agent),
    }


def agent_state(agent: Agent) -> dict[str, Any]:
    """The columns that running an agent changes (its spec changes only by a user's edit)."""
    return {
        "status": agent.status.value,
        "status_reason": agent.status_reason,
        "risk_state": agent.risk_state.to_json(),
        "brain_state": agent.brain_state,
        "last_decided_at": agent.last_decided_at,
    }


def state_params(agent: Agent) -> dict[str, Any]:
    """The parameters of the store's agent-state update (bound names differ from column names)."""
    return {"p_id": agent.id, **{f"p_{c}": v for c, v in agent_state(agent).items()}}


def agent_from_row(r: Row[Any], allowance: Decimal) -> Agent:
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


def decision_fields(rec: DecisionRecord) -> dict[str, Any]:
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


def decision_from_row(r: Row[Any]) -> DecisionRecord:
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


def trade_dict(t: TradeRow, agent_name: str) -> dict[str, Any]:
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
