"""Response models of ``/health`` and ``/api/audit``."""

from __future__ import annotations

from pydantic import BaseModel, Field

from phantomex.service.records import AuditView, MismatchView

__all__ = ["AuditView", "Health", "MismatchView", "ProblemView"]


class ProblemView(BaseModel):
    """Something start-up skipped. Without authentication (when auth is on) only ``kind``."""

    kind: str = Field(description="agent, llm_endpoint, source or setting.")
    name: str | None = None
    reason: str | None = None
    id: str | None = None
    fix: str | None = None
    delete: str | None = Field(None, description="The API path (DELETE) that removes it.")


class Health(BaseModel):
    """Liveness, the market clock, and what start-up skipped."""

    status: str
    clock: str | None
    ticks: int
    agents: int
    kill_switch: bool
    problems: list[ProblemView]
