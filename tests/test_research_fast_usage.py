"""Where the research engine is used: ``backtest --engine``, ``optimize`` trials (checked on
the exact kernel), and the fall-back to the exact kernel for what it cannot run."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from conftest import free_port, run_cli, server_env

from phantomex.market.loaders import load_dataset
from phantomex.research.fast import run_engine
from phantomex.research.optimize import Market, local_runner, make_windows, optimize, parse_space
from phantomex.research.spec import BacktestConfig, strategy_agent
from phantomex.store.repo import Store

START = datetime(2023, 4, 12, tzinfo=UTC)


def btc(minutes: int = 600) -> dict[str, list]:
    bars = load_dataset("demo", ["BTC"])["BTC"]
    return {"BTC": [b for b in bars if START <= b.time < START + timedelta(minutes=minutes)]}


def test_optimize_trials_run_on_the_research_engine_and_are_checked_on_the_exact_kernel() -> None:
    market = Market(data=btc(), strategy="rsi", fixed={"period": 7}, interval_seconds=60)
    (window,) = make_windows([b.time for b in btc()["BTC"]], split=0.7)
    with local_runner(market, 1) as run:
        result = optimize(
            market,
            parse_space(["oversold=15:40", "overbought=60:85"]),
            [window],
            runner=run,
            store=Store("sqlite://"),
            study="fast",
            trials=8,
        )
    (w,) = result.windows
    assert w.in_sample["engine"] == "fast" and w.out_of_sample["engine"] == "fast"
    assert w.exact_check["checked"] == 4  # the best and a sample of three others
    assert w.exact_check["differences"] == [] and result.errors == []
    assert result.to_json()["windows"][0]["exact_check"]["checked"] == 4


def test_what_the_research_engine_cannot_run_falls_back_to_the_exact_kernel_by_name() -> None:
    data = btc(120)
    spike = BacktestConfig(data=data, agents=[strategy_agent("spike_fade", symbols=["BTC"])])
    result = run_engine(spike, "fast")
    assert result.engine == "exact"
    assert result.engine_note and "spike_fade" in result.engine_note
    assert result.to_json()["engine_note"] == result.engine_note
    two = BacktestConfig(
        data=data,
        agents=[strategy_agent("rsi", symbols=["BTC"], name=n) for n in ("a", "b")],
    )
    assert "several agents" in (run_engine(two, "fast").engine_note or "")
    rsi = BacktestConfig(data=data, agents=[strategy_agent("rsi", symbols=["BTC"])])
    assert run_engine(rsi, "fast").engine == "fast"
    assert run_engine(rsi, "exact").engine == "exact"


def test_cli_backtest_says_which_engine_ran(tmp_path: Path) -> None:
    env = server_env(free_port(), tmp_path)
    common = ["backtest", "--dataset", "demo", "--symbols", "BTC", "--from", "2023-04-12",
              "--to", "2023-04-12", "--json"]  # fmt: skip
    out = {}
    for engine in ("fast", "exact", None):
        args = [*common, "--strategy", "rsi", *(["--engine", engine] if engine else [])]
        code, stdout, stderr = run_cli(*args, env=env, timeout=180)
        assert code == 0, stderr
        out[engine] = json.loads(stdout)
    assert out["fast"]["engine"] == "fast" and out["exact"]["engine"] == "exact"
    assert out[None]["engine"] == "exact"  # the default: the exact kernel
    fills = {e: [(t["time"], t["side"], t["price"]) for t in out[e]["trades"]] for e in out}
    assert fills["fast"] == fills["exact"] and fills["fast"]
    code, stdout, stderr = run_cli(
        *common, "--strategy", "spike_fade", "--engine", "fast", env=env, timeout=180
    )
    assert code == 0, stderr
    assert json.loads(stdout)["engine"] == "exact"
    assert "spike_fade" in json.loads(stdout)["engine_note"]


def test_bars_the_price_guard_holds_on_fall_back_to_the_exact_kernel() -> None:
    """A tenfold jump holds trading in the exact kernel; the research engine, which knows no
    guard, must not run such data and claim the same result."""
    data = btc(240)
    bars = data["BTC"]
    i = 150
    b = bars[i]
    bars[i] = replace(b, open=b.open * 20, high=b.high * 20, low=b.low * 20, close=b.close * 20)
    config = BacktestConfig(data=data, agents=[strategy_agent("rsi", symbols=["BTC"])])
    result = run_engine(config, "fast")
    assert result.engine == "exact"
    assert result.engine_note and "price guard" in result.engine_note
