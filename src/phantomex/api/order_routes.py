"""Orders: a person's own order for an agent, resting limit and stop orders, cancelling."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from phantomex.api.deps import AgentIdQ, Cmd, Qry
from phantomex.api.schemas.orders import DecisionView, OrderView
from phantomex.domain.inputs import Ident, Money, Name, Price, Quantity
from phantomex.domain.models import Action, Decision, OrderType

router = APIRouter()


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


@router.post("/api/agents/{agent_id}/orders", tags=["agents"])
async def place_order(agent_id: Ident, body: OrderBody, c: Cmd) -> DecisionView:
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
    return await c.place_order(agent_id, decision)


@router.get("/api/orders", tags=["orders"])
async def open_orders(q: Qry, agent_id: AgentIdQ = None) -> list[OrderView]:
    """Resting limit and stop orders."""
    return q.open_orders(agent_id)


@router.delete("/api/orders/{order_id}", tags=["orders"])
async def cancel_order(order_id: Ident, c: Cmd) -> OrderView:
    return await c.cancel_order(order_id)
