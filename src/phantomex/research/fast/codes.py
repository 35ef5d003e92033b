"""The compiled loop's codes (strategy kinds, agent status, exit kinds, ambiguity codes),
importable without numba."""

from __future__ import annotations

SMA, EMA, RSI = 0, 1, 2
RUNNING, PAUSED, STOPPED = 0, 1, 2
BRAIN, STOP_LOSS, TAKE_PROFIT, MAX_HOLD, DRAWDOWN = 0, 1, 2, 3, 4
EXIT_KINDS = ("brain", "stop_loss", "take_profit", "max_hold", "drawdown")
#: Codes of a float comparison too close to call (the exact kernel decides then).
AMBIGUOUS = {
    1: "stop-loss level",
    2: "take-profit level",
    3: "drawdown limit",
    4: "daily loss limit",
    5: "minimum order notional",
    6: "buy resized to the cash at the fill price",
}
