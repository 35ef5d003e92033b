"""Decisions: the history of each agent's decisions, and approving or rejecting them."""

from __future__ import annotations

from fastapi import APIRouter

from phantomex.api.deps import AgentIdQ, Cmd, LimitQ, OffsetQ, Qry
from phantomex.api.schemas.decisions import DecisionView
from phantomex.domain.inputs import Ident
from phantomex.domain.models import DecisionStatus

router = APIRouter(tags=["decisions"])


@router.get("/api/agents/{agent_id}/decisions")
def agent_decisions(
    agent_id: Ident,
    q: Qry,
    status: DecisionStatus | None = None,
    limit: LimitQ = 100,
    offset: OffsetQ = 0,
) -> list[DecisionView]:
    return q.agent_decisions(agent_id, status.value if status else None, limit, offset)


@router.get("/api/decisions")
def decisions(
    q: Qry,
    status: DecisionStatus | None = None,
    agent_id: AgentIdQ = None,
    limit: LimitQ = 100,
    offset: OffsetQ = 0,
) -> list[DecisionView]:
    return q.decisions(agent_id, status.value if status else None, limit, offset)


@router.post("/api/decisions/{decision_id}/approve")
async def approve(decision_id: Ident, c: Cmd) -> DecisionView:
    return await c.approve(decision_id)


@router.post("/api/decisions/{decision_id}/reject")
async def reject(decision_id: Ident, c: Cmd) -> DecisionView:
    return await c.reject(decision_id)
