"""The research engine is the exact kernel, trade for trade: a differential test.

Hypothesis draws the market (geometric Brownian motion with regime switches and jumps, gaps,
flat stretches, prices on a 1/64 grid or not, or a window of the shipped real data), the
strategy and its parameters (SMA / EMA crossover, RSI), the risk settings (stop-loss,
take-profit, max hold, cooldown, allocation caps, minimum notional, resize-to-fit, daily loss
pause, drawdown stop), fees, slippage, fill timing and decision interval; runs both engines and
requires the same fills (time, side, exact price), quantities within 1e-9 relative, the same
final status and final equity within 1e-6 relative.

``make test`` runs :data:`EXAMPLES` cases (about a minute); ``make test-identity`` runs
thousands (``PHANTOMEX_IDENTITY_EXAMPLES``)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from phantomex.domain.models import Bar
from phantomex.market.loaders import load_dataset
from phantomex.research.backtest import run_backtest
from phantomex.research.fast import FastUnsupported, differences, run_fast
from phantomex.research.spec import BacktestConfig, strategy_agent

EXAMPLES = int(os.environ.get("PHANTOMEX_IDENTITY_EXAMPLES", "200"))


@cache
def real_closes() -> dict[str, list[Bar]]:
    return load_dataset("demo", ["BTC", "ETH", "DOGE"])


@st.composite
def markets(draw: st.DrawFn) -> list[Bar]:
    """Bars of one symbol, ``X``: generated or a window of real data."""
    n = draw(st.integers(120, 520))
    if draw(st.booleans()) and draw(st.booleans()):  # a quarter: real data
        symbol = draw(st.sampled_from(["BTC", "ETH", "DOGE"]))
        bars = real_closes()[symbol]
        start = draw(st.integers(0, len(bars) - n))
        return [
            Bar("X", b.time, b.open, b.high, b.low, b.close, b.volume)
            for b in bars[start : start + n]
        ]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    vol = np.where(rng.random(n) < 0.5, 0.001, 0.004)  # two regimes...
    switches = np.cumsum(rng.random(n) < 0.02) % 2  # ...switching now and then
    steps = rng.normal(0.0002 * (1 - 2 * switches), np.where(switches, vol, vol / 2))
    jumps = rng.random(n) < 0.01
    steps[jumps] += rng.normal(0, 0.03, jumps.sum())
    close = 100.0 * np.exp(np.cumsum(steps))
    if draw(st.booleans()):  # flat stretches
        for _ in range(draw(st.integers(1, 3))):
            a = int(rng.integers(0, n - 5))
            close[a : a + int(rng.integers(3, 60))] = close[a]
    grid = draw(st.booleans())
    if grid:
        close = np.maximum(np.round(close * 64) / 64, 1 / 64)
    opening = np.empty(n)
    opening[0] = close[0]
    opening[1:] = close[:-1] * np.exp(rng.normal(0, 0.0005, n - 1))
    if grid:
        opening = np.maximum(np.round(opening * 64) / 64, 1 / 64)
    high = np.maximum(opening, close) * 1.001
    low = np.minimum(opening, close) * 0.999
    period = timedelta(minutes=1)
    start = datetime(2024, 3, 1, 21, 0, tzinfo=UTC)  # days roll during the run
    keep = rng.random(n) > (0.05 if draw(st.booleans()) else 0.0)  # gaps
    keep[0] = True
    return [
        Bar("X", start + i * period, _d(opening[i]), _d(high[i]), _d(low[i]), _d(close[i]), _d(1))
        for i in range(n)
        if keep[i]
    ]


def _d(x: float) -> Decimal:
    return Decimal(repr(float(x)))


@st.composite
def strategies(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.sampled_from(["sma_cross", "ema_cross", "rsi"]))
    if name == "rsi":
        period = draw(st.integers(2, 30))
        low = draw(st.floats(5, 50))
        high = draw(st.floats(low + 1, 95))
        return name, {"period": period, "oversold": low, "overbought": high}
    fast = draw(st.integers(2, 15))
    slow = draw(st.integers(fast + 1, 40 if name == "sma_cross" else 25))
    return name, {"fast": fast, "slow": slow}


def _pct(draw: st.DrawFn, low: float, high: float) -> str | None:
    if draw(st.booleans()):
        return None
    return f"{draw(st.floats(low, high)):.3f}"


@st.composite
def risks(draw: st.DrawFn) -> dict[str, Any]:
    out: dict[str, Any] = {
        "stop_loss_pct": _pct(draw, 0.1, 5),
        "take_profit_pct": _pct(draw, 0.1, 5),
        "daily_loss_limit_pct": _pct(draw, 0.3, 5),
        "max_drawdown_pct": _pct(draw, 0.5, 15),
        "max_hold_minutes": draw(st.none() | st.integers(1, 120)),
        "cooldown_seconds": draw(st.sampled_from([0, 0, 30, 60, 61, 300, 900])),
        "max_allocation_pct": draw(st.sampled_from(["100", "100", "99.95", "50", "25", "10"])),
        "max_position_pct": draw(st.sampled_from(["100", "100", "60", "30"])),
        "min_order_notional": draw(st.sampled_from(["0", "0", "1", "50", "5000"])),
        "resize_to_fit": draw(st.booleans()),
    }
    if draw(st.booleans()):  # half the runs: only some rules (the all-in reference often)
        keep = draw(st.sets(st.sampled_from(sorted(out)), max_size=3))
        out = {k: v for k, v in out.items() if k in keep}
    return out


@st.composite
def configs(draw: st.DrawFn) -> BacktestConfig:
    bars = draw(markets())
    name, params = draw(strategies())
    agent = strategy_agent(
        name,
        params,
        symbols=["X"],
        cash=Decimal(draw(st.sampled_from(["10000", "1234.56", "250"]))),
        risk=draw(risks()),
        interval_seconds=draw(st.sampled_from([1, 1, 60, 120, 300])),
    )
    return BacktestConfig(
        data={"X": bars},
        agents=[agent],
        fee_bps=Decimal(draw(st.sampled_from(["10", "0", "25", "7.5"]))),
        slippage_bps=Decimal(draw(st.sampled_from(["0", "0", "5", "12.5"]))),
        fill=draw(st.sampled_from(["next_open", "close"])),
    )


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=True,
)
@given(configs())
def test_research_engine_is_the_exact_kernel(config: BacktestConfig) -> None:
    try:
        fast = run_fast(config)
    except FastUnsupported:
        assume(False)  # a float comparison too close to call: the exact kernel would run
        raise
    exact = run_backtest(config)
    found = differences(fast, exact)
    if found and os.environ.get("PHANTOMEX_IDENTITY_DUMP"):
        import pickle

        Path(os.environ["PHANTOMEX_IDENTITY_DUMP"]).write_bytes(pickle.dumps(config))
    assert not found, (found, {k: v for k, v in config.describe().items() if k != "data"})
    # what the fast result builds on first use: the position flags and the trade metrics
    assert list(fast.agents[0].in_market) == list(exact.agents[0].in_market)
    for key in ("bars", "trades", "round_trips", "exposure", "win_rate"):
        assert fast.metrics[key] == exact.metrics[key], key


def test_real_btc_reference_strategies_are_identical() -> None:
    """The benchmark's cases on the whole real BTC month: all 1,730 and 423 fills."""
    bars = real_closes()["BTC"]
    for name in ("sma_cross", "rsi"):
        config = BacktestConfig(data={"BTC": bars}, agents=[strategy_agent(name, symbols=["BTC"])])
        fast, exact = run_fast(config), run_backtest(config)
        assert differences(fast, exact) == []
        assert len(fast.trades) in (1730, 423)


def test_a_market_that_has_not_moved_yet_gets_no_rsi_trade() -> None:
    """Prices that do not move for the first 60 bars: the RSI of a window from the first bar
    has no gain and no loss (TA-Lib gives 0, far below the oversold level), but the brain holds
    while the price has not moved. Neither engine may buy before the price moves."""
    rng = np.random.default_rng(7)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.002, 300)))
    close[:60] = 100.0
    start = datetime(2024, 3, 1, tzinfo=UTC)
    bars = [
        Bar("X", start + timedelta(minutes=i), _d(c), _d(c), _d(c), _d(c), _d(1))
        for i, c in enumerate(close)
    ]
    agent = strategy_agent("rsi", {"period": 2, "oversold": 30, "overbought": 70}, symbols=["X"])
    config = BacktestConfig(data={"X": bars}, agents=[agent])
    fast, exact = run_fast(config), run_backtest(config)
    assert differences(fast, exact) == []
    assert exact.trades and exact.trades[0].time > start + timedelta(minutes=60)
