"""Research tools: backtests on the live kernel, performance metrics and reports.

``run_backtest`` (the exact kernel) is imported on first use, so the research engine and the
CLI can use the configuration and result types without loading the kernel."""

from typing import Any

from phantomex.research.spec import BacktestConfig, BacktestError, BacktestResult

__all__ = ["BacktestConfig", "BacktestError", "BacktestResult", "run_backtest"]


def __getattr__(name: str) -> Any:
    if name == "run_backtest":
        from phantomex.research.backtest import run_backtest

        return run_backtest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
