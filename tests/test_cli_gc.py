"""A backtest pauses the cyclic garbage collector for the research engine and resumes it for
the exact kernel (phantomex.cli.collector, phantomex.cli.backtest.exact_run)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from phantomex.cli.backtest import exact_run
from phantomex.cli.collector import collections_paused, collections_resumed
from phantomex.research.fast import run_engine
from phantomex.research.spec import BacktestConfig, load_data, strategy_agent

START = datetime(2023, 4, 1, tzinfo=UTC)


@pytest.fixture()
def passes() -> Iterator[list[int]]:
    """The collector's passes (their generations) while the test runs."""
    seen: list[int] = []

    def count(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(count)
    try:
        yield seen
    finally:
        gc.callbacks.remove(count)


def config(*, fast: bool) -> BacktestConfig:
    """Two days of BTC; with ETH's bars too for the exact kernel (the research engine does not
    share a clock between symbols)."""
    symbols = ["BTC"] if fast else ["BTC", "ETH"]
    data, sources = load_data(dataset="demo", symbols=symbols, columns=True)
    return BacktestConfig(
        data=data,
        sources=sources,
        agents=[strategy_agent("rsi", symbols=["BTC"], interval_seconds=60)],
        start=START,
        end=START + timedelta(days=2),
    )


def test_the_research_engine_runs_without_passes_the_exact_kernel_with_them(
    passes: list[int],
) -> None:
    fast, exact = config(fast=True), config(fast=False)
    assert gc.isenabled()
    with collections_paused():
        assert not gc.isenabled()
        passes.clear()  # (loading the data made some)
        result = run_engine(fast, engine="fast", run=exact_run)
        assert result.engine == "fast" and result.trades
        assert passes == []
        enabled: set[bool] = set()  # seen from inside the exact kernel's run

        def progress(done: int, total: int) -> None:
            enabled.add(gc.isenabled())

        fallback = run_engine(exact, engine="fast", run=exact_run, progress=progress)
        assert fallback.engine == "exact" and fallback.engine_note
        assert enabled == {True}  # the exact kernel's objects are collected as usual
        assert not gc.isenabled()
    assert gc.isenabled()


def test_resuming_outside_a_pause_changes_nothing() -> None:
    gc.disable()
    try:
        with collections_paused(), collections_resumed():
            assert gc.isenabled()
        assert not gc.isenabled()  # as before the pause
    finally:
        gc.enable()
