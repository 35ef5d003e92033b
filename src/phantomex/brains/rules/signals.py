"""The decisions of the rule brains as pure functions of numbers, shared by the brains'
``evaluate`` and the research engine (:mod:`phantomex.research.fast`), so the two cannot drift.

Plain Python on floats, ints and bools only: the research engine compiles these same functions
with numba. Signals: :data:`BUY` (1), :data:`SELL` (-1), :data:`HOLD` (0), before the risk
engine and the buying-power check.
"""

from __future__ import annotations

BUY = 1
SELL = -1
HOLD = 0

#: An EMA remembers its seed; 40 slow periods of history put that memory below float precision.
EMA_LOOKBACK_PERIODS = 40
#: Wilder's smoothing remembers the whole series: a bar k bars back still weighs
#: (1 - 1/period)^k. 40 periods of history put that below 1e-17 (the windowed RSI is the whole
#: series' to the last float bit; 10 periods left up to 2e-3 RSI points, enough to flip a
#: decision at a level) and keep every decision bounded in cost.
RSI_LOOKBACK_PERIODS = 40


def momentum_window(slow: int, ema: bool) -> tuple[int, int]:
    """(closes needed, closes looked back at) of a moving-average crossover: both averages
    must exist at t-1, and an EMA gets :data:`EMA_LOOKBACK_PERIODS` slow periods of history."""
    lookback = slow * EMA_LOOKBACK_PERIODS + 1 if ema else slow + 1
    return slow + 1, lookback


def rsi_window(period: int) -> tuple[int, int]:
    """(closes needed, closes looked back at) of an RSI decision."""
    return period + 1, period * RSI_LOOKBACK_PERIODS + 1


def cross(f_now: float, f_prev: float, s_now: float, s_prev: float) -> int:
    """1 when the fast average crosses above the slow one at this bar, -1 below, else 0."""
    if f_now > s_now and f_prev <= s_prev:
        return 1
    if f_now < s_now and f_prev >= s_prev:
        return -1
    return 0


def momentum_signal(crossed: int, held: bool) -> int:
    """A crossover's signal (``crossed``: :func:`cross`): sell the death cross while long, buy
    the golden cross while flat."""
    if held and crossed == -1:
        return SELL
    if not held and crossed == 1:
        return BUY
    return HOLD


def rsi_signal(value: float, held: bool, oversold: float, overbought: float) -> int:
    """RSI mean reversion (levels, not crossings): sell above ``overbought`` while long, buy
    below ``oversold`` while flat."""
    if held:
        return SELL if value > overbought else HOLD
    return BUY if value < oversold else HOLD
