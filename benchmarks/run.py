"""Benchmarks of the foundation, each against a peer measured in the same process.

Run: `make bench` (or `.venv/bin/python benchmarks/run.py [--bars N] [--repeat R]`).

1. Kernel replay: ticks/s of the full kernel (risk, broker, ledger, SQLite store) over the
   shipped real data, against a bare Python loop that trades the same RSI signals all-in over the
   same closes (no risk, no store): the cost of the kernel's guarantees per tick.
2. Ledger: fills/s of Ledger.apply in memory, against the same fills committed to SQLite (one
   transaction per fill, synchronous=FULL): the cost of durability per fill.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np

from phantomex.brains.indicators import rsi
from phantomex.broker.paper import PaperBroker
from phantomex.domain.agent import Agent, AgentSpec
from phantomex.domain.models import Deposit, Fill, Side
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.ledger.ledger import Ledger
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.store.repo import Store


def median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def kernel_replay(bars: int, symbols: list[str]) -> Callable[[], None]:
    data = {s: b[:bars] for s, b in load_dataset("demo", symbols).items()}

    def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"sqlite:///{Path(tmp) / 'bench.db'}")
            feed = ReplayFeed(data, speed=0, warmup_bars=0)
            kernel = Kernel(
                store, feed, PaperBroker(), config=KernelConfig(persist_snapshots=False)
            )
            kernel.load()
            risk = RiskProfile(
                cooldown_seconds=0,
                max_allocation_pct=Decimal(100),
                max_position_pct=Decimal(100),
                stop_loss_pct=None,
                take_profit_pct=None,
                daily_loss_limit_pct=None,
                max_drawdown_pct=None,
            )
            kernel.create_agent(AgentSpec(name="rsi", brain="rsi", symbols=symbols, risk=risk))
            asyncio.run(kernel.run())
            store.close()

    return run


def bare_rsi_loop(bars: int, symbols: list[str]) -> Callable[[], None]:
    data = load_dataset("demo", symbols)
    closes = {s: np.array([float(b.close) for b in data[s][:bars]]) for s in symbols}

    def run() -> None:
        for s in symbols:
            signal = rsi(closes[s], 14)
            cash, qty = 10_000.0, 0.0
            for t in range(len(signal)):
                price = closes[s][t]
                if qty == 0 and signal[t] < 30:
                    qty, cash = cash / (price * 1.001), 0.0
                elif qty > 0 and signal[t] > 70:
                    cash, qty = qty * price * 0.999, 0.0

    return run


def ledger_fills(n: int, durable: bool) -> Callable[[], None]:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)

    def run() -> None:
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"sqlite:///{Path(tmp) / 'l.db'}") if durable else None
            ledger = Ledger(on_commit=store.commit_entry if store else None)
            agent = Agent("a", AgentSpec(name="a", brain="rsi", symbols=["BTC"]), t0)
            dep = Deposit("a", Decimal(10**9), t0, "dep", initial=True)
            persist = (lambda w: store.add_agent(agent, dep, w)) if store else None
            ledger.open_wallet(dep, persist=persist)
            for i in range(n):
                side = Side.BUY if i % 2 == 0 else Side.SELL
                ledger.apply(
                    Fill(
                        "a",
                        "BTC",
                        side,
                        Decimal("0.5"),
                        Decimal("30000.12"),
                        Decimal("15.00006"),
                        t0 + timedelta(seconds=i),
                        f"k{i}",
                    )
                )
            if store:
                store.close()

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bars", type=int, default=3000)
    parser.add_argument("--fills", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    symbols = ["BTC", "ETH", "SOL"]

    k = median_time(kernel_replay(args.bars, symbols), args.repeat)
    b = median_time(bare_rsi_loop(args.bars, symbols), args.repeat)
    mem = median_time(ledger_fills(args.fills, durable=False), args.repeat)
    disk = median_time(ledger_fills(args.fills, durable=True), args.repeat)
    print(f"median of {args.repeat} runs")
    print("| benchmark | PhantomEx | peer | ratio |")
    print("|---|---:|---:|---:|")
    print(
        f"| replay, {len(symbols)} symbols x {args.bars} real 1m bars, 1 RSI agent "
        f"(ticks/s) | {args.bars / k:,.0f} | bare RSI loop {args.bars / b:,.0f} | "
        f"{b / k:.4f} |"
    )
    print(
        f"| Ledger.apply, {args.fills} fills (fills/s) | SQLite FULL {args.fills / disk:,.0f} "
        f"| in memory {args.fills / mem:,.0f} | {mem / disk:.4f} |"
    )


if __name__ == "__main__":
    main()
