"""Research tools: backtests on the live kernel, performance metrics and reports."""

from phantomex.research.backtest import (
    BacktestConfig,
    BacktestError,
    BacktestResult,
    run_backtest,
)

__all__ = ["BacktestConfig", "BacktestError", "BacktestResult", "run_backtest"]
