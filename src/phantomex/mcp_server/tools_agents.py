"""Agent tools: read agents, decisions, trades, prices and risk; act on agents and approvals.

Every tool calls the command-and-query layer (:mod:`phantomex.service`), as the REST API does;
commands take the kernel's lock themselves and answer with the same read models."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from phantomex.domain.agent import AgentSpec
from phantomex.domain.inputs import Ident, Money, Name, Price, Quantity
from phantomex.domain.models import Action, Decision, DecisionStatus, Mode, OrderType
from phantomex.mcp_server.errors import tool_error
from phantomex.mcp_server.registry import PhantomexMCP
from phantomex.mcp_server.toolsets import Kind
from phantomex.mcp_server.untrusted import mark
from phantomex.serialize import jsonable
from phantomex.service import Service

Json = dict[str, Any]
Limit = Annotated[int, Field(ge=1, le=1000)]
AgentId = Annotated[Ident, Field(description="The agent's id (see list_agents).")]
DecisionId = Annotated[Ident, Field(description="The decision's id (see pending_approvals).")]


def _out(value: Any) -> Any:
    """JSON of a read model (or a list of them), untrusted text marked."""
    if isinstance(value, BaseModel):
        return mark(value.model_dump(mode="json"))
    if isinstance(value, list):
        return [_out(v) for v in value]
    return mark(jsonable(value))


def register(mcp: PhantomexMCP, svc: Service) -> None:
    q, c = svc.queries, svc.commands

    # -- read --------------------------------------------------------------------------------------
    async def list_agents() -> Json:
        return {"agents": _out(q.agents())}

    async def get_agent(agent_id: AgentId) -> Json:
        return _out(q.agent(agent_id))

    async def decisions(
        agent_id: AgentId | None = None,
        status: DecisionStatus | None = None,
        limit: Limit = 20,
    ) -> Json:
        rows = q.decisions(agent_id, status.value if status else None, limit, 0)
        return {"decisions": _out(rows)}

    async def decision_detail(agent_id: AgentId, decision_id: Ident) -> Json:
        return _out(q.decision_detail(agent_id, decision_id))

    async def trades(
        agent_id: AgentId | None = None,
        symbol: Annotated[Name | None, Field(max_length=32)] = None,
        limit: Limit = 50,
    ) -> Json:
        return dict(_out(q.trades(agent_id, symbol, limit, 0)))

    async def prices() -> Json:
        return {"prices": _out(q.prices()), "sources": _out(q.sources())}

    async def open_orders(agent_id: AgentId | None = None) -> Json:
        return {"orders": _out(q.open_orders(agent_id))}

    async def risk_events(agent_id: AgentId | None = None, limit: Limit = 50) -> Json:
        return {"risk_events": _out(q.risk_events(agent_id, limit))}

    async def pending_approvals() -> Json:
        return {"pending": _out(q.pending())}

    async def audit() -> Json:
        return dict(_out(await q.audit()))

    # -- act ---------------------------------------------------------------------------------------
    async def create_agent(spec: AgentSpec) -> Json:
        return _out(await c.create_agent(spec))

    async def pause_agent(agent_id: AgentId) -> Json:
        return _out(await c.pause(agent_id))

    async def resume_agent(agent_id: AgentId) -> Json:
        return _out(await c.resume(agent_id))

    async def delete_agent(agent_id: AgentId) -> Json:
        await c.delete_agent(agent_id)
        return {"deleted": agent_id}

    async def set_mode(agent_id: AgentId, mode: Mode) -> Json:
        return _out(await c.set_mode(agent_id, mode))

    async def deposit(
        agent_id: AgentId,
        amount: Annotated[Money, Field(description="Paper USD to add to the wallet's cash.")],
    ) -> Json:
        return _out(await c.deposit(agent_id, amount))

    async def trade_now(agent_id: AgentId) -> Json:
        return _out(await c.trade_now(agent_id))

    async def place_order(
        agent_id: AgentId,
        action: Literal["buy", "sell"],
        symbol: Annotated[Name, Field(max_length=32)],
        quantity: Quantity | None = None,
        notional: Annotated[Money | None, Field(description="Size in USD instead.")] = None,
        type: OrderType = OrderType.MARKET,
        limit_price: Price | None = None,
        stop_price: Price | None = None,
        reasoning: Annotated[str, Field(max_length=2000)] = "order placed by an assistant",
    ) -> Json:
        decision = Decision(
            Action(action),
            symbol.upper(),
            quantity=quantity,
            notional=notional,
            reasoning=reasoning,
            order_type=type,
            limit_price=limit_price,
            stop_price=stop_price,
        )
        return _out(await c.place_order(agent_id, decision))

    async def cancel_order(order_id: Ident) -> Json:
        return _out(await c.cancel_order(order_id))

    async def approve_decision(decision_id: DecisionId) -> Json:
        return _out(await c.approve(decision_id))

    async def reject_decision(decision_id: DecisionId) -> Json:
        return _out(await c.reject(decision_id))

    async def kill_switch(agent_id: AgentId | None = None, flatten: bool = False) -> Json:
        if flatten and not mcp.toolset.admits(Kind.MONEY):
            raise tool_error(
                "forbidden",
                f"flatten sells positions; the {mcp.toolset} toolset refuses it",
                "flatten",
            )
        return _out(await c.kill(agent_id, flatten=flatten))

    async def release_kill_switch() -> Json:
        return _out(await c.release_kill())

    untrusted = {"untrusted": True}
    mcp.add(Kind.READ, list_agents, "Every agent with its wallet and positions.", **untrusted)
    mcp.add(Kind.READ, get_agent, "One agent with its wallet and positions.", **untrusted)
    mcp.add(Kind.READ, decisions, "Decisions, newest first (of one agent or all).", **untrusted)
    mcp.add(
        Kind.READ,
        decision_detail,
        "One decision with its risk checks and every model call behind it: the prompt and the "
        "model's raw answer.",
        **untrusted,
    )
    mcp.add(Kind.READ, trades, "Trades newest first with the total count.", **untrusted)
    mcp.add(Kind.READ, prices, "Latest prices, and each source's health and staleness.")
    mcp.add(Kind.READ, open_orders, "Resting limit and stop orders.", **untrusted)
    mcp.add(Kind.READ, risk_events, "Risk events: refusals, stops, kill switch.", **untrusted)
    mcp.add(
        Kind.READ,
        pending_approvals,
        "Decisions of advisory agents waiting for a person's approval.",
        **untrusted,
    )
    mcp.add(Kind.READ, audit, "Check that every wallet reconciles with its trade history.")
    mcp.add(
        Kind.MONEY,
        create_agent,
        "Create an agent with a paper wallet (allowance in paper USD). Paper venue unless the "
        "server's owner enabled an exchange testnet.",
    )
    mcp.add(Kind.CONTROL, pause_agent, "Pause an agent (it stops deciding).")
    mcp.add(Kind.CONTROL, resume_agent, "Resume a paused agent.")
    mcp.add(
        Kind.CONTROL,
        delete_agent,
        "Delete an agent; its trade history stays.",
        irreversible=True,
    )
    mcp.add(
        Kind.CONTROL,
        set_mode,
        "autonomous (the agent trades) or advisory (a person approves each decision).",
    )
    mcp.add(Kind.MONEY, deposit, "Add paper cash to an agent's wallet.", irreversible=True)
    mcp.add(
        Kind.MONEY,
        trade_now,
        "Make the agent decide now (it may trade at once; risk checks apply).",
        irreversible=True,
    )
    mcp.add(
        Kind.MONEY,
        place_order,
        "Place a market, limit or stop order for an agent (risk-checked; waits for approval "
        "if the agent is advisory).",
        irreversible=True,
    )
    mcp.add(Kind.MONEY, cancel_order, "Cancel a resting order.")
    mcp.add(
        Kind.MONEY,
        approve_decision,
        "Approve an advisory agent's pending decision: it executes at once. Only when the "
        "person you work for asked for it.",
        irreversible=True,
    )
    mcp.add(Kind.CONTROL, reject_decision, "Reject a pending decision (nothing trades).")
    mcp.add(
        Kind.CONTROL,
        kill_switch,
        "Stop every agent (or one) from trading; with flatten, also sell every position.",
        irreversible=True,
    )
    mcp.add(Kind.CONTROL, release_kill_switch, "Lift the kill switch.")
