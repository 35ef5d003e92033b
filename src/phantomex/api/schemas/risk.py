"""Response models of ``/api/risk`` and ``/api/kill-switch``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from phantomex.domain.risk import RiskProfile
from phantomex.service.records import KillResult, KillState, RiskEventView

__all__ = ["KillResult", "KillState", "RiskDefaults", "RiskEventView"]


class RiskDefaults(BaseModel):
    """The default risk profile of a new agent, and the JSON schema of a profile."""

    defaults: RiskProfile
    schema_: dict[str, Any] = Field(alias="schema")
