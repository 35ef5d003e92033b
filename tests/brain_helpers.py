"""Crafted price histories and brain contexts for the rule-brain tests: one-minute bars from a
list of closes, and the context an agent would see after them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from phantomex.brains.base import BrainContext
from phantomex.domain.models import Bar, Position, Snapshot, Wallet
from phantomex.domain.money import to_decimal
from phantomex.market.base import PriceHistory

T0 = datetime(2024, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def make_bars(closes: Sequence[float | str], symbol: str = "BTC") -> list[Bar]:
    """One-minute UTC bars with the given closes (open = previous close)."""
    bars: list[Bar] = []
    prev: Decimal | None = None
    for i, value in enumerate(closes):
        close = Decimal(value) if isinstance(value, str) else to_decimal(value)
        open_ = prev if prev is not None and prev.is_finite() else close
        bars.append(
            Bar(
                symbol=symbol,
                time=T0 + i * MINUTE,
                open=open_,
                high=max(open_, close) if close.is_finite() else open_,
                low=min(open_, close) if close.is_finite() else open_,
                close=close,
                volume=Decimal(1),
            )
        )
        prev = close
    return bars


def make_history(series: dict[str, Sequence[float | str]]) -> PriceHistory:
    history = PriceHistory()
    for symbol, closes in series.items():
        history.append(make_bars(closes, symbol))
    return history


def make_wallet(holdings: dict[str, tuple[str, str]] | None = None) -> Wallet:
    """``holdings``: symbol -> (quantity, total cost)."""
    wallet = Wallet(agent_id="a1", allowance=Decimal(1000), cash=Decimal(1000))
    for symbol, (qty, cost) in (holdings or {}).items():
        wallet.positions[symbol] = Position(symbol, Decimal(qty), Decimal(cost), T0)
    return wallet


def make_ctx(
    series: dict[str, Sequence[float | str]],
    *,
    holdings: dict[str, tuple[str, str]] | None = None,
    bars: int | None = None,
    prices: dict[str, Decimal | None] | None = None,
    state: dict[str, Any] | None = None,
    history: PriceHistory | None = None,
) -> BrainContext:
    """Context after the first ``bars`` bars of each series have closed (default: all of them).

    The snapshot price of a symbol is its last visible close unless ``prices`` overrides it
    (None removes the price)."""
    longest = max(len(c) for c in series.values())
    n = longest if bars is None else bars
    now = T0 + n * MINUTE
    history = history if history is not None else make_history(series)
    snapshots: dict[str, Snapshot] = {}
    for symbol, closes in series.items():
        visible = closes[:n]
        if visible:
            value = visible[-1]
            price = Decimal(value) if isinstance(value, str) else to_decimal(value)
            snapshots[symbol] = Snapshot(symbol, now, price)
    for symbol, override in (prices or {}).items():
        if override is None:
            snapshots.pop(symbol, None)
        else:
            snapshots[symbol] = Snapshot(symbol, now, override)
    return BrainContext(
        agent_id="a1",
        agent_name="tester",
        goal="test",
        now=now,
        symbols=list(series),
        prices=snapshots,
        history=history.view(now),
        wallet=make_wallet(holdings),
        state=state if state is not None else {},
    )
