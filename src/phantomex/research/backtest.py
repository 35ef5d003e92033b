"""Backtests on the live kernel: the same Kernel, PaperBroker, RiskEngine and Ledger as a live
server, driven by a :class:`~phantomex.market.replay.ReplayFeed` as fast as it can go.

Each tick is one :meth:`Kernel.step` inside a store unit, driven by the same tick driver as
live trading (:mod:`phantomex.kernel.driver`); the differences are that the store is a fresh
:class:`~phantomex.store.memory.MemoryStore` (the run's records live as long as the result),
that ticks are grouped into larger units, that a failing tick stops the backtest instead of
being logged and skipped, and that after every tick the
equity of every agent is marked to the bar's close (the equity curve).

Event skipping (:mod:`phantomex.kernel.skipping`): when every agent's brain declares vectorised
signals, the ticks at which nothing can happen (no agent may act for the position it has, no
order rests, no risk exit may fire) are passed over with :meth:`Kernel.skip` instead of being
visited, and their equity is marked in one go; the result is the same as visiting them.

Fills: ``next_open`` (default) rests a market order until the next bar and fills it at that bar's
open, so a decision on bar t's close fills at bar t+1's open and a decision on the last bar never
fills; ``close`` fills at once at the decision bar's close. Position sizing of rule strategies:
all-in on entry (the whole cash, fee included, unrounded quantities), all-out on exit, no
stop-loss, take-profit, loss limits or cooldown (:data:`BACKTEST_RISK`) unless overridden: this is
the reference configuration of ``shared/benchmarks/backtest-spec.md``.

The configuration, data loading and result types live in :mod:`phantomex.research.spec`,
which the research engine uses without this module's kernel.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from pydantic import ValidationError

from phantomex.brains.base import Brain
from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.broker.paper import PaperBroker, PaperBrokerConfig
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Mode, Tick
from phantomex.kernel.bus import Event
from phantomex.kernel.compose import build_kernel
from phantomex.kernel.driver import TickDriver
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.market.replay import ReplayFeed
from phantomex.research.llm_figures import llm_figures
from phantomex.research.metrics import FloatArray, TradeRecord, compute_metrics, floats_of
from phantomex.research.spec import (
    AgentResult,
    BacktestConfig,
    BacktestError,
    BacktestResult,
    Progress,
    first_error,
    select_window,
)
from phantomex.serialize import iso
from phantomex.store.memory import MemoryStore

if TYPE_CHECKING:
    from phantomex.store.repo import Store

TICKS_PER_TRANSACTION = 1000
PROGRESS_EVERY = 250


# -- running ---------------------------------------------------------------------------------------
def run_backtest(
    config: BacktestConfig,
    *,
    progress: Progress | None = None,
    brains: Mapping[str, Brain] | None = None,
    llm: LLMRuntime | None = None,
    cache_store: Store | None = None,
) -> BacktestResult:
    """Run ``config`` on a fresh kernel with an in-memory store.

    ``progress(done, total)`` is called every few hundred bars and at the end. ``brains``
    replaces the brain of the named agents after they are created (instrumented or custom
    brains; the spec's ``brain`` must still be a registered strategy). ``llm`` is the runtime
    LLM agents use; the LLM responses of the run are saved in ``cache_store`` when given (the
    store ``llm``'s cache reads), so a re-run gets the same answers and repeats exactly."""
    with _frozen_heap() as settle:
        return asyncio.run(
            _run(
                config,
                progress=progress,
                brains=brains or {},
                llm=llm,
                cache_store=cache_store,
                settle=settle,
            )
        )


async def _run(
    config: BacktestConfig,
    *,
    progress: Progress | None,
    brains: Mapping[str, Brain],
    llm: LLMRuntime | None,
    cache_store: Store | None = None,
    settle: Callable[[], None] = lambda: None,
) -> BacktestResult:
    """The run; ``settle()`` is called each time long-lived objects have been built (see
    :func:`_frozen_heap`)."""
    began = time.perf_counter()
    if not config.agents:
        raise BacktestError("no agent to backtest")
    names = [a.name.lower() for a in config.agents]
    if len(set(names)) != len(names):
        raise BacktestError("agent names must be unique")
    data = select_window(config.data, config.start, config.end)
    if not data:
        raise BacktestError("no bars in the chosen time window")
    feed = ReplayFeed(data, speed=0)
    total = feed.remaining or 0
    start = feed.start - feed.period
    store = MemoryStore()  # the run's: its LLM answers are copied out at the end
    kernel = build_kernel(
        feed,
        PaperBroker(
            PaperBrokerConfig(
                fee_bps=config.fee_bps,
                slippage_bps=config.slippage_bps,
                fill_timing="next_open" if config.fill == "next_open" else "now",
            )
        ),
        config=KernelConfig(
            persist_snapshots=False,
            await_slow_brains=True,
            lean=not config.record_decisions,
        ),
        store=store,
        llm=llm,
        start=start,  # agents and their deposits are created at the simulated start
    )
    try:
        agents = []
        for spec in config.agents:
            if spec.mode is not Mode.AUTONOMOUS:
                raise BacktestError(f"agent {spec.name!r}: backtests run autonomous agents")
            try:
                agents.append(kernel.create_agent(spec, brain=brains.get(spec.name)))
            except ValidationError as exc:
                raise BacktestError(f"agent {spec.name!r}: {first_error(exc)}") from None
            except ValueError as exc:
                raise BacktestError(f"agent {spec.name!r}: {exc}") from None
        errors: list[str] = []

        def on_event(event: Event) -> None:
            if event.type == "error":
                errors.append(f"{iso(event.time)}: {event.data.get('message', '')}")

        kernel.bus.subscribe(on_event, types=("error",))
        times: list[datetime] = [start]
        curves = {a.id: _Curve.starting(a.spec.allowance) for a in agents}
        books = [(i, c.values, c.held, c.marked, c.cash, c.runs) for i, c in curves.items()]
        marks, wallet_of = kernel.marks, kernel.ledger.view  # read only

        def observe(tick: Tick) -> None:
            times.append(tick.time)
            for agent_id, curve, holding, held_values, cash, runs in books:
                wallet = wallet_of(agent_id)
                value = wallet.equity(marks)
                curve.append(value)
                if wallet.positions:
                    holding.append(True)
                    held_values.append(value)
                else:
                    holding.append(False)
                    cash.append(value)
                    runs.append(1)
            if progress is not None:
                report(1)

        def skipped(span: Sequence[datetime], equities: dict[str, list[Decimal]]) -> None:
            """The ticks passed over (nothing happens at them: no wallet changes)."""
            times.extend(span)
            for agent_id, curve, holding, held_values, cash, runs in books:
                values = equities[agent_id]
                curve.extend(values)
                in_market = bool(wallet_of(agent_id).positions)
                holding.extend([in_market] * len(span))
                if in_market:
                    held_values.extend(values)
                elif values:  # the cash, at every tick
                    cash.append(values[0])
                    runs.append(len(values))
            if progress is not None:
                report(len(span))

        def report(count: int) -> None:
            done = len(times) - 1
            if progress is not None and done // PROGRESS_EVERY != (done - count) // PROGRESS_EVERY:
                progress(done, total)

        driver = TickDriver(
            kernel,
            batch=TICKS_PER_TRANSACTION,
            observe=observe,
            skipping=True,
            on_skip=skipped,
        )
        settle()  # the feed, the plan and the result's columns
        await driver.run()
        settle()  # and the run's records, before the audit and the results read them
        if progress is not None:
            progress(len(times) - 1, total)
        if cache_store is not None:
            for key, response, when in store.cache_entries():
                cache_store.cache_put(key, response, when)
        if kernel.audit():
            raise BacktestError(f"the ledger does not reconcile: {kernel.audit()}")
        results = [
            _agent_result(
                kernel, store, agent.id, curves[agent.id], feed.period, config.record_decisions
            )
            for agent in agents
        ]
    finally:
        store.close()
    if len(results) == 1:
        total_equity, metrics = results[0].equity, results[0].metrics
    else:
        total_equity = [
            sum(col, Decimal(0)) for col in zip(*(r.equity for r in results), strict=True)
        ]
        in_market = [any(col) for col in zip(*(r.in_market for r in results), strict=True)]
        every = sorted(
            (t for r in results for t in r.trades),
            key=lambda t: t.time,
        )
        metrics = compute_metrics(
            total_equity, period=feed.period, trades=every, in_market=in_market
        )
    return BacktestResult(
        config=config,
        data=data,
        period=feed.period,
        times=times,
        agents=results,
        equity=total_equity,
        metrics=metrics,
        elapsed_seconds=time.perf_counter() - began,
        errors=errors,
    )


@contextmanager
def _frozen_heap() -> Iterator[Callable[[], None]]:
    """Keep the objects alive before the run (the bars: millions of objects on long data) out
    of the garbage collector's full collections while it runs, result included (``gc.freeze``):
    each would walk them all, for nothing, as the run only adds to them. Yields the function
    that freezes what is alive by then too (the feed and the plan, once built). Nothing is
    frozen when something else has frozen objects already (a forked server's), as unfreezing
    would release those."""
    if gc.get_freeze_count():
        yield lambda: None
        return
    gc.freeze()
    try:
        yield gc.freeze
    finally:
        gc.unfreeze()


@dataclass(slots=True)
class _Curve:
    """One agent's equity curve as the run marks it: every value (the start's first), whether
    a position was held at each tick, and what the curve's floats (for the metrics) are made
    of, all converted at the end (:meth:`floats`): the values where a position was held, and
    the others (the cash) as runs of one value (a visited tick's, or a skipped span's) with
    their lengths."""

    values: list[Decimal]
    held: list[bool]
    marked: list[Decimal]
    cash: list[Decimal]
    runs: list[int]

    @classmethod
    def starting(cls, allowance: Decimal) -> _Curve:
        return cls([allowance], [], [], [allowance], [1])

    def floats(self, held: npt.NDArray[np.bool_]) -> FloatArray:
        """``float`` of each value (``held``: :attr:`held` as an array), each converted once
        (:func:`floats_of`): the held ones, and each run's."""
        where = np.zeros(held.size + 1, dtype=np.bool_)
        where[1:] = held
        out = np.empty(where.size, dtype=np.float64)
        out[where] = floats_of(self.marked)
        out[~where] = np.repeat(floats_of(self.cash), self.runs)
        return out


def agent_trades(kernel: Kernel, agent_id: str, name: str) -> list[TradeRecord]:
    """Every fill of an agent, in the order it happened, as trade records named ``name``."""
    return [
        TradeRecord(
            symbol=r["symbol"],
            side=r["side"],
            quantity=r["quantity"],
            price=r["price"],
            fee=r["fee"],
            time=r["time"],
            agent=name,
        )
        for r in kernel.trades(agent_id)
    ]


def _agent_result(
    kernel: Kernel,
    store: MemoryStore,
    agent_id: str,
    curve: _Curve,
    period: timedelta,
    record_decisions: bool,
) -> AgentResult:
    agent = kernel.get(agent_id)
    trades = [  # as agent_trades gives them, from the store's fills
        TradeRecord(f.symbol, f.side.value, f.quantity, f.price, f.fee, f.time, agent.name)
        for f in store.fills(agent_id)
    ]
    decisions: list[dict[str, Any]] = []
    if record_decisions:
        records = kernel.decisions(agent_id, limit=10**9)
        records.sort(key=lambda d: d.time)
        decisions = [
            {
                "time": d.time,
                "source": d.source,
                "action": d.action,
                "symbol": d.symbol,
                "quantity": d.quantity,
                "notional": d.notional,
                "reasoning": d.reasoning,
                "confidence": d.confidence,
                "checks": d.checks,
                "meta": d.meta,
                # the outcome: a resting order's fill later sets status, price and resolved_at
                "status": d.status,
                "price": d.price,
                "reason": d.reason,
                "resolved_at": d.resolved_at,
            }
            for d in records
        ]
    held = np.array(curve.held, dtype=np.bool_)
    metrics = compute_metrics(
        curve.values, period=period, trades=trades, in_market=held, floats=curve.floats(held)
    )
    return AgentResult(
        name=agent.name,
        spec=agent.spec,
        trades=trades,
        equity=curve.values,
        in_market=curve.held,
        metrics=metrics,
        decisions=decisions,
        status=agent.status.value,
        llm=llm_figures(store.agent_llm_calls(agent_id)) if _is_llm(agent.spec) else None,
    )


def _is_llm(spec: AgentSpec) -> bool:
    return spec.brain == "llm"
