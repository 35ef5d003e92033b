"""Equity history: ``GET /api/equity`` and ``GET /api/agents/{agent_id}/equity``."""

from __future__ import annotations

from pydantic import BaseModel, Field

from phantomex.api.schemas.wire import RESPONSE, DecimalText, Timestamp


class EquityPoint(BaseModel):
    model_config = RESPONSE

    time: Timestamp
    equity: DecimalText = Field(description="Cash plus positions at the marks of that time.")
    funding: DecimalText = Field(description="Allowance plus deposits so far.")


class DepositEntry(BaseModel):
    model_config = RESPONSE

    time: Timestamp
    amount: DecimalText
    initial: bool = Field(description="The agent's allowance at creation.")


class AgentEquity(BaseModel):
    model_config = RESPONSE

    agent_id: str
    name: str | None = Field(description="None once the agent is deleted.")
    points: list[EquityPoint]
    deposits: list[DepositEntry]


class EquityHistories(BaseModel):
    model_config = RESPONSE

    since: Timestamp | None
    until: Timestamp
    points: int = Field(description="The requested number of samples.")
    agents: list[AgentEquity]
