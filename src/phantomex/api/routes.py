"""REST endpoints: thin handlers over the kernel and the store."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool

from phantomex.api.problems import delete_skipped_agent, problems_view
from phantomex.brains.registry import strategy_schemas
from phantomex.domain.agent import AgentSpec
from phantomex.domain.inputs import Ident, Money, Name, Price, Quantity, QueryInt
from phantomex.domain.models import Action, Decision, DecisionStatus, Mode, OrderType
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel, KernelError
from phantomex.serialize import iso, jsonable

router = APIRouter()
Json = dict[str, Any]


def kernel(request: Request) -> Kernel:
    return request.app.state.kernel


K = Annotated[Kernel, Depends(kernel)]
AgentIdQ = Annotated[Ident | None, Query(description="Only this agent.")]
SymbolQ = Annotated[Name | None, Query(max_length=32, description="Only this symbol.")]
LimitQ = Annotated[QueryInt, Query(ge=1, le=1000)]
OffsetQ = Annotated[QueryInt, Query(description="Rows to skip.")]


class DepositBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Money = Field(description="USD to add to the wallet's cash (at most 8 decimals).")


class ModeBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mode: Mode


class OrderBody(BaseModel):
    """A person's own market order for an agent (risk-checked; queued if the agent is advisory)."""

    model_config = ConfigDict(extra="forbid")
    action: Literal["buy", "sell"]
    symbol: Name = Field(max_length=32)
    quantity: Quantity | None = None
    notional: Money | None = Field(None, description="Size in USD instead of a quantity.")
    type: OrderType = Field(OrderType.MARKET, description="market, limit or stop.")
    limit_price: Price | None = None
    stop_price: Price | None = None
    reasoning: str = Field("manual order", max_length=2000)


class KillBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: Ident | None = Field(None, description="Only this agent; all agents if absent.")
    flatten: StrictBool = Field(False, description="Also close every open position.")


@router.get("/health", tags=["system"])
def health(k: K, request: Request) -> Json:
    """Liveness, the market clock, and what start-up skipped (``problems``: a stored agent or
    LLM endpoint, a source or a setting that could not be used, each with its reason)."""
    return {
        "status": "ok",
        "clock": iso(k.now) if k.now else None,
        "ticks": k.ticks,
        "agents": len(k.agents),
        "kill_switch": k.killed,
        "problems": problems_view(k, request),
    }


@router.get("/api/agents", tags=["agents"])
def list_agents(k: K) -> list[Json]:
    return [k.agent_view(a) for a in k.agents.values()]


@router.post("/api/agents", status_code=201, tags=["agents"])
async def create_agent(spec: AgentSpec, k: K) -> Json:
    async with k.lock:
        return k.agent_view(k.create_agent(spec))


@router.get("/api/agents/{agent_id}", tags=["agents"])
def get_agent(agent_id: Ident, k: K) -> Json:
    return k.agent_view(k.get(agent_id))


@router.delete("/api/agents/{agent_id}", tags=["agents"])
async def delete_agent(agent_id: Ident, k: K) -> Json:
    """Delete an agent (its trades stay in the history), also one start-up skipped."""
    async with k.lock:
        skipped = k.problems.find("agent", agent_id)
        if skipped is not None and agent_id not in k.agents:
            delete_skipped_agent(k, skipped)
        else:
            k.delete_agent(agent_id)
    return {"deleted": agent_id}


@router.post("/api/agents/{agent_id}/trade", tags=["agents"])
async def trade_now(agent_id: Ident, k: K) -> Json:
    return jsonable(await k.trade_now(agent_id))  # the kernel takes its lock itself


@router.post("/api/agents/{agent_id}/orders", tags=["agents"])
async def place_order(agent_id: Ident, body: OrderBody, k: K) -> Json:
    needs = {OrderType.LIMIT: "limit_price", OrderType.STOP: "stop_price"}.get(body.type)
    for name in ("limit_price", "stop_price"):
        given = getattr(body, name) is not None
        if name == needs and not given:
            raise KernelError(f"a {body.type} order needs {name}", field=name)
        if name != needs and given:
            raise KernelError(f"{name} does not apply to a {body.type} order", field=name)
    decision = Decision(
        Action(body.action),
        body.symbol.upper(),
        quantity=body.quantity,
        notional=body.notional,
        reasoning=body.reasoning,
        order_type=body.type,
        limit_price=body.limit_price,
        stop_price=body.stop_price,
    )
    async with k.lock:
        return jsonable(k.place(agent_id, decision))


@router.get("/api/orders", tags=["orders"])
def open_orders(k: K, agent_id: AgentIdQ = None) -> list[Json]:
    """Resting limit and stop orders."""
    return jsonable(k.open_orders(agent_id))


@router.delete("/api/orders/{order_id}", tags=["orders"])
async def cancel_order(order_id: Ident, k: K) -> Json:
    async with k.lock:
        return jsonable(k.cancel_order(order_id))


@router.post("/api/agents/{agent_id}/deposit", tags=["agents"])
async def deposit(agent_id: Ident, body: DepositBody, k: K) -> Json:
    async with k.lock:
        k.deposit(agent_id, body.amount)
        return k.agent_view(k.get(agent_id))


@router.patch("/api/agents/{agent_id}/mode", tags=["agents"])
async def set_mode(agent_id: Ident, body: ModeBody, k: K) -> Json:
    async with k.lock:
        return k.agent_view(k.set_mode(agent_id, body.mode))


@router.post("/api/agents/{agent_id}/pause", tags=["agents"])
async def pause(agent_id: Ident, k: K) -> Json:
    async with k.lock:
        return k.agent_view(k.pause(agent_id))


@router.post("/api/agents/{agent_id}/resume", tags=["agents"])
async def resume(agent_id: Ident, k: K) -> Json:
    async with k.lock:
        return k.agent_view(k.resume(agent_id))


@router.get("/api/agents/{agent_id}/decisions", tags=["decisions"])
def agent_decisions(
    agent_id: Ident,
    k: K,
    status: DecisionStatus | None = None,
    limit: LimitQ = 100,
    offset: OffsetQ = 0,
) -> list[Json]:
    k.get(agent_id)
    recs = k.store.decisions(agent_id, status.value if status else None, limit, offset)
    return jsonable(recs)


@router.get("/api/decisions", tags=["decisions"])
def decisions(
    k: K,
    status: DecisionStatus | None = None,
    agent_id: AgentIdQ = None,
    limit: LimitQ = 100,
    offset: OffsetQ = 0,
) -> list[Json]:
    recs = k.store.decisions(agent_id, status.value if status else None, limit, offset)
    return jsonable(recs)


@router.post("/api/decisions/{decision_id}/approve", tags=["decisions"])
async def approve(decision_id: Ident, k: K) -> Json:
    async with k.lock:
        return jsonable(k.approve(decision_id))


@router.post("/api/decisions/{decision_id}/reject", tags=["decisions"])
async def reject(decision_id: Ident, k: K) -> Json:
    async with k.lock:
        return jsonable(k.reject(decision_id))


@router.get("/api/market/prices", tags=["market"])
def prices(k: K) -> list[Json]:
    return k.price_list()


@router.get("/api/market/history", tags=["market"])
def history(
    k: K,
    symbol: Annotated[Name, Query(max_length=32)],
    limit: Annotated[QueryInt, Query(ge=1, le=5000, description="Bars, newest last.")] = 200,
) -> Json:
    sym = symbol.upper()
    if sym not in k.feed.instruments:
        raise KernelError(
            f"unknown symbol {symbol!r}; known: {sorted(k.feed.instruments)}",
            field="symbol",
            code="not_found",
        )
    now = k.now
    bars = k.history.view(now).bars(sym, limit) if now else []
    return {"symbol": sym, "bars": jsonable(bars)}


@router.get("/api/trades", tags=["trades"])
def trades(
    k: K,
    agent_id: AgentIdQ = None,
    symbol: SymbolQ = None,
    limit: LimitQ = 100,
    offset: OffsetQ = 0,
) -> Json:
    rows, total = k.store.trades(agent_id, symbol.upper() if symbol else None, limit, offset)
    return {"trades": jsonable(rows), "total": total, "limit": limit, "offset": offset}


@router.get("/api/strategies", tags=["agents"])
def strategies() -> list[Json]:
    return strategy_schemas()


@router.get("/api/risk/defaults", tags=["risk"])
def risk_defaults() -> Json:
    return {
        "defaults": RiskProfile().model_dump(mode="json"),
        "schema": RiskProfile.model_json_schema(),
    }


@router.get("/api/risk/events", tags=["risk"])
def risk_events(k: K, agent_id: AgentIdQ = None, limit: LimitQ = 100) -> list[Json]:
    return jsonable(k.store.risk_events(agent_id, limit))


@router.get("/api/kill-switch", tags=["risk"])
def kill_state(k: K) -> Json:
    return {"on": k.killed}


@router.post("/api/kill-switch", tags=["risk"])
async def kill(k: K, body: KillBody | None = None) -> Json:
    body = body or KillBody()
    async with k.lock:
        affected = k.kill(body.agent_id, flatten=body.flatten)
    return {"on": k.killed, "agents": affected, "flatten": body.flatten}


@router.post("/api/kill-switch/release", tags=["risk"])
async def release(k: K) -> Json:
    async with k.lock:
        k.release_kill()
    return {"on": k.killed}


@router.get("/api/audit", tags=["system"])
async def audit(k: K) -> Json:
    async with k.lock:
        mismatches = k.audit()
    return {
        "ok": not mismatches,
        "agents": len(k.agents),
        "mismatches": [jsonable(m) | {"message": str(m)} for m in mismatches],
    }
