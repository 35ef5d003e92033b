"""Reads and writes of the session tables, through the main store's sessions."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update

from phantomex.serialize import iso, jsonable
from phantomex.store.repo import Store
from phantomex.store.session_tables import SessionAgentRow, SessionRow, SessionSummaryRow

#: Sessions still marked running when a server starts were cut short by a stop or a crash.
INTERRUPTED = "interrupted"
RUNNING = "running"


def now() -> datetime:
    return datetime.now(UTC)


class SessionRepo:
    def __init__(self, store: Store) -> None:
        self.store = store

    def add(self, row: SessionRow, agents: list[SessionAgentRow]) -> None:
        with self.store.session() as s:
            s.add(row)
            s.flush()
            s.add_all(agents)

    def save_results(
        self, session_id: str, fields: dict[str, Any], agents: dict[str, dict[str, Any]]
    ) -> None:
        """Update the session's ``fields`` and each named agent's result fields, together."""
        with self.store.session() as s:
            s.execute(update(SessionRow).where(SessionRow.id == session_id).values(**fields))
            rows = s.scalars(
                select(SessionAgentRow).where(SessionAgentRow.session_id == session_id)
            )
            for row in rows:
                for key, value in agents.get(row.name, {}).items():
                    setattr(row, key, value)

    def mark_interrupted(self) -> list[str]:
        """Sessions left running by a previous server process: their saved results stay."""
        with self.store.session() as s:
            ids = list(s.scalars(select(SessionRow.id).where(SessionRow.status == RUNNING)))
            if ids:
                s.execute(
                    update(SessionRow)
                    .where(SessionRow.id.in_(ids))
                    .values(
                        status=INTERRUPTED,
                        finished_at=now(),
                        error="the server stopped while the session ran",
                    )
                )
            return ids

    def get(self, session_id: str) -> dict[str, Any] | None:
        with self.store.session() as s:
            row = s.get(SessionRow, session_id)
            if row is None:
                return None
            agents = s.scalars(
                select(SessionAgentRow)
                .where(SessionAgentRow.session_id == session_id)
                .order_by(SessionAgentRow.position)
            )
            return session_dict(row, [agent_dict(a) for a in agents])

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.store.session() as s:
            rows = list(
                s.scalars(select(SessionRow).order_by(SessionRow.created_at.desc()).limit(limit))
            )
            ids = [r.id for r in rows]
            agents: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
            q = (
                select(SessionAgentRow)
                .where(SessionAgentRow.session_id.in_(ids))
                .order_by(SessionAgentRow.position)
            )
            for a in s.scalars(q):
                agents[a.session_id].append(agent_dict(a))
            return [session_dict(r, agents[r.id]) for r in rows]

    def all_finished(self) -> list[dict[str, Any]]:
        """Every session with results (any status but running), with equity curves."""
        with self.store.session() as s:
            rows = list(
                s.scalars(
                    select(SessionRow)
                    .where(SessionRow.status != RUNNING)
                    .order_by(SessionRow.created_at)
                )
            )
        return [d for r in rows if (d := self.get(r.id)) is not None]

    def add_summary(self, row: SessionSummaryRow) -> int:
        with self.store.session() as s:
            s.add(row)
            s.flush()
            return row.id

    def summaries(self, session_id: str) -> list[dict[str, Any]]:
        with self.store.session() as s:
            rows = s.scalars(
                select(SessionSummaryRow)
                .where(SessionSummaryRow.session_id == session_id)
                .order_by(SessionSummaryRow.id)
            )
            cols = [c.key for c in SessionSummaryRow.__table__.columns]
            return [jsonable({c: getattr(r, c) for c in cols}) for r in rows]


def session_dict(row: SessionRow, agents: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "status": row.status,
        "spec": row.spec,
        "window": row.window,
        "fingerprint": row.fingerprint,
        "created_at": iso(row.created_at),
        "ends_at": iso(row.ends_at) if row.ends_at else None,
        "finished_at": iso(row.finished_at) if row.finished_at else None,
        "clock": iso(row.clock) if row.clock else None,
        "progress": row.progress,
        "times": row.times,
        "error": row.error,
        "agents": agents,
    }


def agent_dict(row: SessionAgentRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "role": row.role,
        "entrant": row.entrant,
        "spec": row.spec,
        "agent_id": row.agent_id,
        "start_equity": format(row.start_equity, "f"),
        "equity": row.equity,
        "trades": row.trades,
        "decisions": row.decisions,
        "holds": row.holds,
        "metrics": row.metrics,
        "status": row.status,
    }
