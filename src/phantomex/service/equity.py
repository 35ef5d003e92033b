"""Equity histories: each agent's equity and funding over time, rebuilt from the stored ledger
entries and prices (see :mod:`phantomex.ledger.equity_history`), and its deposits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from phantomex.domain.models import Deposit, Fill
from phantomex.kernel.runtime import Kernel, KernelError
from phantomex.ledger.equity_history import compress, equity_points, sample_times, valid_marks
from phantomex.serialize import iso, jsonable


def histories(
    k: Kernel,
    ids: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    points: int,
) -> dict[str, Any]:
    """The equity histories of agents ``ids``. Each agent is sampled from ``since`` (or its
    first entry) to ``until`` (or the clock); one price lookup per symbol and sample time."""
    end = until or k.now or datetime.now(UTC)
    if since is not None and since > end:
        raise KernelError("since must not be after until", field="since")
    stored = k.records().ledger_entries(ids[0] if len(ids) == 1 else None)
    entries = {i: [e for e in stored.get(i, []) if e.time <= end] for i in ids}
    grids: dict[str, list[datetime]] = {}
    for i, es in entries.items():
        if not es:
            grids[i] = []
            continue
        start = es[0].time if since is None else max(since, es[0].time)
        deposits = [e.time for e in es if isinstance(e, Deposit)]
        grids[i] = sample_times(start, end, points, deposits)
    wanted: dict[str, set[datetime]] = {}
    for i, es in entries.items():
        for symbol in {e.symbol for e in es if isinstance(e, Fill)}:
            wanted.setdefault(symbol, set()).update(grids[i])
    marks: dict[str, dict[datetime, Decimal | None]] = {}
    for symbol, times in wanted.items():
        ordered = sorted(times)
        prices = valid_marks(k.records().prices_at(symbol, ordered))
        marks[symbol] = dict(zip(ordered, prices, strict=True))
    names = {a.id: a.name for a in k.agent_list()}
    agents = []
    for i, es in entries.items():
        series = compress(equity_points(i, es, grids[i], marks))
        agents.append(
            {
                "agent_id": i,
                "name": names.get(i),
                "points": [
                    {"time": iso(p.time), "equity": p.equity, "funding": p.funding} for p in series
                ],
                "deposits": [
                    {"time": iso(e.time), "amount": e.amount, "initial": e.initial}
                    for e in es
                    if isinstance(e, Deposit) and (since is None or e.time >= since)
                ],
            }
        )
    return jsonable({"since": since, "until": end, "points": points, "agents": agents})
