"""Risk: the default profile, risk events, and the kill switch."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from phantomex.api.deps import AgentIdQ, Cmd, LimitQ, Qry
from phantomex.api.schemas.risk import KillResult, KillState, RiskDefaults, RiskEventView
from phantomex.domain.inputs import Ident
from phantomex.domain.risk import RiskProfile

router = APIRouter(tags=["risk"])


class KillBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: Ident | None = Field(None, description="Only this agent; all agents if absent.")
    flatten: StrictBool = Field(False, description="Also close every open position.")


@router.get("/api/risk/defaults")
async def risk_defaults() -> RiskDefaults:
    return RiskDefaults.model_validate(
        {"defaults": RiskProfile(), "schema": RiskProfile.model_json_schema()}
    )


@router.get("/api/risk/events")
def risk_events(q: Qry, agent_id: AgentIdQ = None, limit: LimitQ = 100) -> list[RiskEventView]:
    return q.risk_events(agent_id, limit)


@router.get("/api/kill-switch")
async def kill_state(q: Qry) -> KillState:
    return q.kill_state()


@router.post("/api/kill-switch")
async def kill(c: Cmd, body: KillBody | None = None) -> KillResult:
    body = body or KillBody()
    return await c.kill(body.agent_id, flatten=body.flatten)


@router.post("/api/kill-switch/release")
async def release(c: Cmd) -> KillState:
    return await c.release_kill()
