"""``/api/market``: the latest prices and each symbol's bars."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from phantomex.api.deps import Qry
from phantomex.api.schemas.market import BarsView, PriceView
from phantomex.domain.inputs import Name, QueryInt

router = APIRouter(tags=["market"])


@router.get("/api/market/prices")
async def prices(q: Qry) -> list[PriceView]:
    return q.prices()


@router.get("/api/market/history")
async def history(
    q: Qry,
    symbol: Annotated[Name, Query(max_length=32)],
    limit: Annotated[QueryInt, Query(ge=1, le=5000, description="Bars, newest last.")] = 200,
) -> BarsView:
    return q.history(symbol, limit)
