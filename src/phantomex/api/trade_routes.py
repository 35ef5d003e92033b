"""``/api/trades``: every fill, newest first, a page at a time."""

from __future__ import annotations

from fastapi import APIRouter

from phantomex.api.deps import AgentIdQ, LimitQ, OffsetQ, Qry, SymbolQ
from phantomex.api.schemas.trades import TradePage

router = APIRouter(tags=["trades"])


@router.get("/api/trades")
def trades(
    q: Qry,
    agent_id: AgentIdQ = None,
    symbol: SymbolQ = None,
    limit: LimitQ = 100,
    offset: OffsetQ = 0,
) -> TradePage:
    return q.trades(agent_id, symbol, limit, offset)
