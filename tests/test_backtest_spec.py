"""The kernel reproduces ../shared/benchmarks/backtest-spec.md on real bars: signals on bar t's
close fill at bar t+1's open, all-in and all-out, 0.1 % fee, unrounded quantities."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from phantomex.broker.paper import PaperBroker, PaperBrokerConfig
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Bar
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.store.repo import Store

FEE = Decimal("0.001")
CASH = Decimal(10_000)
SPEC_RISK = RiskProfile(
    max_allocation_pct=Decimal(100),
    max_position_pct=Decimal(100),
    stop_loss_pct=None,
    take_profit_pct=None,
    daily_loss_limit_pct=None,
    max_drawdown_pct=None,
    cooldown_seconds=0,
    min_order_notional=Decimal(0),
)


def reference(bars: list[Bar], signal: list[int]) -> tuple[list[tuple], Decimal]:
    """The spec's engine: signal[t] = +1 buy / -1 sell at t's close, fill at t+1's open."""
    cash, qty, trades = CASH, Decimal(0), []
    for t in range(len(bars) - 1):
        p = bars[t + 1].open
        if signal[t] == 1 and qty == 0:
            qty = cash / (p * (1 + FEE))
            cash = Decimal(0)
            trades.append(("buy", bars[t + 1].time, p))
        elif signal[t] == -1 and qty > 0:
            cash += qty * p - qty * p * FEE
            qty = Decimal(0)
            trades.append(("sell", bars[t + 1].time, p))
    return trades, cash + qty * bars[-1].close


def sma_cross_signal(closes: np.ndarray, fast: int = 10, slow: int = 30) -> list[int]:
    def sma(n: int) -> np.ndarray:
        out = np.full(len(closes), np.nan)
        for t in range(n - 1, len(closes)):
            out[t] = closes[t - n + 1 : t + 1].mean()
        return out

    f, s = sma(fast), sma(slow)
    sig = [0] * len(closes)
    for t in range(1, len(closes)):
        if np.isnan(s[t - 1]):
            continue
        if f[t] > s[t] and f[t - 1] <= s[t - 1]:
            sig[t] = 1
        elif f[t] < s[t] and f[t - 1] >= s[t - 1]:
            sig[t] = -1
    return sig


def run_kernel(tmp_path: Path, bars: list[Bar], brain: str, params: dict) -> tuple[list, Decimal]:
    store = Store(f"sqlite:///{tmp_path / f'{brain}.db'}")
    broker = PaperBroker(PaperBrokerConfig(fee_bps=Decimal(10), fill_timing="next_open"))
    feed = ReplayFeed({"BTC": bars}, speed=0)
    kernel = Kernel(
        store, feed, broker, config=KernelConfig(persist_snapshots=False, await_slow_brains=True)
    )
    kernel.load()
    spec = AgentSpec(
        name=brain,
        brain=brain,
        params=params,
        symbols=["BTC"],
        interval_seconds=60,
        allowance=CASH,
        risk=SPEC_RISK,
    )
    agent = kernel.create_agent(spec)
    asyncio.run(asyncio.wait_for(kernel.run(), 120))
    rows, _ = store.trades(agent.id, limit=10_000)
    trades = [(r["side"], r["time"], r["price"]) for r in reversed(rows)]
    equity = kernel.ledger.wallet(agent.id).equity({"BTC": bars[-1].close})
    assert kernel.audit() == []
    store.close()
    return trades, equity


@pytest.fixture(scope="module")
def bars() -> list[Bar]:
    return load_dataset("demo", ["BTC"])["BTC"][:2000]


def test_sma_cross_matches_the_reference_engine(tmp_path: Path, bars: list[Bar]) -> None:
    closes = np.array([float(b.close) for b in bars])
    want_trades, want_equity = reference(bars, sma_cross_signal(closes))
    got_trades, got_equity = run_kernel(
        tmp_path, bars, "momentum", {"fast": 10, "slow": 30, "ma": "sma"}
    )
    assert len(want_trades) > 20
    assert got_trades == want_trades
    assert abs(got_equity - want_equity) / want_equity < Decimal("1e-6")


def test_rsi_matches_the_reference_engine(tmp_path: Path, bars: list[Bar]) -> None:
    import talib

    closes = np.array([float(b.close) for b in bars])
    rsi = talib.RSI(closes, 14)
    signal = [1 if r < 30 else -1 if r > 70 else 0 for r in np.nan_to_num(rsi, nan=50.0)]
    want_trades, want_equity = reference(bars, signal)
    got_trades, got_equity = run_kernel(
        tmp_path, bars, "rsi", {"period": 14, "oversold": 30, "overbought": 70}
    )
    assert len(want_trades) > 10
    assert got_trades == want_trades
    assert abs(got_equity - want_equity) / want_equity < Decimal("1e-6")
