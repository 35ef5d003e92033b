"""Agent configuration (validated at every boundary) and runtime record."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from phantomex.domain.inputs import Money, Name
from phantomex.domain.models import AgentStatus, Mode
from phantomex.domain.risk import RiskProfile, RiskState


class AgentSpec(BaseModel):
    """What a user chooses for an agent."""

    model_config = ConfigDict(extra="forbid", frozen=True)  # edits replace it (model_copy)

    name: Name = Field(max_length=80, pattern=r"^[\w .\-]+$")
    brain: Name = Field(max_length=40, description="A strategy from /api/strategies.")
    params: dict[str, Any] = Field(default_factory=dict, description="The brain's parameters.")
    goal: str = Field("", max_length=2000, description="Free text; LLM brains read it.")
    mode: Mode = Mode.AUTONOMOUS
    allowance: Money = Field(
        Decimal(10_000), description="Starting paper cash in USD (at most 8 decimals)."
    )
    symbols: list[str] = Field(min_length=1, max_length=50)
    interval_seconds: int = Field(60, ge=1, le=7 * 86400, description="Time between decisions.")
    risk: RiskProfile = Field(default_factory=RiskProfile)
    source: Name | None = Field(
        None,
        max_length=40,
        description="Trade only this market source's symbols (see /api/sources): with it, BTC "
        "means that source's BTC. Resolved into the symbols when the agent is created.",
    )

    @field_validator("symbols")
    @classmethod
    def _upper_unique(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for sym in value:
            sym = sym.strip().upper()
            if not sym:
                raise ValueError("empty symbol")
            if sym not in out:
                out.append(sym)
        return out


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(slots=True)
class Agent:
    """An agent as the kernel runs it."""

    id: str
    spec: AgentSpec
    created_at: datetime
    status: AgentStatus = AgentStatus.RUNNING
    status_reason: str = ""
    risk_state: RiskState = field(default_factory=RiskState)
    brain_state: dict[str, Any] = field(default_factory=dict)
    last_decided_at: datetime | None = None

    @property
    def name(self) -> str:
        return self.spec.name
