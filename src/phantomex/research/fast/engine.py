"""The research engine's Python side: which configurations it can run, the arrays it runs on,
several parameter sets per call, and its result in the exact kernel's :class:`BacktestResult`
shape (see :mod:`phantomex.research.fast`)."""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

import numpy as np

from phantomex.brains.registry import create_brain
from phantomex.brains.rules import signals
from phantomex.brains.rules.momentum import MomentumBrain
from phantomex.brains.rules.rsi import RsiBrain
from phantomex.domain.models import Mode
from phantomex.domain.money import BPS
from phantomex.domain.risk import RiskProfile
from phantomex.market.base import PriceHistory
from phantomex.research.fast import compiled
from phantomex.research.fast.arrays import FastRun, FastUnsupported, Series, utc_time
from phantomex.research.fast.codes import AMBIGUOUS, EMA, RSI, SMA
from phantomex.research.fast.columnar import materialised, quiet
from phantomex.research.fast.compiled import Kernels
from phantomex.research.fast.result import FastBacktestResult
from phantomex.research.spec import (
    BacktestConfig,
    BacktestError,
    BacktestResult,
    bar_period,
    select_window,
)

#: The bars of history a brain sees (the kernel's :class:`PriceHistory` bound).
HISTORY_BARS: int = inspect.signature(PriceHistory).parameters["max_bars"].default


# -- what the engine supports ----------------------------------------------------------------------
def unsupported(config: BacktestConfig) -> str | None:
    """Why the research engine cannot run ``config`` (None: it can)."""
    if len(config.agents) != 1:
        return "several agents in one backtest"
    spec = config.agents[0]
    if spec.brain not in ("momentum", "rsi"):
        return f"strategy {spec.brain!r} (supported: momentum, sma_cross, ema_cross, rsi)"
    if spec.mode is not Mode.AUTONOMOUS:
        return "an advisory agent"
    if len(set(spec.symbols)) != 1:
        return "an agent trading several symbols"
    if config.record_decisions:
        return "recording every decision"
    risk = spec.risk
    if not (risk.max_allocation_pct == 100 or risk.max_position_pct == 100) and _tie(
        risk, config.fee_bps
    ):
        return "an allocation cap within 1e-9 of the fee-inclusive all-in size"
    return None


def _alloc(risk: RiskProfile) -> Decimal:
    return min(risk.max_allocation_pct, risk.max_position_pct) / 100


def _tie(risk: RiskProfile, fee_bps: Decimal) -> bool:
    ratio = float(_alloc(risk) * (1 + fee_bps / BPS))
    return abs(ratio - 1) <= 1e-9 and not (ratio == 1 and fee_bps == 0)


def _whole_buy(risk: RiskProfile, fee_bps: Decimal) -> bool:
    """A buy sized to all the cash (re-sized at the fill price), not to the allocation cap:
    the cap allows more than the cash buys, fee included (an exact tie counts as all-in)."""
    return _alloc(risk) * (1 + fee_bps / BPS) >= 1


# -- running ---------------------------------------------------------------------------------------
def _filters(
    kernels: Kernels, kind: int, closes: np.ndarray, p1: int, p2: int, lookback: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """The whole-series filter series and the extra tolerance for windows that do not start
    at the first bar (an EMA's or RSI's forgotten seed, bounded)."""
    if kind == SMA:
        return kernels.sma_series(closes, p1), kernels.sma_series(closes, p2), 0.0
    if kind == EMA:
        spread = float(closes.max() - closes.min())
        memory = (1 - 2 / (p2 + 1)) ** (lookback - 1 - p2)
        return (
            kernels.ema_series(closes, p1),
            kernels.ema_series(closes, p2),
            4 * spread * memory,
        )
    value, sums = kernels.rsi_series(closes, p1)
    step = float(np.abs(np.diff(closes)).max()) if closes.size > 1 else 0.0
    memory = (1 - 1 / p1) ** (lookback - 1 - p1)
    return value, sums, 1e6 * step * memory + 1e-300


def _strategy(
    brain: str, params: Mapping[str, Any]
) -> tuple[int, int, int, float, float, int, int]:
    """(kind, p1, p2, lo, hi, need, look-back) of validated strategy parameters."""
    made = create_brain(brain, dict(params))
    if isinstance(made, MomentumBrain):
        p = made.params
        need, lookback = signals.momentum_window(p.slow, p.ma == "ema")
        kind = EMA if p.ma == "ema" else SMA
        return kind, p.fast, p.slow, 0.0, 0.0, need, min(lookback, HISTORY_BARS)
    if isinstance(made, RsiBrain):
        q = made.params
        need, lookback = signals.rsi_window(q.period)
        return RSI, q.period, 0, q.oversold, q.overbought, need, min(lookback, HISTORY_BARS)
    raise FastUnsupported(f"strategy {brain!r}")


def simulate(
    series: Series,
    brain: str,
    param_sets: Sequence[Mapping[str, Any]],
    *,
    risk: RiskProfile,
    cash: Decimal,
    fee_bps: Decimal,
    slippage_bps: Decimal,
    fill: str,
    interval_seconds: int,
    kernels: Kernels | None = None,
) -> list[FastRun]:
    """Run ``brain`` with each of ``param_sets`` over ``series`` (one compiled loop per set;
    the arrays are built once) on ``kernels`` (by default :data:`compiled.ACTIVE`)."""
    kernels = kernels or compiled.ACTIVE
    nan = math.nan
    fee = float(fee_bps / BPS)
    slip = float(slippage_bps / BPS)
    whole = _whole_buy(risk, fee_bps)
    runs = []
    for params in param_sets:
        kind, p1, p2, lo, hi, need, lookback = _strategy(brain, params)
        fa, fb, extra = _filters(kernels, kind, series.closes, p1, p2, lookback)
        out = kernels.simulate(
            series.opens,
            series.closes,
            series.open_us,
            series.tick_us,
            kind,
            p1,
            p2,
            lo,
            hi,
            need,
            lookback,
            fa,
            fb,
            extra,
            float(cash),
            fee,
            slip,
            fill == "close",
            interval_seconds * 1_000_000,
            float(risk.stop_loss_pct) if risk.stop_loss_pct is not None else nan,
            float(risk.take_profit_pct) if risk.take_profit_pct is not None else nan,
            risk.max_hold_minutes * 60_000_000 if risk.max_hold_minutes is not None else -1,
            float(risk.daily_loss_limit_pct) if risk.daily_loss_limit_pct is not None else nan,
            float(risk.max_drawdown_pct) if risk.max_drawdown_pct is not None else nan,
            risk.cooldown_seconds * 1_000_000,
            float(risk.min_order_notional),
            whole,
            float(_alloc(risk)),
            risk.resize_to_fit,
        )
        ntr, bar, side, qty, price, paid, kinds, equity, status, amb, amb_bar = out
        ambiguous = None
        if amb:
            when = utc_time(int(series.tick_us[amb_bar])).isoformat()
            ambiguous = f"{AMBIGUOUS[amb]} too close to call in floats at {when}"
        runs.append(
            FastRun(
                dict(params),
                ntr,
                bar[:ntr],
                side[:ntr],
                qty[:ntr],
                price[:ntr],
                paid[:ntr],
                kinds[:ntr],
                equity,
                ("running", "paused", "stopped")[status],
                ambiguous,
            )
        )
    return runs


def prepare(config: BacktestConfig) -> Series:
    """The configuration's one symbol as arrays (raises :class:`FastUnsupported`)."""
    reason = unsupported(config)
    if reason:
        raise FastUnsupported(f"the research engine does not support {reason}")
    data = select_window(config.data, config.start, config.end)
    if not data:
        raise BacktestError("no bars in the chosen time window")
    symbol = config.agents[0].symbols[0]
    if symbol not in data:
        raise FastUnsupported(f"no bars of {symbol} (the exact kernel holds without a price)")
    if set(data) != {symbol}:
        raise FastUnsupported("bars of symbols the agent does not trade (shared clock)")
    if not quiet(data):
        raise FastUnsupported("bars the price guard would hold trading on (an implausible price)")
    return Series.from_bars(symbol, data[symbol], bar_period(data))


def run_fast(config: BacktestConfig) -> BacktestResult:
    """``config`` on the research engine, as a :class:`BacktestResult` (``engine`` "fast").
    Raises :class:`FastUnsupported` for what it cannot run or decide exactly."""
    began = time.perf_counter()
    series = prepare(config)
    spec = config.agents[0]
    run = simulate(
        series,
        spec.brain,
        [spec.params],
        risk=spec.risk,
        cash=spec.allowance,
        fee_bps=config.fee_bps,
        slippage_bps=config.slippage_bps,
        fill=config.fill,
        interval_seconds=spec.interval_seconds,
    )[0]
    if run.ambiguous:
        raise FastUnsupported(run.ambiguous)
    return FastBacktestResult(config, series, run, began)


def run_engine(
    config: BacktestConfig, engine: str = "fast", run: Callable[..., BacktestResult] | None = None,
    **kwargs: Any,
) -> BacktestResult:  # fmt: skip
    """``config`` on the research engine (``engine`` "fast") or the exact kernel ("exact", or
    "fast" for what the research engine cannot run: the result's ``engine_note`` says why).
    ``run`` is the exact kernel's entry point (default ``run_backtest``, imported only when the
    exact kernel runs; ``kwargs`` go to it)."""
    if run is None:
        run = _run_backtest
    if engine == "fast":
        try:
            return run_fast(config)
        except FastUnsupported as exc:
            result = run(replace(config, data=materialised(config.data)), **kwargs)
            result.engine_note = f"ran on the exact kernel: {exc}"
            return result
    if engine != "exact":
        raise BacktestError(f"unknown engine {engine!r} (fast or exact)")
    return run(config, **kwargs)


def _run_backtest(config: BacktestConfig, **kwargs: Any) -> BacktestResult:
    from phantomex.research.backtest import run_backtest

    return run_backtest(config, **kwargs)


#: The agreement the research engine owes the exact kernel.
QUANTITY_RTOL = 1e-9
EQUITY_RTOL = 1e-6


def differences(fast: BacktestResult, exact: BacktestResult) -> list[str]:
    """Where two results of one configuration disagree: fills (time, side, exact price),
    quantities beyond :data:`QUANTITY_RTOL`, final status, final equity beyond
    :data:`EQUITY_RTOL`, ticks (their count, the start, the first and the last). Empty:
    identical."""
    out = []
    a, b = fast.trades, exact.trades
    if len(a) != len(b):
        out.append(f"{len(a)} fills vs {len(b)}")
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if (x.time, x.side, x.price) != (y.time, y.side, y.price):
            out.append(f"fill {i}: {x.time} {x.side} {x.price} vs {y.time} {y.side} {y.price}")
            break
        if not math.isclose(x.quantity, y.quantity, rel_tol=QUANTITY_RTOL):
            out.append(f"fill {i}: quantity {x.quantity} vs {y.quantity}")
            break
    statuses = [r.status for r in fast.agents], [r.status for r in exact.agents]
    if statuses[0] != statuses[1]:
        out.append(f"status {statuses[0]} vs {statuses[1]}")
    if not math.isclose(fast.final_equity, exact.final_equity, rel_tol=EQUITY_RTOL):
        out.append(f"final equity {fast.final_equity} vs {exact.final_equity}")
    if len(fast.times) != len(exact.times) or any(
        fast.times[i] != exact.times[i] for i in (0, 1, -1)
    ):
        out.append("different ticks")
    return out
