"""Response models of ``/api/agents`` and ``/api/strategies``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from phantomex.service.records import AgentView, PositionView, WalletView

__all__ = ["AgentView", "Deleted", "PositionView", "StrategyView", "WalletView"]


class Deleted(BaseModel):
    """The id of what was deleted."""

    deleted: str


class StrategyView(BaseModel):
    """A strategy an agent's brain may run: the JSON schema of its parameters, their defaults."""

    name: str
    title: str
    description: str
    schema_: dict[str, Any] = Field(alias="schema")
    defaults: dict[str, Any]
