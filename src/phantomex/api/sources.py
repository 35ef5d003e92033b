"""``GET /api/sources``: each market source's health and the age of its prices; and the watch
that publishes a ``sources`` event when a source turns stale or fresh again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from phantomex.api.deps import Qry
from phantomex.api.schemas.sources import SourcesReport
from phantomex.api.schemas.wire import RENDER
from phantomex.kernel.bus import Event
from phantomex.service import Service

router = APIRouter(default_response_class=RENDER)


@router.get("/api/sources", tags=["market"], response_model=SourcesReport)
def sources(q: Qry) -> dict[str, Any]:
    """Every source: last update, age and staleness (wall clock), error counts and the last
    error, and each price's time and age on the kernel's clock."""
    return {"sources": q.sources()}


class SourceWatch:
    """Follows the kernel's ``price`` events; publishes ``sources`` when staleness changes."""

    def __init__(self, service: Service) -> None:
        self.commands, self.queries = service.commands, service.queries
        self._stale: dict[str, bool] | None = None  # None: not looked yet (no event at start)

    def on_event(self, event: Event) -> None:
        if event.type != "price":
            return
        stale = self.queries.source_staleness(datetime.now(UTC))
        before, self._stale = self._stale, stale
        if before is not None and stale != before:
            rows = self.queries.sources()
            self.commands.announce("sources", {"sources": rows}, event.time)
            for row in rows:  # one notification per source that turned stale or fresh
                if row.get("source") in stale and before.get(row["source"]) != stale[row["source"]]:
                    self.commands.announce("feed_stale", row, event.time)
