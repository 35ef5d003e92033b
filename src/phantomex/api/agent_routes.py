"""``/api/agents``: create, list, change and delete agents; ``/api/strategies``."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from phantomex.api.deps import Cmd, Qry
from phantomex.api.schemas.agents import AgentView, Deleted, StrategyView
from phantomex.api.schemas.decisions import DecisionView
from phantomex.brains.registry import strategy_schemas
from phantomex.domain.agent import AgentSpec
from phantomex.domain.inputs import Ident, Money
from phantomex.domain.models import Mode

router = APIRouter(tags=["agents"])


class DepositBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Money = Field(description="USD to add to the wallet's cash (at most 8 decimals).")


class ModeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Mode


@router.get("/api/agents")
async def list_agents(q: Qry) -> list[AgentView]:
    return q.agents()


@router.post("/api/agents", status_code=201)
async def create_agent(spec: AgentSpec, c: Cmd) -> AgentView:
    return await c.create_agent(spec)


@router.get("/api/agents/{agent_id}")
async def get_agent(agent_id: Ident, q: Qry) -> AgentView:
    return q.agent(agent_id)


@router.delete("/api/agents/{agent_id}")
async def delete_agent(agent_id: Ident, c: Cmd) -> Deleted:
    """Delete an agent (its trades stay in the history), also one start-up skipped."""
    await c.delete_agent(agent_id)
    return Deleted(deleted=agent_id)


@router.post("/api/agents/{agent_id}/trade")
async def trade_now(agent_id: Ident, c: Cmd) -> DecisionView:
    return await c.trade_now(agent_id)


@router.post("/api/agents/{agent_id}/deposit")
async def deposit(agent_id: Ident, body: DepositBody, c: Cmd) -> AgentView:
    return await c.deposit(agent_id, body.amount)


@router.patch("/api/agents/{agent_id}/mode")
async def set_mode(agent_id: Ident, body: ModeBody, c: Cmd) -> AgentView:
    return await c.set_mode(agent_id, body.mode)


@router.post("/api/agents/{agent_id}/pause")
async def pause(agent_id: Ident, c: Cmd) -> AgentView:
    return await c.pause(agent_id)


@router.post("/api/agents/{agent_id}/resume")
async def resume(agent_id: Ident, c: Cmd) -> AgentView:
    return await c.resume(agent_id)


@router.get("/api/strategies")
async def strategies() -> list[StrategyView]:
    return [StrategyView.model_validate(s) for s in strategy_schemas()]
