"""The research engine's JSON and metrics, written from its arrays
(:mod:`phantomex.research.fast.fills`), are the generic path's: trade records made value by
value (``Decimal(repr(float))``, ``Decimal`` of the bar's text with the broker's slippage
arithmetic, ``datetime`` times) and :func:`compute_metrics` of them."""

from __future__ import annotations

import decimal
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from phantomex.brains.rules import signals
from phantomex.domain.models import Bar
from phantomex.domain.money import BPS, MONEY_CONTEXT
from phantomex.market.columns import FIELDS, BarColumns
from phantomex.research.fast import run_fast
from phantomex.research.fast.arrays import utc_time
from phantomex.research.fast.fills import FloatColumn, decimal_texts, iso_texts
from phantomex.research.fast.result import FastAgentResult, FastBacktestResult
from phantomex.research.metrics import TradeRecord, compute_metrics
from phantomex.research.spec import BacktestConfig, BacktestResult, strategy_agent
from phantomex.serialize import iso


def _reference_trades(agent: FastAgentResult, config: BacktestConfig) -> list[TradeRecord]:
    """The fills as the generic path records them, value by value."""
    series, run = agent.series, agent.run
    field = "close" if config.fill == "close" else "open"
    times = series.tick_us if config.fill == "close" else series.open_us
    out = []
    for i, side, q, fee in zip(
        run.bar.tolist(), run.side.tolist(), run.quantity.tolist(), run.fee.tolist(), strict=True
    ):
        price = getattr(series.bars[i], field)
        buy = side == signals.BUY
        if config.slippage_bps:
            with decimal.localcontext(MONEY_CONTEXT):
                slip = price * config.slippage_bps / BPS
                price = price + slip if buy else price - slip
        when = utc_time(int(times[i]))
        record = TradeRecord(
            series.symbol, "buy" if buy else "sell", Decimal(repr(q)), price,
            Decimal(repr(fee)), when, agent.name,
        )  # fmt: skip
        out.append(record)
    return out


def _generic_json(result: FastBacktestResult) -> dict[str, Any]:
    """``result.to_json()`` with the trades and metrics the generic way."""
    agent = result.agents[0]
    assert isinstance(agent, FastAgentResult)
    trades = _reference_trades(agent, result.config)
    curve = np.concatenate(([float(agent.spec.allowance)], agent.run.equity))
    metrics = compute_metrics(curve, period=result.period, trades=trades, in_market=agent.held)
    metrics["final_equity"] = format(Decimal(repr(float(curve[-1]))), "f")
    out = result.to_json()
    out["trades"] = [t.to_json() for t in trades]
    out["metrics"] = metrics
    return out


def _bars(n: int, step: timedelta, seed: int) -> list[Bar]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0, 0.004, n)))
    start = datetime(2024, 3, 1, 23, 0, tzinfo=UTC)  # days roll during the run
    out = []
    for i in range(n):
        c = Decimal(repr(float(close[i])))
        o = Decimal(repr(float(close[i - 1]))) if i else c
        out.append(Bar("X", start + i * step, o, max(o, c), min(o, c), c, Decimal(1)))
    return out


def _spelled(i: int, value: Decimal) -> str:
    """The value's text as a data file may write it: with an exponent, leading or trailing
    zeros (what ``format(Decimal(text), "f")`` rewrites or keeps), or plain."""
    text = str(value)
    return [f"{value:E}", "00" + text, text + "00", text][i % 4]


def _columns(bars: list[Bar], kind: str) -> Any:
    """The bars as the CLI loads them, texts spelled in several ways: Arrow strings (a CSV
    file) or NumPy bytes (the column cache)."""
    if kind == "bars":
        return bars
    import pyarrow as pa

    columns = BarColumns.from_bars("X", bars)
    texts = {k: [_spelled(i, getattr(b, k)) for i, b in enumerate(bars)] for k in FIELDS}
    if kind == "cache":
        columns.texts = {k: np.array(v, dtype=np.bytes_) for k, v in texts.items()}
    else:
        columns.texts = {k: pa.array(v, pa.string()) for k, v in texts.items()}
    return columns


@pytest.mark.parametrize("kind", ["bars", "arrow", "cache"])
@pytest.mark.parametrize("slippage", ["0", "12.5"])
@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize("step", [timedelta(minutes=1), timedelta(seconds=1.25)])
def test_fast_json_is_the_generic_json(
    kind: str, slippage: str, fill: str, step: timedelta
) -> None:
    bars = _bars(3000, step, seed=len(kind) + len(fill))
    agent = strategy_agent("sma_cross", {"fast": 3, "slow": 7}, symbols=["X"])
    config = BacktestConfig(
        data={"X": _columns(bars, kind)},
        agents=[agent],
        slippage_bps=Decimal(slippage),
        fill=fill,  # type: ignore[arg-type]
    )
    result = run_fast(config)
    assert isinstance(result, FastBacktestResult)
    assert result.metrics["trades"] > 100
    fast, generic = result.to_json(), _generic_json(result)
    assert fast == generic
    # the records the report reads, with the same Decimals (exponents included)
    agent_result = result.agents[0]
    assert isinstance(agent_result, FastAgentResult)
    reference = _reference_trades(agent_result, config)
    assert [_exactly(t) for t in result.trades] == [_exactly(t) for t in reference]
    # the generic hook on the same result writes the same trades
    assert BacktestResult.trades_json(result, several=False) == fast["trades"]


def _exactly(t: TradeRecord) -> tuple[Any, ...]:
    return (t.symbol, t.side, str(t.quantity), str(t.price), str(t.fee), t.time, t.agent)


def test_float_texts_are_repr_texts() -> None:
    rng = np.random.default_rng(3)
    edges = [0.0, -0.0, 1e-5, 1e-7, 1.5e-7, 1e-8, 1e15, 1.5e15, 1e16, 2.0**60, 5e-324, 1e308,
             float("nan"), float("inf"), 100.0, 100.0, 0.1, 0.1]  # fmt: skip
    values = np.concatenate(
        (
            np.array(edges),
            rng.integers(0, 2**63, 100_000, dtype=np.int64).view(np.float64),  # any bits
            rng.random(100_000) * 10.0 ** rng.integers(-9, 18, 100_000),
            np.repeat(rng.random(50) * 1e3, 3),  # runs of one value
        )
    )
    column = FloatColumn(values)
    reprs = [repr(v) for v in values.tolist()]
    assert column.texts == [format(Decimal(r), "f") for r in reprs]
    assert [d.as_tuple() for d in column.decimals] == [Decimal(r).as_tuple() for r in reprs]


def test_decimal_texts_rewrite_only_what_decimal_would() -> None:
    texts = ["100", "1.50", "0.5", "0", "0.000", "007", "00.5", ".5", "5.", "1E+2", "1.5e-3",
             "+3", "12345678901234567890.123", "9.99", "0000", "10.0"]  # fmt: skip
    assert decimal_texts(np.array(texts)) == [format(Decimal(t), "f") for t in texts]


def test_iso_texts_are_iso() -> None:
    minute = 60_000_000
    whole = np.array([0, minute, 86_400_000_000 - 1_000_000, -minute, 1_700_000_000_000_000])
    first, last = datetime(1, 1, 1, tzinfo=UTC), datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    ends = np.array([(t - utc_time(0)) // timedelta(microseconds=1) for t in (first, last)])
    for us in (whole, np.append(whole, 1_500_000), ends, whole[:0]):
        assert iso_texts(us) == [iso(utc_time(int(v))) for v in us.tolist()]
