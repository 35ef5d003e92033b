"""What the kernel writes and announces about decisions, agents and risk (store, then events)."""

from __future__ import annotations

import hashlib
from typing import Any

from phantomex.domain.agent import Agent, new_id
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import (
    MARKET_ORDER,
    Action,
    AgentStatus,
    Decision,
    DecisionStatus,
)
from phantomex.domain.money import is_valid_price
from phantomex.kernel.events import AgentUpdated, DecisionChanged, RiskRaised
from phantomex.kernel.state import KernelState
from phantomex.kernel.views import PRICE_LIST, AgentView, PriceView, agent_view, price_views
from phantomex.serialize import jsonable

_ACTIONS = {action: action.value for action in Action}  # without the enum's value property
_APPROVED = DecisionStatus.APPROVED.value


class Journal:
    """Decision records, agent status changes and risk events, each stored and published."""

    def __init__(self, state: KernelState) -> None:
        self.state = state
        self._seeds: dict[str, Any] = {}  # agent id -> SHA-256 of "<agent id>|", to copy

    def view_of(self, agent: Agent) -> AgentView:
        """``agent`` with its wallet valued at the latest marks (what ``agent`` events show)."""
        s = self.state
        return agent_view(agent, s.ledger.wallet(agent.id), s.marks, s.brains[agent.id].describe())

    def price_views(self) -> list[PriceView]:
        """The latest accepted price of each symbol, with whether it is suspect (and why)."""
        return price_views(self.state.prices, self.state.guard.suspects())

    def prices(self) -> list[dict[str, Any]]:
        """The prices as the ``price`` event shows them."""
        return PRICE_LIST.dump_python(self.price_views(), mode="json")

    def publish_agent(self, agent: Agent) -> None:
        if self.state.config.lean:
            return  # nobody follows a backtest's agent views
        view = self.view_of(agent).model_dump(mode="json")
        self.state.bus.emit(AgentUpdated(view), self.state.time())

    def set_status(self, agent: Agent, status: AgentStatus, reason: str) -> None:
        agent.status, agent.status_reason = status, reason
        self.state.store.save_agent(agent)
        self.publish_agent(agent)

    def risk_event(self, agent: Agent | None, kind: str, symbol: str | None, detail: str) -> None:
        now = self.state.time()
        agent_id = agent.id if agent else None
        self.state.store.add_risk_event(kind, detail, now, agent_id, symbol)
        self.state.bus.emit(RiskRaised(agent_id, kind, symbol, detail), now)

    def record(
        self, agent: Agent, decision: Decision, *, source: str, deterministic: bool = True
    ) -> DecisionRecord:
        """A new (unsaved) record of ``decision``."""
        now = self.state.time()
        if deterministic:  # the same tick re-run after a crash yields the same id (and order key)
            rec_id = self._record_id(agent.id, f"{now.isoformat()}|{source}|{decision.symbol}")
        else:
            rec_id = new_id()
        snap = self.state.prices.get(decision.symbol or "")
        rec = DecisionRecord(
            id=rec_id,
            agent_id=agent.id,
            time=now,
            source=source,
            action=_ACTIONS[decision.action],
            status=_APPROVED,
            symbol=decision.symbol,
            quantity=decision.quantity,
            notional=decision.notional,
            price=snap.price if snap and is_valid_price(snap.price) else None,
            reasoning=decision.reasoning,
            confidence=decision.confidence,
            # a lean run reads its records for their order shape only: its meta is left out
            meta={} if self.state.config.lean else jsonable(decision.meta),
        )
        if decision.order_type is not MARKET_ORDER:
            rec.meta["order"] = jsonable(
                {
                    "type": decision.order_type,
                    "limit_price": decision.limit_price,
                    "stop_price": decision.stop_price,
                }
            )
        return rec

    def _record_id(self, agent_id: str, rest: str) -> str:
        """The first 32 hex digits of SHA-256 of ``"<agent id>|<rest>"`` (the agent's part
        hashed once)."""
        seed = self._seeds.get(agent_id)
        if seed is None:
            seed = self._seeds[agent_id] = hashlib.sha256(f"{agent_id}|".encode())
        digest = seed.copy()
        digest.update(rest.encode())
        return digest.digest()[:16].hex()

    def resolve(self, rec: DecisionRecord, status: DecisionStatus, reason: str) -> None:
        rec.status = status.value
        rec.reason = reason
        rec.resolved_at = self.state.time()
        self.state.store.save_decision(rec)
        self.state.bus.emit(DecisionChanged(rec), self.state.time())
