"""PhantomEx against backtesting.py, backtrader and vectorbt on the reference configuration of
../shared/benchmarks/backtest-spec.md, all engines in one script run.

Run: `make bench` (or `.venv/bin/python benchmarks/peers.py [--sizes 10000,100000,1000000]
[--repeat 3] [--budget 120]`). Writes benchmarks/results/peers.md and prints it.

The configuration: SMA cross (10/30) and RSI (14, 30/70) on closes, signal on bar t's close, a
market order filled at bar t+1's open, long only, all-in (qty = cash / (open x 1.001)), all-out,
0.1 % fee per side, 10,000 starting cash, final equity = cash + qty x last close. Data: seeded
geometric random walks of 1-minute bars on a 1/64 price grid (moving averages exact in floating
point) and the shipped real BTC bars.

How each engine is set up:
- PhantomEx: ``run_backtest`` (the code path of ``phantomex backtest``) with ``sma_cross`` /
  ``rsi``: the live kernel, broker, risk engine and ledger on the in-memory store; Decimal money;
  the bars as columns (``BarColumns``, built untimed as backtesting.py's DataFrame is).
- backtesting.py: ``FractionalBacktest`` (its documented price scaling) with a unit of 1e-12, so
  whole-unit sizing rounds all-in quantities by < 1e-12 relative; ``size`` just below 1 (all
  the cash, commission included); signals precomputed with numpy in ``init``.
- backtrader: cheat-on-open (the order is sized at the next bar's open, where it fills),
  fractional sizes (1e-14 below all-in, or its float check of the cost rejects the order),
  signals fed as an extra data line (its order, broker and bar loop are measured, not its
  indicators).
- vectorbt: ``Portfolio.from_signals`` with the signals shifted one bar, ``price=open``,
  ``size=inf`` (all-in, fee included), ``fees=0.001``, on a tz-naive ``DatetimeIndex`` (UTC
  wall times) as its documentation's examples use: with a timezone-aware index about 95 % of
  its time goes on pandas converting every timestamp to an object inside ``ArrayWrapper``.
- numpy loop: TA-Lib signals, then a plain Python loop over every bar (lists, floats) doing the
  all-in / all-out bookkeeping: the floor of what any engine visiting every bar costs.

The machine is shared (2 cores, other jobs running): absolute figures move from run to run, the
ratios between engines measured in the same script run are what to compare.

Bars per second: the median over ``--repeat`` runs of bars / seconds of the engine's own run
(building its input from arrays is not timed; every engine runs once on small data first, so
vectorbt's JIT compilation is not timed either). An engine whose speed at a smaller size
predicts more than ``--budget`` seconds per run is not run at the larger size (the table says
so); an engine's repeats stop once one run takes longer than the budget.

Agreement: every engine's trades (time, side, price) against PhantomEx's and final equity within
1e-6 relative. On long random walks the SMA strategy makes so many round trips that equity
decays to dust (0.2 % fees per round trip); an engine that stops trading there (its minimum
order size) is compared up to its last trade, and the table says so.
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import talib

from phantomex.domain.models import Bar
from phantomex.market.columns import BarColumns
from phantomex.market.loaders import load_dataset
from phantomex.research.backtest import run_backtest
from phantomex.research.spec import BacktestConfig, strategy_agent

FEE = 0.001
CASH = 10_000.0
RTOL = 1e-6
DUST = 1e-3  # equity below this is dust: an engine with a minimum order size stops there
RESULTS = Path(__file__).parent / "results" / "peers.md"
REFERENCE = "PhantomEx exact"
STRATEGIES = ("sma_cross", "rsi")

Trade = tuple[datetime, str, float]  # fill time (bar open), side, price

NOTES = """\
- Setup: see "Engines" above and the docstring of benchmarks/peers.py. "PhantomEx exact" runs
  `run_backtest` (the code path of `phantomex backtest`): the live kernel, broker, risk engine
  and ledger on an in-memory store, Decimal money, event skipping, on the bars as columns
  (`BarColumns`, built untimed as the peers' DataFrames and arrays are); it is the reference
  every other engine is compared with. "PhantomEx fast" is the research engine
  (`phantomex.research.fast`, `backtest --engine fast`): one compiled loop over every bar (numba,
  ahead of time when `make` built it: the run says which), the
  brains' own signal functions, TA-Lib-identical windowed indicators, proven identical to the
  exact kernel by tests/test_research_fast_identity.py. Its timed run computes its own
  indicators; it returns the final equity and builds trade records and metrics on first use
  (as vectorbt's `Portfolio` does); "PhantomEx fast + report" times those too. The peers
  trade on signals precomputed with numpy (TA-Lib's SMA and RSI) before their clock starts.
- Agreement: trade by trade (time, side, price within 1e-6) and final equity (1e-6 relative)
  against PhantomEx exact; `-` where it was not run at that size.
- Dust: 0.2 % of fees per round trip decays equity towards zero on long random walks (SMA cross
  makes thousands of round trips); backtesting.py sizes in whole units of 1e-12 and stops when
  equity cannot buy one, and float engines drift apart once equity is dust. Such rows are
  compared up to the engine's last trade.
- The machine is shared (2 cores, other jobs running; the load average is in the header):
  compare the ratios between engines of one run, not absolute figures across runs.
"""


@dataclass
class Market:
    """One data set as arrays (for the peers) and as bars (for PhantomEx)."""

    name: str
    times: pd.DatetimeIndex  # bar open times
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    bars: list[Bar]
    _columns: BarColumns | None = None

    @property
    def size(self) -> int:
        return len(self.close)

    @property
    def columns(self) -> BarColumns:
        """The bars as columns (what ``backtest --engine fast`` loads), built once, untimed."""
        if self._columns is None:
            self._columns = BarColumns.from_bars("BTC", self.bars)
        return self._columns

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "Open": self.open,
                "High": self.high,
                "Low": self.low,
                "Close": self.close,
                "Volume": np.ones(self.size),
            },
            index=self.times,
        )


@dataclass
class Outcome:
    trades: list[Trade]
    equity: float
    seconds: float


def random_walk(n: int, seed: int) -> Market:
    """Seeded geometric Brownian motion, 1-minute bars, prices on a 1/64 grid."""
    rng = np.random.default_rng(seed)
    grid = 64.0
    close = np.round(100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n))) * grid) / grid
    close = np.maximum(close, 1 / grid)
    opening = np.empty(n)
    opening[0] = 100.0
    opening[1:] = np.maximum(
        np.round(close[:-1] * np.exp(rng.normal(0.0, 0.0002, n - 1)) * grid) / grid, 1 / grid
    )
    wick = np.abs(rng.normal(0.0, 0.0005, n))
    high = np.ceil(np.maximum(opening, close) * (1 + wick) * grid) / grid
    low = np.maximum(np.floor(np.minimum(opening, close) * (1 - wick) * grid) / grid, 1 / grid)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    times = pd.date_range(start, periods=n, freq="1min")
    step = timedelta(minutes=1)
    bars = [
        Bar("BTC", start + i * step, Decimal(o), Decimal(h), Decimal(lo), Decimal(c), Decimal(1))
        for i, (o, h, lo, c) in enumerate(
            zip(opening.tolist(), high.tolist(), low.tolist(), close.tolist(), strict=True)
        )
    ]
    return Market(f"random walk {n:,}", times, opening, high, low, close, bars)


def real_btc() -> Market:
    bars = load_dataset("demo", ["BTC"])["BTC"]
    arr = {k: np.array([float(getattr(b, k)) for b in bars]) for k in ("open", "high", "low")}
    close = np.array([float(b.close) for b in bars])
    times = pd.DatetimeIndex([b.time for b in bars])
    return Market(
        f"real BTC 1m ({len(bars):,})", times, arr["open"], arr["high"], arr["low"], close, bars
    )


def signals(strategy: str, close: np.ndarray) -> np.ndarray:
    """+1 buy / -1 sell / 0 at each bar's close (before the position filter)."""
    out = np.zeros(close.size, dtype=np.int8)
    if strategy == "sma_cross":
        fast, slow = talib.SMA(close, 10), talib.SMA(close, 30)
        d = fast - slow
        valid = np.zeros(close.size, dtype=bool)
        valid[1:] = np.isfinite(d[:-1])
        up = np.zeros(close.size, dtype=bool)
        down = np.zeros(close.size, dtype=bool)
        up[1:] = (d[1:] > 0) & (d[:-1] <= 0)
        down[1:] = (d[1:] < 0) & (d[:-1] >= 0)
        out[valid & up] = 1
        out[valid & down] = -1
    else:
        r = talib.RSI(close, 14)
        with np.errstate(invalid="ignore"):
            out[r < 30] = 1
            out[r > 70] = -1
    return out


# -- the engines ----------------------------------------------------------------------------------
def run_phantomex(market: Market, strategy: str) -> Outcome:
    """The exact kernel on the bars as columns (built beforehand, untimed, as backtesting.py's
    DataFrame): the kernel reads the arrays and builds a ``Bar`` only for the bars it hands on."""
    config = _config(market, strategy)
    began = time.perf_counter()
    result = run_backtest(config)
    seconds = time.perf_counter() - began
    trades = [(t.time, t.side, float(t.price)) for t in result.trades]
    return Outcome(trades, float(result.final_equity), seconds)


def _config(market: Market, strategy: str) -> BacktestConfig:
    params: dict[str, Any] = {"fast": 10, "slow": 30} if strategy == "sma_cross" else {}
    spec = strategy_agent(strategy, params, symbols=["BTC"])
    return BacktestConfig(data={"BTC": market.columns}, agents=[spec])


def run_phantomex_fast(market: Market, strategy: str) -> Outcome:
    """The research engine in-process, as ``backtest --engine fast`` runs it: on the bars as
    columns (built beforehand, untimed, as the peers' arrays), the price guard's check, the
    indicators, the compiled loop and the final equity. Its trade records and metrics are built
    on first use, after the clock stops, as vectorbt's records and statistics are."""
    return _fast(market, strategy, report=False)


def run_phantomex_fast_report(market: Market, strategy: str) -> Outcome:
    """:func:`run_phantomex_fast` with its trade records (exact Decimal prices) and every
    metric built inside the clock: what a report costs."""
    return _fast(market, strategy, report=True)


def _fast(market: Market, strategy: str, *, report: bool) -> Outcome:
    from phantomex.research.fast import run_fast

    config = _config(market, strategy)
    began = time.perf_counter()
    result = run_fast(config)
    equity = float(result.final_equity)
    if report:
        assert result.trades is not None and result.metrics["bars"] == market.size
    seconds = time.perf_counter() - began
    trades = [(t.time, t.side, float(t.price)) for t in result.trades]
    return Outcome(trades, equity, seconds)


def run_phantomex_fast_loop(market: Market, strategy: str) -> Outcome:
    """The research engine's compiled loop alone, on arrays built beforehand (untimed, as the
    peers' inputs): indicators, decisions, fills, risk, equity per bar."""
    from phantomex.research.fast import prepare, simulate

    config = _config(market, strategy)
    series = prepare(config)
    spec = config.agents[0]
    began = time.perf_counter()
    (run,) = simulate(
        series, spec.brain, [spec.params], risk=spec.risk, cash=spec.allowance,
        fee_bps=config.fee_bps, slippage_bps=config.slippage_bps, fill=config.fill,
        interval_seconds=spec.interval_seconds,
    )  # fmt: skip
    seconds = time.perf_counter() - began
    trades = [
        (market.times[i].to_pydatetime(), "buy" if side == 1 else "sell", float(price))
        for i, side, price in zip(run.bar.tolist(), run.side.tolist(), run.price.tolist(),
                                  strict=True)
    ]  # fmt: skip
    return Outcome(trades, float(run.equity[-1]), seconds)


_CSV: dict[str, Path] = {}
_STORED: dict[str, Path] = {}
#: (engine, data, strategy) -> (wall, CPU seconds) of each whole-process run of the CLI
CLI_CPU: dict[tuple[str, str, str], list[tuple[float, float]]] = {}
CLI = "phantomex backtest --engine fast"
CLI_DATASET = "phantomex backtest --engine fast --dataset"


def run_cli_fast(market: Market, strategy: str) -> Outcome:
    """``phantomex backtest --engine fast --json`` on a CSV file as a whole process (start-up,
    imports, reading and validating the CSV file, the run, the JSON); the file is written
    beforehand, untimed. The shipped real data is read as the shipped dataset ``demo``."""
    if market.name.startswith("real BTC"):
        source = ["--dataset", "demo", "--symbols", "BTC"]
    else:
        path = _CSV.get(market.name)
        if path is None:
            path = _csv_of(market)
        source = ["--data", f"BTC={path}"]
    return _run_cli(CLI, market, strategy, source, os.environ.copy())


def run_cli_fast_dataset(market: Market, strategy: str) -> Outcome:
    """``phantomex backtest --engine fast --dataset bench --json`` as a whole process (start-up,
    imports, reading the stored dataset, the run, the JSON): the bars are stored beforehand,
    untimed, with the product's own import (``DataStore.save``, what ``phantomex data import``
    calls, which also writes the file's column cache that the run reads) in a data directory of
    their own, as backtesting.py's DataFrame is built untimed."""
    from phantomex.market.datastore import DataStore

    data_dir = _STORED.get(market.name)
    if data_dir is None:
        data_dir = Path(tempfile.mkdtemp())
        DataStore(data_dir / "datasets").save("bench", "BTC", "1m", market.bars, "benchmark")
        _STORED[market.name] = data_dir
    env = {**os.environ, "PHANTOMEX_DATA_DIR": str(data_dir)}
    return _run_cli(CLI_DATASET, market, strategy, ["--dataset", "bench"], env)


def _csv_of(market: Market) -> Path:
    """The market as a CSV file (ISO times, shortest round-tripping floats), written once."""
    path = Path(tempfile.mkdtemp()) / "BTC.csv"
    frame = market.frame()
    frame.index = frame.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    frame.to_csv(path, index_label="time", float_format="%.17g")
    _CSV[market.name] = path
    return path


def _run_cli(
    engine: str, market: Market, strategy: str, source: list[str], env: dict[str, str]
) -> Outcome:
    """One whole-process run of the CLI: wall time (returned) and CPU time (kept in
    :data:`CLI_CPU`), the trades and final equity of its JSON."""
    import json
    import subprocess

    # as an installed package runs (pip compiles the bytecode when it installs): a
    # PYTHONDONTWRITEBYTECODE of the environment would have every run compile the modules again
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    params = ["--param", "fast=10", "--param", "slow=30"] if strategy == "sma_cross" else []
    cmd = [sys.executable, "-m", "phantomex.cli.main", "backtest", *source,
           "--strategy", strategy, *params, "--engine", "fast", "--json"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    seconds = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    CLI_CPU.setdefault((engine, market.name, strategy), []).append((seconds, cpu))
    out = json.loads(done.stdout)
    assert out["engine"] == "fast", out.get("engine_note")
    trades = [
        (datetime.fromisoformat(t["time"].replace("Z", "+00:00")), t["side"], float(t["price"]))
        for t in out["trades"]
    ]
    return Outcome(trades, float(out["final_equity"]), seconds)


def run_backtesting_py(market: Market, strategy: str) -> Outcome:
    import backtesting.backtesting
    from backtesting import Strategy
    from backtesting.lib import FractionalBacktest

    backtesting.backtesting._tqdm = lambda seq, **_: seq  # no progress bar
    sig = signals(strategy, market.close)

    class Signals(Strategy):  # type: ignore[misc]
        def init(self) -> None:
            self.sig = self.I(lambda: sig, name="signal", overlay=False)

        def next(self) -> None:
            s = self.sig[-1]
            if s == 1 and not self.position:
                self.buy(size=0.9999999999999999)
            elif s == -1 and self.position:
                self.position.close()

    frame = market.frame()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        began = time.perf_counter()
        bt = FractionalBacktest(frame, Signals, cash=CASH, commission=FEE, fractional_unit=1e-12)
        stats = bt.run()
        seconds = time.perf_counter() - began
    trades: list[Trade] = []
    for row in stats["_trades"].itertuples():
        trades.append((row.EntryTime.to_pydatetime(), "buy", float(row.EntryPrice)))
        trades.append((row.ExitTime.to_pydatetime(), "sell", float(row.ExitPrice)))
    for open_trade in stats["_strategy"].trades:  # still open at the end (scaled prices)
        entry = open_trade.entry_time.to_pydatetime()
        trades.append((entry, "buy", float(open_trade.entry_price) / 1e-12))
    trades.sort(key=lambda t: t[0])
    return Outcome(trades, float(stats["Equity Final [$]"]), seconds)


def run_backtrader(market: Market, strategy: str) -> Outcome:
    import backtrader as bt

    frame = market.frame()
    frame["signal"] = signals(strategy, market.close).astype(float)
    frame.index = frame.index.tz_localize(None)

    class Feed(bt.feeds.PandasData):  # type: ignore[misc]
        lines = ("signal",)
        params = (("signal", -1),)

    fills: list[Trade] = []

    class Signals(bt.Strategy):  # type: ignore[misc]
        def __init__(self) -> None:
            self.want = 0

        def next(self) -> None:
            self.want = int(self.data.signal[0])

        def next_open(self) -> None:
            if self.want == 1 and not self.position:
                price = self.data.open[0]
                # 1e-14 below all-in: the broker's float check of size x price x 1.001 <= cash
                self.buy(size=self.broker.getcash() / (price * (1 + FEE)) * (1 - 1e-14))
            elif self.want == -1 and self.position:
                self.close()
            self.want = 0

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                when = bt.num2date(order.executed.dt).replace(tzinfo=UTC)
                side = "buy" if order.isbuy() else "sell"
                fills.append((when, side, float(order.executed.price)))

    began = time.perf_counter()
    cerebro = bt.Cerebro(cheat_on_open=True, stdstats=False)
    cerebro.adddata(Feed(dataname=frame))
    cerebro.addstrategy(Signals)
    cerebro.broker.setcash(CASH)
    cerebro.broker.setcommission(commission=FEE)
    cerebro.broker.set_checksubmit(False)
    cerebro.run()
    seconds = time.perf_counter() - began
    return Outcome(fills, float(cerebro.broker.getvalue()), seconds)


def run_vectorbt(market: Market, strategy: str) -> Outcome:
    import vectorbt as vbt

    sig = signals(strategy, market.close)
    entries = np.zeros(market.size, dtype=bool)
    exits = np.zeros(market.size, dtype=bool)
    entries[1:] = sig[:-1] == 1  # decided on t's close, filled at t+1's open
    exits[1:] = sig[:-1] == -1
    naive = market.times.tz_localize(None)  # as vectorbt's documentation sets it up
    close = pd.Series(market.close, index=naive)
    began = time.perf_counter()
    pf = vbt.Portfolio.from_signals(
        close,
        entries,
        exits,
        price=market.open,
        size=np.inf,
        fees=FEE,
        init_cash=CASH,
        freq="1min",
    )
    equity = float(pf.final_value())
    seconds = time.perf_counter() - began
    orders = pf.orders.values
    trades = [
        (market.times[int(i)].to_pydatetime(), "buy" if side == 0 else "sell", float(price))
        for i, side, price in zip(orders["idx"], orders["side"], orders["price"], strict=True)
    ]
    return Outcome(trades, equity, seconds)


def run_numpy_loop(market: Market, strategy: str) -> Outcome:
    """TA-Lib signals, then a Python loop over every bar: the reference configuration's
    bookkeeping with nothing else."""
    began = time.perf_counter()
    sig = signals(strategy, market.close).tolist()
    opening = market.open.tolist()
    cash, qty, want = CASH, 0.0, 0
    fills: list[tuple[int, str, float]] = []
    for i in range(len(opening)):
        if want == 1 and qty == 0.0:
            price = opening[i]
            qty, cash = cash / (price * (1 + FEE)), 0.0
            fills.append((i, "buy", price))
        elif want == -1 and qty > 0.0:
            price = opening[i]
            cash, qty = qty * price * (1 - FEE), 0.0
            fills.append((i, "sell", price))
        want = sig[i]
    equity = cash + qty * float(market.close[-1])
    seconds = time.perf_counter() - began
    trades = [(market.times[i].to_pydatetime(), side, price) for i, side, price in fills]
    return Outcome(trades, equity, seconds)


ENGINES: dict[str, Callable[[Market, str], Outcome]] = {
    "PhantomEx exact": run_phantomex,
    "PhantomEx fast": run_phantomex_fast,
    "PhantomEx fast + report": run_phantomex_fast_report,
    "PhantomEx fast loop": run_phantomex_fast_loop,
    CLI: run_cli_fast,
    CLI_DATASET: run_cli_fast_dataset,
    "backtesting.py": run_backtesting_py,
    "backtrader": run_backtrader,
    "vectorbt": run_vectorbt,
    "numpy loop": run_numpy_loop,
}


# -- comparing ------------------------------------------------------------------------------------
def cash_after(trades: list[Trade]) -> float:
    """The reference configuration's equity after ``trades`` (all-in buys, all-out sells), at
    the last trade's price."""
    cash, qty = CASH, 0.0
    for _, side, price in trades:
        if side == "buy":
            qty, cash = cash / (price * (1 + FEE)), 0.0
        else:
            cash, qty = qty * price * (1 - FEE), 0.0
    return cash + qty * (trades[-1][2] if trades else 0.0)


def agreement(reference: Outcome, other: Outcome) -> str:
    """How ``other`` agrees with PhantomEx: trade by trade, then final equity (1e-6 relative)."""
    ours, theirs = reference.trades, other.trades
    for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a[0] != b[0] or a[1] != b[1] or not math.isclose(a[2], b[2], rel_tol=RTOL):
            worth = cash_after(ours[:i])
            if worth < DUST:
                return f"same first {i:,} trades, until equity was dust ({worth:.2g})"
            return f"differs at trade {i + 1}: {a} vs {b}"
    if len(theirs) < len(ours):
        return f"same first {len(theirs):,} trades, then stops ({len(ours):,}; dust)"
    if len(theirs) > len(ours):
        return f"{len(theirs) - len(ours)} extra trades"
    if not math.isclose(reference.equity, other.equity, rel_tol=RTOL, abs_tol=DUST * RTOL):
        return f"same {len(ours):,} trades; equity {other.equity:.10g} vs {reference.equity:.10g}"
    return f"identical ({len(ours):,} trades, equity)"


def measure(
    markets: list[Market], repeat: int, budget: float, engines: list[str]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    stopped: dict[tuple[str, str], str] = {}
    speed_seen: dict[tuple[str, str], float] = {}
    warm = random_walk(500, seed=1)
    for engine in engines:
        for strategy in STRATEGIES:
            ENGINES[engine](warm, strategy)
    for market in markets:
        for strategy in STRATEGIES:
            outcomes: dict[str, Outcome] = {}
            speeds: dict[str, float] = {}
            active = []
            for engine in engines:
                key = (engine, strategy)
                if key in speed_seen and market.size / speed_seen[key] > budget:
                    stopped.setdefault(key, market.name)
                else:
                    active.append(engine)
            # Round robin: each repetition runs every engine once, so a change in the machine's
            # load during the run weighs on all engines alike.
            runs: dict[str, list[Outcome]] = {engine: [] for engine in active}
            for _ in range(repeat):
                for engine in active:
                    if runs[engine] and runs[engine][-1].seconds > budget:
                        continue
                    runs[engine].append(ENGINES[engine](market, strategy))
            for engine in active:
                done = runs[engine]
                outcomes[engine] = done[0]
                speeds[engine] = market.size / statistics.median(r.seconds for r in done)
                key = (engine, strategy)
                speed_seen[key] = min(speeds[engine], speed_seen.get(key, math.inf))
                print(
                    f"{market.name:>24} {strategy:>9} {engine:>15}: {speeds[engine]:>12,.0f} bars/s"
                    f" ({len(done)} runs, {len(done[0].trades):,} trades,"
                    f" equity {done[0].equity:.8g})",
                    file=sys.stderr,
                    flush=True,
                )
            for engine in engines:
                if engine not in speeds:
                    continue
                row = {
                    "data": market.name,
                    "strategy": strategy,
                    "engine": engine,
                    "bars_per_s": speeds[engine],
                    "vs_backtesting": _ratio(speeds, engine, "backtesting.py"),
                    "vs_vectorbt": _ratio(speeds, engine, "vectorbt"),
                    "trades": len(outcomes[engine].trades),
                    "equity": outcomes[engine].equity,
                    "agreement": "reference"
                    if engine == REFERENCE
                    else agreement(outcomes[REFERENCE], outcomes[engine])
                    if REFERENCE in outcomes
                    else "-",
                }
                rows.append(row)
    for (engine, strategy), where in stopped.items():
        rows.append(
            {"note": f"{engine} ({strategy}) at {where}: over {budget:g} s per run predicted"}
        )
    return rows


def _ratio(speeds: dict[str, float], engine: str, peer: str) -> float | None:
    return speeds[engine] / speeds[peer] if peer in speeds else None


#: How each engine is set up (the docstring has the details), with the package it runs.
SETUPS: dict[str, tuple[str, str]] = {
    "PhantomEx fast": (
        "numba",
        "research engine in-process: `run_fast` on bars as columns (`BarColumns`, built "
        "untimed as the peers' arrays): guard check, indicators, the compiled loop, the final "
        "equity (trade records and metrics are built on first use, as vectorbt's are)",
    ),
    "PhantomEx fast + report": (
        "numba",
        "`PhantomEx fast` with its trade records (exact Decimal prices) and every metric built "
        "inside the clock",
    ),
    "PhantomEx fast loop": (
        "numba",
        "research engine's compiled loop alone (`simulate`), arrays built beforehand untimed",
    ),
    CLI: (
        "phantomex",
        "the CLI as a whole process on a CSV file (start-up, imports, reading the file, run, "
        "JSON; the real data as the shipped dataset), wall time; PhantomEx's bytecode written "
        "beforehand, as an install does",
    ),
    CLI_DATASET: (
        "phantomex",
        "the CLI as a whole process on a stored Parquet dataset (imported beforehand, untimed, "
        "with `DataStore.save` as `phantomex data import` does, which writes the file's column "
        "cache), wall time",
    ),
    "PhantomEx exact": (
        "phantomex",
        "exact kernel: `run_backtest` (live kernel, broker, risk engine, ledger; Decimal money; "
        "event skipping) on the bars as columns, in-process",
    ),
    "backtesting.py": (
        "backtesting",
        "`FractionalBacktest`, unit 1e-12, size just below 1, TA-Lib signals in `init`",
    ),
    "backtrader": ("backtrader", "cheat-on-open, fractional sizes, signals as a data line"),
    "vectorbt": (
        "vectorbt",
        "`Portfolio.from_signals`, signals shifted one bar, price=open, size=inf, fees, "
        "tz-naive index (as its documentation); TA-Lib signals computed before the clock starts",
    ),
    "numpy loop": ("numpy", "TA-Lib signals + a Python loop over every bar (floats)"),
}


def setup_lines(engines: list[str]) -> list[str]:
    """One line per engine: its version and set-up."""
    from importlib.metadata import PackageNotFoundError, version

    lines = ["Engines (versions as installed):", ""]
    for engine in engines:
        package, how = SETUPS[engine]
        try:
            ver = version(package)
        except PackageNotFoundError:
            ver = "?"
        lines.append(f"- {engine} ({package} {ver}): {how}")
    if any("fast" in engine for engine in engines):
        from phantomex.research.fast import compiled

        how = "ahead of time (numba pycc, `make`)" if compiled.ACTIVE.ahead_of_time else "by numba"
        lines += ["", f"The research engine's loop was compiled {how}."]
    return lines


def table(rows: list[dict[str, Any]], header: str) -> str:
    lines = [
        header,
        "",
        "| data | strategy | engine | bars/s (median) | vs backtesting.py | vs vectorbt | trades "
        "| final equity | agreement with PhantomEx |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    notes = []
    for r in rows:
        if "note" in r:
            notes.append(f"- not run: {r['note']}")
            continue
        ratio_bt = f"{r['vs_backtesting']:.3g}" if r["vs_backtesting"] is not None else "-"
        ratio_vbt = f"{r['vs_vectorbt']:.3g}" if r["vs_vectorbt"] is not None else "-"
        lines.append(
            f"| {r['data']} | {r['strategy']} | {r['engine']} | {r['bars_per_s']:,.0f} | "
            f"{ratio_bt} | {ratio_vbt} | {r['trades']:,} | {r['equity']:.10g} | {r['agreement']} |"
        )
    for (engine, data, strategy), runs in CLI_CPU.items():
        if data == "random walk 500":
            continue  # the warm-up
        wall = statistics.median(w for w, _ in runs)
        cpu = statistics.median(c for _, c in runs)
        notes.append(
            f"- `{engine}` on {data}, {strategy}: {wall:.2f} s wall, "
            f"{cpu:.2f} s CPU (user + system; the rest of the wall time it waited for a core)"
        )
    return "\n".join([*lines, "", *notes, "", NOTES])


def _compile_bytecode() -> None:
    """Write PhantomEx's bytecode before the whole-process runs, as installing a package does
    (with ``PYTHONDONTWRITEBYTECODE`` set, each run would otherwise compile its modules)."""
    import compileall

    import phantomex

    compileall.compile_dir(Path(phantomex.__file__).parent, quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--budget", type=float, default=120.0, help="seconds per run, at most")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--no-real", action="store_true", help="skip the shipped real data")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    markets = [random_walk(n, seed=42) for n in sizes]
    if not args.no_real:
        markets.append(real_btc())
    engines = [e for e in args.engines.split(",") if e]
    if any(e.startswith("phantomex ") for e in engines):
        _compile_bytecode()
    rows = measure(markets, args.repeat, args.budget, engines)
    header = (
        "# PhantomEx against its peers (reference configuration of "
        "shared/benchmarks/backtest-spec.md)\n\n"
        f"`python benchmarks/peers.py --sizes {args.sizes} --repeat {args.repeat} "
        f"--budget {args.budget:g}`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; "
        f"medians of up to {args.repeat} runs per cell, all engines in one script run."
        f" Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average"
        f" {os.getloadavg()[0]:.1f} at the end (shared: compare the ratios"
        " between engines of one run, not absolute figures across runs).\n\n"
        + "\n".join(setup_lines(engines))
    )
    text = table(rows, header)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
