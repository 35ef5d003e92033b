"""A research-engine run in the exact kernel's :class:`BacktestResult` shape.

The final equity is there at once; the trade records (exact Decimal prices), the per-bar
position flags and the metrics are built from the run's arrays on first use, as vectorbt builds
its records and statistics: a sweep or a benchmark that needs the final equity pays for the
compiled loop only, and a report pays for what it shows. The trades' JSON and the metrics are
written from the fills as columns (:mod:`phantomex.research.fast.fills`), without a trade
record per fill, the same as the generic path writes them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from functools import cached_property
from typing import Any

import numpy as np

from phantomex.brains.rules import signals
from phantomex.research.fast.arrays import DecimalSeries, FastRun, Series, TimeSeries, utc_times
from phantomex.research.fast.fills import Fills
from phantomex.research.metrics import TradeRecord, compute_metrics
from phantomex.research.spec import AgentResult, BacktestConfig, BacktestResult


def trade_records(fills: Fills, symbol: str, name: str) -> list[TradeRecord]:
    """The run's fills as the exact kernel records them: the price from the Decimal bar with
    the broker's slippage arithmetic, quantity and fee from the floats."""
    return [
        TradeRecord(symbol, side, q, price, fee, stamp, name)
        for side, q, price, fee, stamp in zip(fills.sides, fills.quantities, fills.prices,
                                              fills.fees, utc_times(fills.time_us), strict=True)
    ]  # fmt: skip


class FastAgentResult(AgentResult):
    """One agent's run; ``trades``, ``in_market`` and ``metrics`` are built on first use."""

    def __init__(self, config: BacktestConfig, series: Series, run: FastRun) -> None:
        spec = config.agents[0]
        self.name = spec.name
        self.spec = spec
        self.equity = _StartedSeries(spec.allowance, run.equity)
        self.decisions = []
        self.status = run.status
        self.llm = None
        self.series, self.run = series, run  # the bars and the run's arrays
        self.symbol = series.symbol
        self.fills = Fills(series, run, config.slippage_bps, config.fill)

    @cached_property
    def trades(self) -> list[TradeRecord]:  # type: ignore[override]  # built on first use
        return trade_records(self.fills, self.symbol, self.name)

    @cached_property
    def held(self) -> np.ndarray:
        """Per bar: a position was open at its close (as an array)."""
        return _in_market(self.series.closes.size, self.run)

    @cached_property
    def in_market(self) -> list[bool]:  # type: ignore[override]  # built on first use
        return self.held.tolist()

    @cached_property
    def metrics(self) -> dict[str, Any]:  # type: ignore[override]  # built on first use
        run = self.run
        curve = np.empty(run.equity.size + 1)
        curve[0] = float(self.spec.allowance)
        curve[1:] = run.equity
        out = compute_metrics(
            curve, period=self.series.period, in_market=self.held, totals=self.fills.totals()
        )
        out["final_equity"] = format(Decimal(repr(float(curve[-1]))), "f")
        return out


class FastBacktestResult(BacktestResult):
    """A one-agent research-engine result; ``metrics`` are the agent's, built on first use."""

    def __init__(self, config: BacktestConfig, series: Series, run: FastRun, began: float
                 ) -> None:  # fmt: skip
        agent = FastAgentResult(config, series, run)
        start_us = int(series.open_us[0])  # the first tick (its close) less one period
        self.config = config
        self.data = {series.symbol: series.bars}
        self.period = series.period
        self.times = TimeSeries(np.concatenate(([start_us], series.tick_us)))
        self.agents = [agent]
        self._agent = agent
        self.equity = agent.equity
        self.errors = []
        self.engine = "fast"
        self.engine_note = None
        self.elapsed_seconds = time.perf_counter() - began

    @cached_property
    def metrics(self) -> dict[str, Any]:  # type: ignore[override]  # built on first use
        return self.agents[0].metrics

    def trades_json(self, *, several: bool) -> list[dict[str, Any]]:
        """The trades as the generic :meth:`BacktestResult.trades_json` writes them, from the
        run's arrays (one agent: ``several`` is false)."""
        return self._agent.fills.to_json(self._agent.symbol)


class _StartedSeries(DecimalSeries):
    """The starting capital (exact) then the float equity curve."""

    def __init__(self, start: Decimal, values: np.ndarray) -> None:
        super().__init__(values)
        self.start = start

    def __len__(self) -> int:
        return int(self.values.size) + 1

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        j = i + len(self) if i < 0 else i
        if not 0 <= j < len(self):
            raise IndexError(i)
        return self.start if j == 0 else Decimal(repr(float(self.values[j - 1])))

    def __iter__(self) -> Iterator[Decimal]:
        yield self.start
        yield from super().__iter__()


def _in_market(n: int, run: FastRun) -> np.ndarray:
    """Per bar: a position was open at its close (the last fill at or before it was a buy;
    every sell closes the whole position)."""
    held = np.zeros(n, dtype=np.bool_)
    if run.bar.size == 0:
        return held
    last = np.append(run.bar[1:] != run.bar[:-1], True)  # a bar's last fill
    bars = run.bar[last]
    held[bars[0] :] = np.repeat(run.side[last] == signals.BUY, np.diff(bars, append=n))
    return held
