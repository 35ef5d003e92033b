"""RSI mean reversion: buy when oversold while flat, sell when overbought while long."""

from __future__ import annotations

from math import isfinite
from typing import ClassVar

import numpy as np
from pydantic import Field, model_validator

from phantomex.brains.base import BrainContext
from phantomex.brains.indicators import BoolArray, FloatArray, rsi
from phantomex.brains.rules import signals
from phantomex.brains.rules._common import (
    RuleBrain,
    RuleParams,
    Signal,
    buy_blocked,
    closes_or_reason,
    current_price,
    holding,
    num,
)
from phantomex.domain.models import Action

# May-act margin in RSI points: far above the windowed RSI's difference from the whole series'.
LEVEL_TOLERANCE = 0.5


class RsiParams(RuleParams):
    period: int = Field(
        default=14, ge=2, le=200, description="RSI look-back in bars (Wilder's RSI)."
    )
    oversold: float = Field(
        default=30.0, gt=0, lt=100, description="Buy when flat and RSI is below this level."
    )
    overbought: float = Field(
        default=70.0, gt=0, lt=100, description="Sell the position when RSI is above this level."
    )

    @model_validator(mode="after")
    def _levels_ordered(self) -> RsiParams:
        if self.oversold >= self.overbought:
            raise ValueError(
                f"oversold ({self.oversold}) must be below overbought ({self.overbought})"
            )
        return self


class RsiBrain(RuleBrain):
    kind: ClassVar[str] = "rsi"
    title: ClassVar[str] = "RSI mean reversion"
    description: ClassVar[str] = (
        "Buys when Wilder's RSI drops below the oversold level while flat and sells the whole "
        "position when RSI rises above the overbought level (levels, not crossings). Long only."
    )
    Params: ClassVar[type[RsiParams]] = RsiParams

    def __init__(self, params: RsiParams) -> None:
        self.params = params

    def describe(self) -> str:
        p = self.params
        return f"RSI({p.period}) mean reversion: buy < {p.oversold:g}, sell > {p.overbought:g}"

    def may_act(self, closes: FloatArray, *, held: bool) -> BoolArray:
        """Bars where RSI may be above the overbought level (``held``: a sell) or below the
        oversold one (flat: a buy), within :data:`LEVEL_TOLERANCE`."""
        p = self.params
        value = rsi(closes, p.period)
        with np.errstate(invalid="ignore"):
            if held:
                beyond = value > p.overbought - LEVEL_TOLERANCE
            else:
                beyond = value < p.oversold + LEVEL_TOLERANCE
        out: BoolArray = beyond | ~np.isfinite(value)
        return out

    def evaluate(self, ctx: BrainContext, symbol: str) -> Signal:
        p = self.params
        price = current_price(ctx, symbol)
        if price is None:
            return Signal.hold(symbol, f"{symbol}: no valid price")
        need, lookback = signals.rsi_window(p.period)
        closes, why = closes_or_reason(ctx, symbol, need=need, lookback=lookback)
        if closes is None:
            return Signal.hold(symbol, why, price=num(price))
        if np.maximum.reduce(closes) == np.minimum.reduce(closes):  # flat
            return Signal.hold(symbol, f"{symbol}: price has not moved, RSI undefined")
        value = float(rsi(closes, p.period)[-1])
        if not isfinite(value):  # pragma: no cover - guarded by the length/clean checks
            return Signal.hold(symbol, f"{symbol}: RSI unavailable")
        label = f"RSI({p.period}) {value:.1f}"
        price_f = float(price)  # once, for num(price) and fmt(price)
        meta = {
            "symbol": symbol,
            "price": round(price_f, 6),
            "rsi": num(value, 4),
            "oversold": p.oversold,
            "overbought": p.overbought,
        }
        held = holding(ctx, symbol)
        action = signals.rsi_signal(value, bool(held), p.oversold, p.overbought)
        if held:
            if action == signals.SELL:
                return Signal(
                    symbol,
                    Action.SELL,
                    f"{label} > {p.overbought:g} on {symbol}: overbought, sell",
                    strength=value - p.overbought,
                    meta=meta,
                )
            return Signal(
                symbol,
                Action.HOLD,
                f"{label} on {symbol}, holding until > {p.overbought:g}",
                meta=meta,
            )
        if action == signals.BUY:
            if buy_blocked(ctx, symbol):
                return Signal(
                    symbol,
                    Action.HOLD,
                    f"{label} < {p.oversold:g} on {symbol} but no buying power",
                    meta=meta,
                )
            return Signal(
                symbol,
                Action.BUY,
                f"{label} < {p.oversold:g} on {symbol} at {price_f:.8g}: oversold, buy",
                strength=p.oversold - value,
                meta=meta,
            )
        if value > p.overbought:
            return Signal(
                symbol,
                Action.HOLD,
                f"{label} > {p.overbought:g} on {symbol}: overbought but flat (no shorting)",
                meta=meta,
            )
        return Signal(
            symbol,
            Action.HOLD,
            f"{label} on {symbol} within {p.oversold:g}-{p.overbought:g}: no signal",
            meta=meta,
        )
