"""A stored session with its running figures, as the API and the CLI show it."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from phantomex.serialize import iso

#: a running session's clock, its agents' figures by name, and the wall time of a live one
Running = tuple[datetime, dict[str, dict[str, Any]], datetime | None]


def session_view(
    s: dict[str, Any], *, curves: bool, running: Running | None = None
) -> dict[str, Any]:
    """``s`` with elapsed and remaining time and each agent's equity and P&L (from ``running``
    while it runs, else from the saved curve); without ``curves`` the series are dropped."""
    start = datetime.fromisoformat(s["window"]["start"])
    end = datetime.fromisoformat(s["window"]["end"])
    live: dict[str, dict[str, Any]] = {}
    if running is not None:
        run_clock, live, wall = running
        clock = wall or run_clock
        s["clock"] = iso(run_clock)
    else:
        clock = datetime.fromisoformat(s["clock"]) if s["clock"] else start
    clock = min(max(clock, start), end)
    s["elapsed_seconds"] = (clock - start).total_seconds()
    s["remaining_seconds"] = (end - clock).total_seconds() if running is not None else 0.0
    s["duration_seconds"] = (end - start).total_seconds()
    if running is not None:
        s["progress"] = s["elapsed_seconds"] / max(s["duration_seconds"], 1e-9)
    for a in s["agents"]:
        figures = live.get(a["name"])
        if figures is None:
            last = Decimal(a["equity"][-1]) if a["equity"] else Decimal(a["start_equity"])
            start_eq = Decimal(a["start_equity"])
            figures = {
                "equity_now": format(last, "f"),
                "pnl": format(last - start_eq, "f"),
                "return_pct": float((last / start_eq - 1) * 100),
            }
        a.update(figures)
        a["trade_count"] = len(a["trades"]) if a["role"] == "agent" else 0
        if not curves:
            for key in ("equity", "trades", "decisions"):
                a.pop(key, None)
    if not curves:
        s.pop("times", None)
    return s
