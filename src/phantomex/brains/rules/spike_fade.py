"""Spike fade: buy a sharp drop while flat, sell into a sharp rise while long.

Multi-window spike detection with a coefficient-of-variation filter (after the PolyAgent
design). For each window of ``w`` bars, the window holds the last ``w`` closes (fewer when the
history is shorter, as long as there are ``min_bars``) and
``spike_pct = (current - oldest close in window) / oldest * 100`` where ``current`` is the latest
price. A window whose closes have a coefficient of variation above ``cv_threshold`` is too
volatile to call a move a spike and is skipped. The largest ``|spike_pct|`` over the eligible
windows decides (ties: the shorter window)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from phantomex.brains.base import BrainContext
from phantomex.brains.indicators import coefficient_of_variation
from phantomex.brains.rules._common import (
    RuleBrain,
    RuleParams,
    Signal,
    buy_blocked,
    closes_or_reason,
    current_price,
    fmt,
    holding,
    num,
)
from phantomex.domain.models import Action

Window = Annotated[int, Field(ge=2, le=1000)]


class SpikeFadeParams(RuleParams):
    windows: list[Window] = Field(
        default=[10, 30, 60],
        min_length=1,
        max_length=10,
        description="Look-back windows in bars; each is checked for a spike.",
    )
    spike_threshold_pct: float = Field(
        default=2.0,
        gt=0,
        le=100,
        description="Move in percent over a window that counts as a spike (drop: buy, rise: sell).",
    )
    cv_threshold: float = Field(
        default=0.05,
        gt=0,
        le=10,
        description=(
            "Skip a window whose coefficient of variation of closes (std / mean) exceeds this: "
            "the market is too volatile there for a move to be a spike."
        ),
    )
    min_bars: int = Field(
        default=5, ge=2, le=1000, description="Fewest bars a window needs to be evaluated."
    )

    @field_validator("windows")
    @classmethod
    def _sorted_unique(cls, value: list[int]) -> list[int]:
        return sorted(set(value))

    @model_validator(mode="after")
    def _min_bars_fits(self) -> SpikeFadeParams:
        if self.min_bars > max(self.windows):
            raise ValueError(
                f"min_bars ({self.min_bars}) exceeds the largest window ({max(self.windows)})"
            )
        return self


class SpikeFadeBrain(RuleBrain):
    kind: ClassVar[str] = "spike_fade"
    title: ClassVar[str] = "Spike fade"
    description: ClassVar[str] = (
        "Looks for sharp moves over several windows, skipping windows that are too volatile "
        "(coefficient of variation filter). Buys a sharp drop while flat (buy the dip) and sells "
        "the position into a sharp rise (fade the move). Long only."
    )
    Params: ClassVar[type[SpikeFadeParams]] = SpikeFadeParams

    def __init__(self, params: SpikeFadeParams) -> None:
        self.params = params

    def describe(self) -> str:
        p = self.params
        windows = "/".join(str(w) for w in p.windows)
        return (
            f"Spike fade ±{p.spike_threshold_pct:g}% over {windows} bars, "
            f"CV filter {p.cv_threshold:g}"
        )

    def evaluate(self, ctx: BrainContext, symbol: str) -> Signal:
        p = self.params
        price = current_price(ctx, symbol)
        if price is None:
            return Signal.hold(symbol, f"{symbol}: no valid price")
        closes, why = closes_or_reason(ctx, symbol, need=p.min_bars, lookback=max(p.windows))
        if closes is None:
            return Signal.hold(symbol, why, price=num(price))
        current = float(price)
        windows: list[dict[str, Any]] = []
        best: dict[str, Any] | None = None
        for w in p.windows:
            window = closes[-w:]
            if window.size < p.min_bars:  # a window shorter than min_bars is never evaluated
                continue
            oldest = float(window[0])
            spike = (current - oldest) / oldest * 100
            cv = coefficient_of_variation(window)
            eligible = bool(np.isfinite(cv)) and cv <= p.cv_threshold
            info = {
                "window": w,
                "bars": int(window.size),
                "spike_pct": num(spike, 4),
                "cv": num(cv, 6) if np.isfinite(cv) else None,
                "eligible": eligible,
            }
            windows.append(info)
            if eligible and (best is None or abs(spike) > abs(best["_spike"])):
                best = {**info, "_spike": spike}
        meta: dict[str, Any] = {
            "symbol": symbol,
            "price": num(price),
            "windows": windows,
            "spike_threshold_pct": p.spike_threshold_pct,
            "cv_threshold": p.cv_threshold,
        }
        if best is None:
            return Signal(
                symbol,
                Action.HOLD,
                f"{symbol}: every window too volatile (CV > {p.cv_threshold:g}), no spike call",
                meta=meta,
            )
        spike = float(best["_spike"])
        meta["spike_pct"] = num(spike, 4)
        meta["spike_window"] = best["window"]
        label = f"{spike:+.2f}% over {best['bars']} bars on {symbol} (CV {best['cv']:.4f})"
        held = holding(ctx, symbol)
        if spike <= -p.spike_threshold_pct:
            if held:
                return Signal(symbol, Action.HOLD, f"{label}: sharp drop, already long", meta=meta)
            if buy_blocked(ctx, symbol):
                return Signal(
                    symbol, Action.HOLD, f"{label}: sharp drop but no buying power", meta=meta
                )
            return Signal(
                symbol,
                Action.BUY,
                f"{label}: sharp drop to {fmt(price)}, buy the dip",
                strength=abs(spike),
                meta=meta,
            )
        if spike >= p.spike_threshold_pct:
            if held:
                return Signal(
                    symbol,
                    Action.SELL,
                    f"{label}: sharp rise to {fmt(price)}, fade it and sell",
                    strength=abs(spike),
                    meta=meta,
                )
            return Signal(
                symbol, Action.HOLD, f"{label}: sharp rise but flat (no shorting)", meta=meta
            )
        return Signal(
            symbol,
            Action.HOLD,
            f"{label}: within ±{p.spike_threshold_pct:g}%, no spike",
            meta=meta,
        )
