"""The research engine: rule strategies (moving-average crossover, RSI) on one symbol in one
compiled loop, proven identical to the exact kernel by a differential test
(``tests/test_research_fast_identity.py``).

The exact kernel (:mod:`phantomex.research.backtest`) stays the one kernel of live trading,
replay, sessions and LLM backtests, and the truth. This engine repeats what it does for one rule
agent in a backtest: the brains' own signal functions (:mod:`phantomex.brains.rules.signals`) on
windowed indicators identical to TA-Lib's to the last bit, next-open or close fills, fees,
slippage, and every risk rule (stop-loss, take-profit, max hold, cooldown, allocation caps,
minimum notional, daily loss pause, drawdown stop). What it cannot express raises
:class:`FastUnsupported` naming it, and :func:`run_engine` then runs the exact kernel.
"""

from __future__ import annotations

from phantomex.research.fast.engine import (
    FastRun,
    FastUnsupported,
    Series,
    differences,
    prepare,
    run_engine,
    run_fast,
    simulate,
    unsupported,
)

__all__ = [
    "FastRun",
    "FastUnsupported",
    "Series",
    "differences",
    "prepare",
    "run_engine",
    "run_fast",
    "simulate",
    "unsupported",
]
