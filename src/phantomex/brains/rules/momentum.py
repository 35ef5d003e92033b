"""Moving-average crossover momentum: buy the golden cross while flat, sell the death cross."""

from __future__ import annotations

import math
from math import isfinite
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from phantomex.brains.base import BrainContext
from phantomex.brains.indicators import BoolArray, FloatArray, moving_average
from phantomex.brains.rules import signals
from phantomex.brains.rules._common import (
    RuleBrain,
    RuleParams,
    Signal,
    buy_blocked,
    close_list_or_reason,
    closes_or_reason,
    current_price,
    holding,
    num,
)
from phantomex.domain.models import BUY_ACTION, HOLD_ACTION, SELL_ACTION

# May-act margins, relative to the close: the whole-series averages differ from the per-bar
# windowed ones by rounding (SMA) and by the EMA's forgotten seed (< 1e-5 with the look-back).
CROSS_TOLERANCE = {"sma": 1e-9, "ema": 1e-5}


def sma_last_two(closes: list[float], period: int) -> tuple[float, float]:
    """The last and the previous value of TA-Lib's SMA over ``closes`` (at least ``period + 1``
    values), to the last bit: TA-Lib keeps one running sum from the first value, adds the
    newest value, divides, then takes the oldest one out, and so does this (dividing only for
    the last two values: a division leaves the sum as it is)."""
    size = len(closes)
    if size < period + 1:
        return math.nan if size < period else _sma_of_all(closes, period), math.nan
    total = 0.0
    for close in closes[: period - 1]:
        total += close
    for close, oldest in zip(closes[period - 1 : size - 2], closes, strict=False):
        total += close
        total -= oldest
    total += closes[-2]
    prev = total / period
    total -= closes[size - period - 1]
    total += closes[-1]
    return total / period, prev


def _sma_of_all(closes: list[float], period: int) -> float:
    """TA-Lib's SMA of exactly ``period`` values: their running sum, divided."""
    total = 0.0
    for close in closes:
        total += close
    return total / period


class MomentumParams(RuleParams):
    fast: int = Field(default=10, ge=2, le=500, description="Fast moving-average period in bars.")
    slow: int = Field(default=30, ge=3, le=1000, description="Slow moving-average period in bars.")
    ma: Literal["sma", "ema"] = Field(
        default="sma", description="Moving-average type: simple (sma) or exponential (ema)."
    )

    @model_validator(mode="after")
    def _fast_below_slow(self) -> MomentumParams:
        if self.fast >= self.slow:
            raise ValueError(f"fast ({self.fast}) must be below slow ({self.slow})")
        return self


class MomentumBrain(RuleBrain):
    kind: ClassVar[str] = "momentum"
    title: ClassVar[str] = "Moving-average crossover"
    description: ClassVar[str] = (
        "Buys on the bar where the fast moving average crosses above the slow one while flat and "
        "sells the whole position on the bar where it crosses below. Long only."
    )
    Params: ClassVar[type[MomentumParams]] = MomentumParams

    def __init__(self, params: MomentumParams) -> None:
        self.params = params
        self._window = signals.momentum_window(params.slow, params.ma == "ema")
        self._name = params.ma.upper()

    def describe(self) -> str:
        p = self.params
        return f"{p.ma.upper()}({p.fast}/{p.slow}) crossover momentum"

    def may_act(self, closes: FloatArray, *, held: bool) -> BoolArray:
        """Bars where the averages may cross down (``held``: a sell) or up (flat: a buy),
        within :data:`CROSS_TOLERANCE`."""
        p = self.params
        spread = moving_average(closes, p.fast, p.ma) - moving_average(closes, p.slow, p.ma)
        tol = np.abs(closes) * CROSS_TOLERANCE[p.ma]
        now, prev, tol_now, tol_prev = spread[1:], spread[:-1], tol[1:], tol[:-1]
        unknown = ~(np.isfinite(now) & np.isfinite(prev))
        if held:
            cross = (now < tol_now) & (prev >= -tol_prev)
        else:
            cross = (now > -tol_now) & (prev <= tol_prev)
        out = np.ones(closes.size, dtype=np.bool_)
        out[1:] = unknown | cross
        return out

    def evaluate(self, ctx: BrainContext, symbol: str) -> Signal:
        p = self.params
        price = current_price(ctx, symbol)
        if price is None:
            return Signal.hold(symbol, f"{symbol}: no valid price")
        need, lookback = self._window
        if p.ma == "sma":  # a window of slow + 1 closes: plain Python beats NumPy's overheads
            window, why = close_list_or_reason(ctx, symbol, need=need, lookback=lookback)
            if window is None:
                return Signal.hold(symbol, why, price=num(price))
            f_now, f_prev = sma_last_two(window, p.fast)
            s_now, s_prev = sma_last_two(window, p.slow)
        else:
            closes, why = closes_or_reason(ctx, symbol, need=need, lookback=lookback)
            if closes is None:
                return Signal.hold(symbol, why, price=num(price))
            fast = moving_average(closes, p.fast, p.ma)
            slow = moving_average(closes, p.slow, p.ma)
            f_now, f_prev = float(fast[-1]), float(fast[-2])
            s_now, s_prev = float(slow[-1]), float(slow[-2])
        finite = isfinite(f_now) and isfinite(f_prev) and isfinite(s_now) and isfinite(s_prev)
        if not finite:  # pragma: no cover - guarded
            return Signal.hold(symbol, f"{symbol}: moving averages unavailable")
        crossed = signals.cross(f_now, f_prev, s_now, s_prev)
        name = self._name
        # the averages are floats already: fmt(x, 6) and num(x) without the float() round trip
        label = f"{name}({p.fast}) {f_now:.6g} vs {name}({p.slow}) {s_now:.6g}"
        spread_pct = (f_now - s_now) / s_now * 100
        price_f = float(price)  # once, for num(price) and fmt(price)
        meta = (
            {
                "symbol": symbol,
                "price": round(price_f, 6),
                "fast": round(f_now, 6),
                "slow": round(s_now, 6),
                "fast_prev": round(f_prev, 6),
                "slow_prev": round(s_prev, 6),
                "spread_pct": round(spread_pct, 4),
                "cross": "up" if crossed == 1 else "down" if crossed == -1 else None,
            }
            if ctx.explain
            else {}
        )
        held = holding(ctx, symbol)
        action = signals.momentum_signal(crossed, bool(held))
        if action == signals.SELL:
            return Signal(
                symbol,
                SELL_ACTION,
                f"{label} on {symbol}: crossed below, sell",
                strength=abs(spread_pct),
                meta=meta,
            )
        if action == signals.BUY:
            if buy_blocked(ctx, symbol):
                return Signal(
                    symbol,
                    HOLD_ACTION,
                    f"{label} on {symbol}: crossed above but no buying power",
                    meta=meta,
                )
            return Signal(
                symbol,
                BUY_ACTION,
                f"{label} on {symbol}: crossed above at {price_f:.8g}, buy",
                strength=abs(spread_pct),
                meta=meta,
            )
        trend = "above" if f_now > s_now else "below" if f_now < s_now else "equal to"
        position = "long" if held else "flat"
        return Signal(
            symbol,
            HOLD_ACTION,
            f"{label} on {symbol}: fast {trend} slow, no cross ({position})",
            meta=meta,
        )
