"""A decision as stored: what an agent (or risk) decided, what became of it and why."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


@dataclass(slots=True)
class DecisionRecord:
    """A decision as stored: what was decided, what became of it and why."""

    id: str
    agent_id: str
    time: datetime
    source: str
    action: str
    status: str
    symbol: str | None = None
    quantity: Decimal | None = None
    notional: Decimal | None = None
    price: Decimal | None = None
    reasoning: str = ""
    confidence: float | None = None
    reason: str = ""
    checks: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    expires_at: datetime | None = None
    resolved_at: datetime | None = None
