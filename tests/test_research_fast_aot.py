"""The research engine compiled ahead of time (numba's pycc, what ``make`` builds) computes
exactly what numba's just-in-time functions do, and a module built from other sources or for
another CPU is never loaded."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from phantomex.domain.models import Bar
from phantomex.domain.risk import RiskProfile
from phantomex.research.fast import compiled, engine
from phantomex.research.fast.arrays import Series
from phantomex.research.fast.compiled import Kernels


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The module as ``make`` builds it, in a directory of its own (a stale build there)."""
    out = tmp_path_factory.mktemp("aot")
    stale = out / "_aot_0123456789abcdef.cpython-311-x86_64-linux-gnu.so"
    stale.write_bytes(b"built from other sources")
    cmd = [sys.executable, "-m", "phantomex.research.fast.aot", "--out", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert not stale.exists()
    (path,) = out.glob(f"{compiled.module_name()}.*")
    name = f"phantomex.research.fast.{compiled.module_name()}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _market(seed: int, n: int = 1500) -> Series:
    """A seeded random walk with jumps, flat stretches and gaps, as the engine's arrays."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.003, n) + (rng.random(n) < 0.01) * 0.03))
    close[300:340] = close[300]
    opening = np.concatenate([[close[0]], close[:-1] * np.exp(rng.normal(0, 0.0005, n - 1))])
    start = datetime(2024, 3, 1, 21, 0, tzinfo=UTC)
    rows = zip(opening, close * 1.001, opening * 0.999, close, close, strict=True)
    bars = [
        Bar("X", start + timedelta(minutes=i), *(Decimal(repr(float(v))) for v in values))
        for i, values in enumerate(rows)
        if i % 97 != 5
    ]
    return Series.from_bars("X", bars, timedelta(minutes=1))


CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("sma_cross", {"fast": 10, "slow": 30}, {}, "next_open"),
    ("ema_cross", {"fast": 5, "slow": 21}, {"stop_loss_pct": "1", "take_profit_pct": "2"}, "close"),
    ("rsi", {"period": 14, "oversold": 30, "overbought": 70}, {}, "next_open"),
    (
        "rsi",
        {"period": 6, "oversold": 35.5, "overbought": 60},
        {"max_hold_minutes": 45, "cooldown_seconds": 300, "daily_loss_limit_pct": "1.5"},
        "close",
    ),
    (
        "sma_cross",
        {"fast": 3, "slow": 8},
        {"max_drawdown_pct": "4", "max_allocation_pct": "50", "min_order_notional": "40"},
        "next_open",
    ),
]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("brain", "params", "risk", "fill"), CASES)
def test_the_ahead_of_time_loop_is_numbas_to_the_last_bit(
    built: ModuleType,
    seed: int,
    brain: str,
    params: dict[str, Any],
    risk: dict[str, Any],
    fill: str,
) -> None:
    series = _market(seed)
    settings: dict[str, Any] = {
        "risk": RiskProfile(**{"stop_loss_pct": None, "take_profit_pct": None, **risk}),
        "cash": Decimal(10_000),
        "fee_bps": Decimal(10),
        "slippage_bps": Decimal(5),
        "fill": fill,
        "interval_seconds": 60,
    }
    (ahead,) = engine.simulate(
        series, brain, [params], kernels=Kernels.of_module(built), **settings
    )
    (jit,) = engine.simulate(series, brain, [params], kernels=Kernels.just_in_time(), **settings)
    assert ahead.trades == jit.trades > 0
    for field in ("bar", "side", "quantity", "price", "fee", "kind", "equity"):
        assert getattr(ahead, field).tobytes() == getattr(jit, field).tobytes(), field
    assert (ahead.status, ahead.ambiguous) == (jit.status, jit.ambiguous)


def test_the_ahead_of_time_checks_and_indicators_are_numbas(built: ModuleType) -> None:
    ahead, jit = Kernels.of_module(built), Kernels.just_in_time()
    x = _market(7).closes
    odd = np.array([1.0, np.nan, 3.0]), np.array([1.0, np.inf]), np.array([2.0, 0.0]), x[::2]
    for values in (x, *odd):
        assert ahead.between(values, 0.0, 1e6) == jit.between(values, 0.0, 1e6)
    for jump in (1.5, 1.01, 1.0001):
        assert ahead.steady(x, x, jump, 1e-9) == jit.steady(x, x, jump, 1e-9)
    for period in (2, 14, 30):
        for name in ("sma_series", "ema_series"):
            a, j = getattr(ahead, name)(x, period), getattr(jit, name)(x, period)
            assert a.tobytes() == j.tobytes(), name
        a_rsi, j_rsi = ahead.rsi_series(x, period), jit.rsi_series(x, period)
        assert all(a.tobytes() == j.tobytes() for a, j in zip(a_rsi, j_rsi, strict=True))


def test_a_module_built_from_other_sources_is_not_loaded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copies = []
    for source in compiled.SOURCES:
        copy = tmp_path / source.name
        copy.write_bytes(source.read_bytes())
        copies.append(copy)
    monkeypatch.setattr(compiled, "SOURCES", tuple(copies))
    name = compiled.module_name()
    copies[-2].write_bytes(copies[-2].read_bytes() + b"\n# an edit\n")
    assert compiled.module_name() != name
    monkeypatch.setattr(compiled, "_cpu", lambda: b"flags : fpu sse2")
    assert compiled.module_name() not in (name,)
    monkeypatch.setenv("PHANTOMEX_FAST_JIT", "1")
    assert compiled.ahead_of_time() is None
    assert not compiled.load().ahead_of_time
