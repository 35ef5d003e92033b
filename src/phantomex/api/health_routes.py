"""``/health`` (liveness, open to anyone) and ``/api/audit`` (wallets against the history).

Routes that read only the kernel's memory are coroutines: they run on the event loop, between two
steps of a tick's work, with no thread hop; those that query the database run in a thread."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from phantomex.api.deps import Qry
from phantomex.api.problems import problems_view
from phantomex.api.schemas.system import AuditView, Health
from phantomex.serialize import iso

router = APIRouter(tags=["system"])


@router.get("/health", response_model=Health, response_model_exclude_unset=True)
async def health(q: Qry, request: Request) -> dict[str, Any]:
    """Liveness, the market clock, and what start-up skipped (``problems``: a stored agent or
    LLM endpoint, a source or a setting that could not be used, each with its reason)."""
    clock = q.clock()
    return {
        "status": "ok",
        "clock": iso(clock) if clock else None,
        "ticks": q.ticks(),
        "agents": len(q.agent_records()),
        "kill_switch": q.kill_state().on,
        "problems": problems_view(q, request),
    }


@router.get("/api/audit")
async def audit(q: Qry) -> AuditView:
    return await q.audit()
