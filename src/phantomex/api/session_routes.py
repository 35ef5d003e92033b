"""REST endpoints of sessions, their summaries and the leaderboard."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from phantomex.api.schemas.sessions import (
    Leaderboard,
    SessionSummaries,
    SessionView,
    WrittenSummary,
)
from phantomex.api.schemas.wire import RENDER
from phantomex.domain.inputs import Ident, QueryInt
from phantomex.sessions import summary as summaries
from phantomex.sessions.board import board
from phantomex.sessions.leaderboard import METRICS
from phantomex.sessions.manager import SessionManager
from phantomex.sessions.spec import SessionSpec

router = APIRouter(tags=["sessions"], default_response_class=RENDER)
Json = dict[str, Any]


def manager(request: Request) -> SessionManager:
    sessions: SessionManager = request.app.state.sessions
    return sessions


M = Annotated[SessionManager, Depends(manager)]


@router.post(
    "/api/sessions",
    status_code=201,
    response_model=SessionView,
    response_model_exclude_unset=True,
)
async def start_session(spec: SessionSpec, m: M) -> Json:
    """Start a session: every agent gets ``cash`` on the same market. Replay sessions run in
    the background on a kernel of their own; live ones trade in the live kernel."""
    return await m.start(spec)


@router.get("/api/sessions", response_model=list[SessionView], response_model_exclude_unset=True)
def list_sessions(m: M) -> list[Json]:
    """Sessions, newest first, with elapsed/remaining time and each agent's P&L."""
    return m.overview()


@router.get(
    "/api/sessions/{session_id}", response_model=SessionView, response_model_exclude_unset=True
)
def get_session(
    session_id: Ident,
    m: M,
    curves: Annotated[bool, Query(description="Include equity curves, trades, decisions.")] = True,
) -> Json:
    return m.get(session_id, curves=curves)


@router.post(
    "/api/sessions/{session_id}/stop",
    response_model=SessionView,
    response_model_exclude_unset=True,
)
async def stop_session(session_id: Ident, m: M) -> Json:
    """Stop early; the results so far are kept (status ``stopped``)."""
    return await m.stop(session_id)


@router.get("/api/sessions/{session_id}/summary", response_model=SessionSummaries)
def session_summary(session_id: Ident, m: M) -> Json:
    """The stored summaries (periodic and final) and the latest; while none is stored, a
    template summary of the results so far (not stored)."""
    stored = m.summaries(session_id)
    for row in stored:  # the template's text of the same figures, next to a model's
        row["template"] = summaries.template_text(row["figures"])
    if stored:
        return {"latest": stored[-1], "summaries": stored}
    facts = summaries.figures(m.get(session_id))
    draft = {"kind": "draft", "author": "template", "figures": facts}
    text = summaries.template_text(facts)
    return {"latest": {**draft, "text": text, "template": text}, "summaries": []}


@router.post(
    "/api/sessions/{session_id}/summary",
    status_code=201,
    response_model=WrittenSummary,
    response_model_exclude_unset=True,
)
async def write_summary(session_id: Ident, m: M) -> Json:
    """Write a summary now (by the session's model if it has one)."""
    await m.write_summary(m.get(session_id), "manual")
    return {"latest": m.summaries(session_id)[-1]}


@router.get("/api/leaderboard", response_model=Leaderboard)
def get_leaderboard(
    m: M,
    session_id: Annotated[Ident | None, Query(description="One session.")] = None,
    by: Annotated[str, Query(description=f"Ranking metric: {', '.join(METRICS)}.")] = (
        "total_return"
    ),
    mix: Annotated[bool, Query(description="Rank agents of different windows together.")] = False,
    confidence: Annotated[float, Query(gt=0.5, lt=1)] = 0.95,
    resamples: Annotated[QueryInt, Query(ge=100, le=20_000)] = 2000,
    seed: Annotated[QueryInt, Query(description="Bootstrap seed.")] = 0,
) -> Json:
    """Agents and models ranked across sessions (or in one), with bootstrap intervals."""
    return board(
        m, session_id, by=by, mix=mix, confidence=confidence, resamples=resamples, seed=seed
    )
