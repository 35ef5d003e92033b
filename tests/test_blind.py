"""Blind backtests: the model sees renamed symbols, far-future dates and rescaled prices; the
results, mapped back, are those of the real run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from phantomex.market.loaders import load_dataset
from phantomex.research.backtest import run_backtest
from phantomex.research.blind import BlindKey, blind_bars, blind_config, unblind_result
from phantomex.research.spec import BacktestConfig, strategy_agent

START = datetime(2023, 4, 14, tzinfo=UTC)


def config() -> BacktestConfig:
    data = load_dataset("demo", ["BTC", "DOGE"])
    window = {
        s: [b for b in bars if START <= b.time < START + timedelta(hours=8)]
        for s, bars in data.items()
    }
    agents = [
        strategy_agent("sma_cross", {"fast": 5, "slow": 20}, symbols=["BTC"], name="sma"),
        strategy_agent("rsi", {"period": 7}, symbols=["DOGE"], name="rsi"),
    ]
    return BacktestConfig(data=window, agents=agents, start=START + timedelta(hours=1))


def test_the_model_sees_nothing_real() -> None:
    real = config()
    key = BlindKey.make(list(real.data), seed=7)
    assert key == BlindKey.make(list(real.data), seed=7)  # seeded: reproducible
    assert sorted(key.aliases.values()) == ["ASSET1", "ASSET2"]
    blinded = blind_bars(real.data, key)
    years = {b.time.year for bars in blinded.values() for b in bars}
    assert min(years) > 2150
    for sym, bars in real.data.items():
        seen = blinded[key.aliases[sym]]
        assert seen[0].time.weekday() == bars[0].time.weekday()
        assert seen[0].time.time() == bars[0].time.time()
        assert seen[0].close == bars[0].close * key.scale[sym] != bars[0].close
        assert seen[0].close * seen[0].volume == bars[0].close * bars[0].volume


def test_blind_results_map_back_to_the_real_run() -> None:
    real = config()
    key = BlindKey.make(list(real.data), seed=11)
    plain = run_backtest(real)
    blind = unblind_result(run_backtest(blind_config(real, key)), real, key)
    assert plain.times == blind.times
    assert sum(len(a.trades) for a in plain.agents) > 4
    for a, b in zip(plain.agents, blind.agents, strict=True):
        assert [(t.symbol, t.side, t.time) for t in a.trades] == [
            (t.symbol, t.side, t.time) for t in b.trades
        ]
        for x, y in zip(a.trades, b.trades, strict=True):
            assert y.price == pytest.approx(x.price, rel=Decimal("1e-20"))
            assert y.quantity == pytest.approx(x.quantity, rel=Decimal("1e-20"))
            assert y.fee == pytest.approx(x.fee, rel=Decimal("1e-20"))
        assert b.final_equity == pytest.approx(a.final_equity, rel=Decimal("1e-20"))
        assert b.metrics["sharpe"] == pytest.approx(a.metrics["sharpe"], rel=1e-12)
    assert blind.to_json()["trades"][0]["symbol"] in ("BTC", "DOGE")
