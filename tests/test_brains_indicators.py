"""Indicator wrappers checked against hand computations in pure Python."""

from __future__ import annotations

import itertools
import math
import statistics

import numpy as np
import pytest

from phantomex.brains import indicators

SERIES = [
    44.34, 44.09, 44.15, 43.61, 44.33, 44.83, 45.10, 45.42, 45.84, 46.08,
    45.89, 46.03, 45.61, 46.28, 46.28, 46.00, 46.03, 46.41, 46.22, 45.64,
    46.21, 46.25, 45.71, 46.45, 45.78, 45.35, 44.03, 44.18, 44.22, 44.57,
]  # fmt: skip


def wilder_rsi(closes: list[float], period: int) -> list[float | None]:
    """Wilder's RSI by the book: seed with simple averages, then smooth with (n-1)/n."""
    out: list[float | None] = [None] * len(closes)
    changes = [b - a for a, b in itertools.pairwise(closes)]
    if len(changes) < period:
        return out
    gain = sum(max(c, 0.0) for c in changes[:period]) / period
    loss = sum(max(-c, 0.0) for c in changes[:period]) / period

    def value(g: float, lo: float) -> float:
        return 100.0 if lo == 0 else 100.0 - 100.0 / (1.0 + g / lo)

    out[period] = value(gain, loss)
    for i in range(period, len(changes)):
        c = changes[i]
        gain = (gain * (period - 1) + max(c, 0.0)) / period
        loss = (loss * (period - 1) + max(-c, 0.0)) / period
        out[i + 1] = value(gain, loss)
    return out


def plain_sma(closes: list[float], period: int) -> list[float | None]:
    return [
        None if i < period - 1 else sum(closes[i - period + 1 : i + 1]) / period
        for i in range(len(closes))
    ]


def plain_ema(closes: list[float], period: int) -> list[float | None]:
    out: list[float | None] = [None] * len(closes)
    if len(closes) < period:
        return out
    k = 2.0 / (period + 1)
    value = sum(closes[:period]) / period
    out[period - 1] = value
    for i in range(period, len(closes)):
        value = closes[i] * k + value * (1 - k)
        out[i] = value
    return out


def assert_matches(actual: np.ndarray, expected: list[float | None]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        if want is None:
            assert math.isnan(got)
        else:
            assert got == pytest.approx(want, rel=1e-9, abs=1e-9)


def test_rsi_is_wilders_and_starts_at_index_period() -> None:
    result = indicators.rsi(SERIES, 14)
    assert result.dtype == np.float64
    assert np.isnan(result[:14]).all()
    assert not np.isnan(result[14])
    assert_matches(result, wilder_rsi(SERIES, 14))
    # The classic textbook value for this series (Wilder / StockCharts example).
    assert result[14] == pytest.approx(70.46, abs=0.01)


def test_rsi_short_period_matches_hand_computation() -> None:
    closes = [10.0, 11.0, 10.5, 10.0, 10.8, 11.5, 11.2]
    assert_matches(indicators.rsi(closes, 3), wilder_rsi(closes, 3))
    # First value by hand: changes +1, -0.5, -0.5 -> avg gain 1/3, avg loss 1/3 -> RSI 50.
    assert indicators.rsi(closes, 3)[3] == pytest.approx(50.0)


def test_rsi_extremes() -> None:
    rising = [float(i) for i in range(1, 21)]
    assert indicators.rsi(rising, 14)[-1] == pytest.approx(100.0)
    falling = rising[::-1]
    assert indicators.rsi(falling, 14)[-1] == pytest.approx(0.0)


def test_too_short_input_gives_only_nan() -> None:
    assert np.isnan(indicators.rsi([1.0, 2.0, 3.0], 14)).all()
    assert np.isnan(indicators.sma([1.0, 2.0], 3)).all()


def test_sma_and_ema_match_hand_computation() -> None:
    assert_matches(indicators.sma(SERIES, 5), plain_sma(SERIES, 5))
    assert_matches(indicators.ema(SERIES, 5), plain_ema(SERIES, 5))
    assert indicators.sma([1.0, 2.0, 3.0, 4.0], 3)[-1] == pytest.approx(3.0)
    # EMA(3) of 1,2,3,4: seed (1+2+3)/3 = 2, then 4*0.5 + 2*0.5 = 3.
    assert indicators.ema([1.0, 2.0, 3.0, 4.0], 3)[-1] == pytest.approx(3.0)
    assert indicators.ema([1.0, 2.0, 3.0, 10.0], 3)[-1] == pytest.approx(6.0)


def test_moving_average_by_name() -> None:
    np.testing.assert_array_equal(
        indicators.moving_average(SERIES, 4, "sma"), indicators.sma(SERIES, 4)
    )
    np.testing.assert_array_equal(
        indicators.moving_average(SERIES, 4, "ema"), indicators.ema(SERIES, 4)
    )
    with pytest.raises(ValueError, match="unknown moving average"):
        indicators.moving_average(SERIES, 4, "wma")


def test_integer_input_is_accepted_as_float64() -> None:
    np.testing.assert_allclose(indicators.sma([1, 2, 3, 4], 2)[1:], [1.5, 2.5, 3.5])


@pytest.mark.parametrize("period", [0, 1, -3])
def test_bad_period_is_rejected(period: int) -> None:
    with pytest.raises(ValueError, match="period"):
        indicators.rsi(SERIES, period)


def test_coefficient_of_variation() -> None:
    values = [100.0, 102.0, 98.0, 101.0, 99.0]
    expected = statistics.pstdev(values) / statistics.fmean(values)
    assert indicators.coefficient_of_variation(values) == pytest.approx(expected)
    assert indicators.coefficient_of_variation([5.0, 5.0, 5.0]) == 0.0
    assert math.isnan(indicators.coefficient_of_variation([]))
    assert math.isnan(indicators.coefficient_of_variation([1.0, float("nan")]))
    assert math.isnan(indicators.coefficient_of_variation([-1.0, -2.0]))


def test_is_clean_series() -> None:
    assert indicators.is_clean_series(np.array([1.0, 2.0]))
    assert not indicators.is_clean_series(np.array([], dtype=np.float64))
    assert not indicators.is_clean_series(np.array([1.0, np.nan]))
    assert not indicators.is_clean_series(np.array([1.0, 0.0]))
