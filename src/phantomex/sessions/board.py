"""The leaderboard of one session or of every finished one, for every front end."""

from __future__ import annotations

from typing import Any

from phantomex.sessions.leaderboard import LeaderboardError, leaderboard
from phantomex.sessions.manager import SessionManager
from phantomex.sessions.spec import SessionError


def board(
    manager: SessionManager,
    session_id: str | None = None,
    *,
    by: str = "total_return",
    mix: bool = False,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Agents and models ranked with bootstrap intervals; a bad metric is a :class:`SessionError`
    on ``by``."""
    sessions = [manager.get(session_id)] if session_id is not None else manager.repo.all_finished()
    try:
        out = leaderboard(
            sessions,
            per_session=session_id is not None,
            by=by,
            mix=mix,
            confidence=confidence,
            resamples=resamples,
            seed=seed,
        )
    except LeaderboardError as exc:
        raise SessionError(str(exc), field="by") from None
    out["sessions"] = [
        {"id": s["id"], "name": s["name"], "status": s["status"], "fingerprint": s["fingerprint"]}
        for s in sessions
    ]
    return out
