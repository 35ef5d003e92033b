"""Equity history: each agent's equity and funding over time, and its deposits (see
:mod:`phantomex.service.equity`)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from phantomex.api.deps import Qry
from phantomex.api.schemas.equity import AgentEquity, EquityHistories
from phantomex.api.schemas.wire import RENDER

router = APIRouter(tags=["agents"], default_response_class=RENDER)
Json = dict[str, Any]


SinceQ = Annotated[
    AwareDatetime | None,
    Query(description="From this time (ISO 8601 with a zone); default: the agent's creation."),
]
UntilQ = Annotated[
    AwareDatetime | None,
    Query(description="Up to this time (ISO 8601 with a zone); default: the kernel's clock."),
]
PointsQ = Annotated[
    int,
    Query(ge=2, le=1000, description="At most this many evenly spaced samples (plus deposits)."),
]
AgentQ = Annotated[str | None, Query(min_length=1, max_length=64, description="Only this agent.")]


@router.get("/api/agents/{agent_id}/equity", response_model=AgentEquity)
def agent_equity(
    agent_id: str,
    q: Qry,
    since: SinceQ = None,
    until: UntilQ = None,
    points: PointsQ = 300,
) -> Json:
    """One agent's equity and funding (allowance + deposits) over time, and its deposits. The
    last point is at ``until`` (default: now), where it equals the agent's current equity."""
    return q.equity([agent_id], since, until, points)["agents"][0]


@router.get("/api/equity", response_model=EquityHistories)
def equity(
    q: Qry,
    agent_id: AgentQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    points: PointsQ = 300,
) -> Json:
    """Every agent's (or one agent's) equity history, as ``/api/agents/{id}/equity``."""
    return q.equity([agent_id] if agent_id is not None else None, since, until, points)
