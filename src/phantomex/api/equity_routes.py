"""Equity history: each agent's equity and funding over time, rebuilt from the stored ledger
entries and prices (see :mod:`phantomex.ledger.equity_history`), and its deposits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime

from phantomex.api.schemas.equity import AgentEquity, EquityHistories
from phantomex.api.schemas.wire import RENDER
from phantomex.domain.models import Deposit, Fill
from phantomex.kernel.runtime import Kernel, KernelError
from phantomex.ledger.equity_history import compress, equity_points, sample_times, valid_marks
from phantomex.serialize import iso, jsonable

router = APIRouter(tags=["agents"], default_response_class=RENDER)
Json = dict[str, Any]


def kernel(request: Request) -> Kernel:
    return request.app.state.kernel


K = Annotated[Kernel, Depends(kernel)]
SinceQ = Annotated[
    AwareDatetime | None,
    Query(description="From this time (ISO 8601 with a zone); default: the agent's creation."),
]
UntilQ = Annotated[
    AwareDatetime | None,
    Query(description="Up to this time (ISO 8601 with a zone); default: the kernel's clock."),
]
PointsQ = Annotated[
    int,
    Query(ge=2, le=1000, description="At most this many evenly spaced samples (plus deposits)."),
]
AgentQ = Annotated[str | None, Query(min_length=1, max_length=64, description="Only this agent.")]


@router.get("/api/agents/{agent_id}/equity", response_model=AgentEquity)
def agent_equity(
    agent_id: str,
    k: K,
    since: SinceQ = None,
    until: UntilQ = None,
    points: PointsQ = 300,
) -> Json:
    """One agent's equity and funding (allowance + deposits) over time, and its deposits. The
    last point is at ``until`` (default: now), where it equals the agent's current equity."""
    k.get(agent_id)
    return histories(k, [agent_id], since, until, points)["agents"][0]


@router.get("/api/equity", response_model=EquityHistories)
def equity(
    k: K,
    agent_id: AgentQ = None,
    since: SinceQ = None,
    until: UntilQ = None,
    points: PointsQ = 300,
) -> Json:
    """Every agent's (or one agent's) equity history, as ``/api/agents/{id}/equity``."""
    ids = [k.get(agent_id).id] if agent_id is not None else list(k.agents)
    return histories(k, ids, since, until, points)


def histories(
    k: Kernel,
    ids: Sequence[str],
    since: datetime | None,
    until: datetime | None,
    points: int,
) -> Json:
    """The equity histories of agents ``ids``. Each agent is sampled from ``since`` (or its
    first entry) to ``until`` (or the clock); one price lookup per symbol and sample time."""
    end = until or k.now or datetime.now(UTC)
    if since is not None and since > end:
        raise KernelError("since must not be after until", field="since")
    stored = k.store.ledger_entries(ids[0] if len(ids) == 1 else None)
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
        prices = valid_marks(k.store.prices_at(symbol, ordered))
        marks[symbol] = dict(zip(ordered, prices, strict=True))
    agents = []
    for i, es in entries.items():
        series = compress(equity_points(i, es, grids[i], marks))
        agents.append(
            {
                "agent_id": i,
                "name": k.agents[i].name if i in k.agents else None,
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
