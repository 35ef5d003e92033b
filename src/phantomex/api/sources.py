"""``GET /api/sources``: each market source's health and the age of its prices; and the watch
that publishes a ``sources`` event when a source turns stale or fresh again."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request

from phantomex.api.schemas.sources import SourcesReport
from phantomex.api.schemas.wire import RENDER
from phantomex.kernel.bus import Event
from phantomex.kernel.runtime import Kernel
from phantomex.market.sources import health_of, sources_report

router = APIRouter(default_response_class=RENDER)


def report(kernel: Kernel) -> list[dict[str, Any]]:
    wall = datetime.now(UTC)
    return sources_report(
        kernel.feed, kernel.prices, kernel.now or wall, wall, kernel.guard.suspects()
    )


@router.get("/api/sources", tags=["market"], response_model=SourcesReport)
def sources(request: Request) -> dict[str, Any]:
    """Every source: last update, age and staleness (wall clock), error counts and the last
    error, and each price's time and age on the kernel's clock."""
    return {"sources": report(request.app.state.kernel)}


class SourceWatch:
    """Follows the kernel's ``price`` events; publishes ``sources`` when staleness changes."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self._stale: dict[str, bool] | None = None  # None: not looked yet (no event at start)

    def on_event(self, event: Event) -> None:
        if event.type != "price":
            return
        wall = datetime.now(UTC)
        stale = {h.source: h.stale(wall) for h in health_of(self.kernel.feed)}
        before, self._stale = self._stale, stale
        if before is not None and stale != before:
            rows = report(self.kernel)
            self.kernel.bus.publish("sources", {"sources": rows}, event.time)
            for row in rows:  # one notification per source that turned stale or fresh
                if row.get("source") in stale and before.get(row["source"]) != stale[row["source"]]:
                    self.kernel.bus.publish("feed_stale", row, event.time)
