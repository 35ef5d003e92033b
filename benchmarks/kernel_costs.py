"""Where the exact kernel's time per visited tick goes, on the real BTC month (SMA cross 10/30,
as ``peers.py`` runs it): the Python calls it makes per visited tick, and what building each
per-trade object costs alone (with the field values of a real run).

Run from the repository root: ``.venv/bin/python benchmarks/kernel_costs.py``.
"""

from __future__ import annotations

import cProfile
import dataclasses
import gc
import pstats
import timeit
from typing import Any

from peers import real_btc

from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import Bar, Fill, Order, Snapshot, Wallet
from phantomex.research.backtest import run_backtest
from phantomex.research.spec import BacktestConfig, strategy_agent
from phantomex.risk.engine import Check

OBJECTS: tuple[type[Any], ...] = (Snapshot, Bar, Order, Fill, Wallet, DecisionRecord, Check)


def main() -> None:
    market = real_btc()
    config = BacktestConfig(
        data={"BTC": market.columns},
        agents=[strategy_agent("sma_cross", {"fast": 10, "slow": 30}, symbols=["BTC"])],
    )
    run_backtest(config)  # warm: imports and first calls
    profile = cProfile.Profile()
    result = profile.runcall(run_backtest, config)
    stats: Any = pstats.Stats(profile)
    visits = sum(
        row[1]
        for (path, _, name), row in stats.stats.items()
        if path.endswith("kernel/ticks.py") and name == "step"
    )
    print(f"{market.size:,} bars, {len(result.trades):,} trades, {visits:,} visited ticks")
    print(
        f"Python calls: {stats.total_calls:,} ({stats.total_calls / visits:.0f} per visited tick)"
    )
    samples = {type(o): o for o in gc.get_objects() if type(o) in OBJECTS}
    total = 0.0
    for cls in OBJECTS:
        sample = samples.get(cls)
        if sample is None:
            print(f"{cls.__name__:15s} no instance alive after the run")
            continue
        fields = {f.name: getattr(sample, f.name) for f in dataclasses.fields(cls) if f.init}
        runs = timeit.repeat(lambda c=cls, f=fields: c(**f), number=20_000, repeat=5)
        cost = min(runs) / 20_000 * 1e6
        total += cost
        print(f"{cls.__name__:15s} {cost:5.2f} µs to build ({len(fields)} fields)")
    print(f"one of each: {total:.1f} µs")


if __name__ == "__main__":
    main()
