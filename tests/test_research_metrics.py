"""Backtest metrics against empyrical-reloaded on the same equity curves, and by hand.

Tolerance against empyrical: relative 1e-9 (both compute in float64 from the same returns; the
only differences are the order of floating-point operations)."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal, localcontext

import empyrical as ep
import numpy as np
import pandas as pd
import pytest

from phantomex.market.loaders import load_dataset
from phantomex.research.metrics import (
    TradeRecord,
    annual_volatility,
    cagr,
    compute_metrics,
    floats_of,
    max_drawdown,
    monthly_returns,
    periods_per_year,
    returns_from_equity,
    round_trips,
    sharpe,
    sortino,
)

MINUTE = timedelta(minutes=1)
PPY = 525_600
RTOL = 1e-9
T0 = datetime(2023, 4, 1, tzinfo=UTC)


def _gbm_with_flat_stretches(n: int, seed: int) -> np.ndarray:
    """An equity curve like a strategy's: random moves while in the market, flat when out."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.00002, 0.001, n)
    steps[rng.random(n) < 0.5] = 0.0
    return np.concatenate([[10_000.0], 10_000.0 * np.cumprod(1 + steps)])


def _btc_buy_and_hold() -> np.ndarray:
    closes = np.array([float(b.close) for b in load_dataset("demo", ["BTC"])["BTC"]])
    return np.concatenate([[10_000.0], 10_000.0 * closes / closes[0]])


CURVES = {
    "gbm": _gbm_with_flat_stretches(50_000, 7),
    "gbm-losing": _gbm_with_flat_stretches(5_000, 11)[::-1].copy(),
    "btc": _btc_buy_and_hold(),
}


@pytest.fixture(params=sorted(CURVES))
def equity(request: pytest.FixtureRequest) -> np.ndarray:
    return CURVES[request.param]


def test_periods_per_year() -> None:
    assert periods_per_year(MINUTE) == PPY
    assert periods_per_year(timedelta(days=1)) == 365
    assert periods_per_year(timedelta(hours=1)) == 8760
    with pytest.raises(ValueError):
        periods_per_year(timedelta(0))


def test_ratios_match_empyrical(equity: np.ndarray) -> None:
    r = returns_from_equity(equity)
    assert r.size == equity.size - 1
    total = compute_metrics(equity, period=MINUTE)["total_return"]
    assert total == pytest.approx(ep.cum_returns_final(r), rel=RTOL)
    assert cagr(equity, PPY) == pytest.approx(ep.cagr(r, annualization=PPY), rel=RTOL)
    assert annual_volatility(r, PPY) == pytest.approx(
        ep.annual_volatility(r, annualization=PPY), rel=RTOL
    )
    assert sharpe(r, PPY) == pytest.approx(ep.sharpe_ratio(r, annualization=PPY), rel=RTOL)
    assert sortino(r, PPY) == pytest.approx(ep.sortino_ratio(r, annualization=PPY), rel=RTOL)
    assert max_drawdown(equity).depth == pytest.approx(ep.max_drawdown(r), rel=RTOL)
    m = compute_metrics(equity, period=MINUTE)
    assert m["calmar"] == pytest.approx(ep.calmar_ratio(r, annualization=PPY), rel=RTOL)
    assert m["sharpe"] == sharpe(r, PPY)
    assert m["max_drawdown"] == max_drawdown(equity).depth


def test_monthly_returns_match_empyrical() -> None:
    equity = CURVES["gbm"]
    times = [T0 + i * MINUTE for i in range(equity.size)]
    r = returns_from_equity(equity)
    series = pd.Series(r, index=pd.DatetimeIndex(times[1:]))
    want = ep.aggregate_returns(series, "monthly")
    got = monthly_returns(times, equity)
    assert len(got) == len(want) == 2  # April and May 2023
    for (year, month), value in want.items():
        assert got[(year, month)] == pytest.approx(value, rel=1e-9, abs=1e-12)


def _longest_underwater_brute_force(e: np.ndarray) -> int:
    """From each high (at or above everything before it) to the first value back at or above
    it, or to the end; only stretches with at least one value under water count."""
    best = 0
    for i in range(e.size):
        if i and e[i] < e[:i].max():
            continue
        j = i + 1
        while j < e.size and e[j] < e[i]:
            j += 1
        if j < e.size and j > i + 1:
            best = max(best, j - i)
        elif j == e.size and i < e.size - 1:
            best = max(best, e.size - 1 - i)
    return best


def test_drawdown_depth_and_duration_by_hand() -> None:
    e = np.array([100, 110, 105, 100, 111, 90, 95, 100, 112, 112, 111])
    dd = max_drawdown(e)
    assert dd.depth == pytest.approx(90 / 111 - 1)
    assert (dd.peak, dd.trough) == (4, 5)
    # 111 at index 4 is regained at index 8: 4 bars under water; 110 -> 111 took 3 bars.
    assert (dd.longest_bars, dd.longest_start, dd.longest_end) == (4, 4, 8)
    never = max_drawdown(np.array([100.0, 120, 90, 100, 110]))
    assert (never.longest_bars, never.longest_start, never.longest_end) == (3, 1, 4)
    flat = max_drawdown(np.array([5.0, 5, 5]))
    assert (flat.depth, flat.longest_bars) == (0.0, 0)
    m = compute_metrics(e.astype(float), period=MINUTE)
    assert m["max_drawdown_duration_bars"] == 4
    assert m["max_drawdown_duration_seconds"] == 240


@pytest.mark.parametrize("seed", range(5))
def test_drawdown_duration_against_brute_force(seed: int) -> None:
    e = _gbm_with_flat_stretches(400, seed)
    assert max_drawdown(e).longest_bars == _longest_underwater_brute_force(e)


def _t(minute: int) -> datetime:
    return T0 + minute * MINUTE


def test_round_trips_win_rate_profit_factor_by_hand() -> None:
    d = Decimal
    trades = [
        TradeRecord("BTC", "buy", d(1), d(100), d("0.1"), _t(1)),
        TradeRecord("BTC", "sell", d(1), d(110), d("0.11"), _t(2)),  # +9.79
        TradeRecord("ETH", "buy", d(2), d(50), d("0.1"), _t(3)),
        TradeRecord("ETH", "sell", d(1), d(45), d("0.045"), _t(4)),  # partial
        TradeRecord("ETH", "buy", d(1), d(40), d("0.04"), _t(5)),
        TradeRecord("ETH", "sell", d(2), d(46), d("0.092"), _t(6)),  # ETH trip: -3.277
        TradeRecord("BTC", "buy", d(1), d(120), d("0.12"), _t(7)),  # still open at the end
    ]
    trips = round_trips(trades)
    assert [(t.symbol, t.entry_time, t.exit_time) for t in trips] == [
        ("BTC", _t(1), _t(2)),
        ("ETH", _t(3), _t(6)),
    ]
    assert trips[0].pnl == d("9.79")
    assert trips[1].cost == d("140.14")
    assert trips[1].proceeds == d(45) - d("0.045") + d(92) - d("0.092")
    assert trips[1].pnl == d("-3.277")
    equity = [10_000.0, 10_001.0, 10_002.0, 9_999.0, 10_003.0, 10_004.0, 10_005.0, 10_006.0]
    m = compute_metrics(
        equity,
        period=MINUTE,
        trades=trades,
        in_market=[1, 0, 1, 1, 1, 0, 1],  # type: ignore[list-item]
    )
    assert m["trades"] == 7
    assert m["round_trips"] == 2
    assert m["win_rate"] == 0.5
    assert m["profit_factor"] == pytest.approx(9.79 / 3.277)
    assert Decimal(m["average_trade"]) == (d("9.79") - d("3.277")) / 2
    assert m["average_trade_return"] == pytest.approx(
        (9.79 / 100.1 + -3.277 / 140.14) / 2, rel=1e-12
    )
    assert Decimal(m["fees_paid"]) == d("0.607")
    assert m["exposure"] == pytest.approx(5 / 7)
    assert m["start_equity"] == "10000.0"
    assert Decimal(m["net_profit"]) == d(6)


def test_undefined_ratios_are_none() -> None:
    flat = compute_metrics([100.0, 100.0, 100.0], period=MINUTE, in_market=[False, False])
    assert flat["sharpe"] is None and flat["sortino"] is None and flat["calmar"] is None
    assert flat["total_return"] == 0.0 and flat["max_drawdown"] == 0.0
    assert flat["win_rate"] is None and flat["profit_factor"] is None
    assert flat["average_trade"] is None and flat["exposure"] == 0.0
    rising = compute_metrics([100.0, 101.0, 103.0], period=MINUTE)
    assert rising["sortino"] is None  # no downside
    assert rising["sharpe"] is not None and rising["calmar"] is None  # no drawdown
    winner = [
        TradeRecord("X", "buy", Decimal(1), Decimal(1), Decimal(0), _t(1)),
        TradeRecord("X", "sell", Decimal(1), Decimal(2), Decimal(0), _t(2)),
    ]
    only_wins = compute_metrics([1.0, 1.0, 2.0], period=MINUTE, trades=winner)
    assert only_wins["win_rate"] == 1.0 and only_wins["profit_factor"] is None


def test_decimal_equity_keeps_money_exact() -> None:
    equity = [Decimal("10000"), Decimal("10000.123456789012345678"), Decimal("9999.5")]
    m = compute_metrics(equity, period=MINUTE)
    assert m["final_equity"] == "9999.5"
    assert m["net_profit"] == "-0.5"
    assert m["total_return"] == pytest.approx(-0.5 / 10_000)


def _hard_decimals(seed: int) -> list[Decimal]:
    """Decimals of 1 to 34 digits over a wide range of exponents, and the hardest texts for a
    parser: values at, just above and just below the midpoint of two neighbouring floats."""
    rng = random.Random(seed)
    out = []
    for _ in range(20_000):
        digits = rng.randint(1, 34)
        coefficient = rng.randrange(10 ** (digits - 1), 10**digits) * rng.choice((1, -1))
        out.append(Decimal(coefficient).scaleb(rng.randint(-60, 30)))
    for _ in range(4_000):
        low = rng.uniform(1e-9, 1e7)
        with localcontext() as ctx:
            ctx.prec = 60
            mid = (Decimal(low) + Decimal(math.nextafter(low, math.inf))) / 2
            for prec in (17, 20, 28, 34):
                ctx.prec = prec
                out += [+mid, mid.next_plus(), mid.next_minus()]
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_floats_of_gives_the_bits_of_float(seed: int) -> None:
    """The bulk conversion of an equity curve is ``float`` of each Decimal, bit for bit, on
    the texts where a parser that does not round correctly goes wrong."""
    values = _hard_decimals(seed)
    want = np.array([float(v) for v in values])
    assert floats_of(values).view(np.int64).tolist() == want.view(np.int64).tolist()


def test_floats_of_values_beyond_the_parser_and_short_runs() -> None:
    """Values Arrow does not parse to a finite float, and runs too short for Arrow, are
    converted by ``float`` itself."""
    odd = [Decimal("1e400"), Decimal("-1e400"), Decimal("Infinity"), Decimal("NaN")]
    values = [Decimal("0.1")] * 3000 + odd + [Decimal("-0"), Decimal("0E-30"), Decimal("5E+3")]
    for run in (values, values[-9:]):
        got, want = floats_of(run), [float(v) for v in run]
        assert [str(x) for x in got.tolist()] == [str(x) for x in want]


def test_ratios_of_a_run_shorter_than_a_day_are_per_period_and_say_so() -> None:
    """A 2-hour session of minute returns annualised read -143.75: below a day the ratios are
    per period (not scaled by sqrt(525,600)) and the metrics state the basis."""
    rng = np.random.default_rng(5)
    short = np.concatenate([[10_000.0], 10_000.0 * np.cumprod(1 + rng.normal(-1e-4, 1e-3, 120))])
    r = returns_from_equity(short)
    m = compute_metrics(short, period=MINUTE)
    assert m["sharpe"] == pytest.approx(float(np.mean(r) / np.std(r, ddof=1)), rel=RTOL)
    assert m["sortino"] == pytest.approx(sortino(r, 1.0), rel=RTOL)
    assert abs(m["sharpe"]) < 1  # a per-minute figure, not an extrapolation to a year
    assert m["ratio_basis"] == {
        "annualised": False,
        "period_seconds": 60.0,
        "span_seconds": 7200.0,
        "scale": 1.0,
        "label": "per 1-minute period (2 h of returns)",
    }
    day = np.concatenate([[10_000.0], 10_000.0 * np.cumprod(1 + rng.normal(0, 1e-3, 1440))])
    annual = compute_metrics(day, period=MINUTE)
    assert annual["sharpe"] == sharpe(returns_from_equity(day), PPY)
    assert annual["ratio_basis"]["annualised"] is True
    assert annual["ratio_basis"]["label"] == "annualised from 1-minute returns"
