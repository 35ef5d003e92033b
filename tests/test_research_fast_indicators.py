"""The research engine's indicators are TA-Lib's (the brains'), to the last bit."""

from __future__ import annotations

import numpy as np
import talib
from hypothesis import given, settings
from hypothesis import strategies as st

from phantomex.research.fast import indicators as ind


@st.composite
def series(draw: st.DrawFn) -> np.ndarray:
    n = draw(st.integers(3, 400))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = 100 * np.exp(np.cumsum(rng.normal(0, draw(st.sampled_from([0.0005, 0.01, 0.05])), n)))
    if draw(st.booleans()):
        x = np.maximum(np.round(x * 64) / 64, 1 / 64)
    if draw(st.booleans()):  # a flat stretch: RSI's gains and losses decay towards 0
        a = draw(st.integers(0, n - 1))
        x[a : a + draw(st.integers(1, 200))] = x[a]
    return x


@settings(max_examples=300, deadline=None, derandomize=True)
@given(series(), st.integers(2, 40), st.data())
def test_windowed_and_whole_series_indicators_match_talib_bit_for_bit(
    x: np.ndarray, p: int, data: st.DataObject
) -> None:
    n = x.size
    if n >= p + 2:
        a = data.draw(st.integers(0, n - p - 2))
        w = x[a:]
        sma, ema, rsi = talib.SMA(w, p), talib.EMA(w, p), talib.RSI(w, p)
        assert ind.sma_tail(x, a, n - 1, p) == (sma[-2], sma[-1])
        assert ind.ema_tail(x, a, n - 1, p) == (ema[-2], ema[-1])
        assert ind.rsi_last(x, a, n - 1, p) == rsi[-1]
    assert np.array_equal(ind.ema_series(x, p), talib.EMA(x, p), equal_nan=True)
    assert np.array_equal(ind.rsi_series(x, p)[0], talib.RSI(x, p), equal_nan=True)
    # the SMA filter is a re-anchored running sum: within rounding of TA-Lib's
    assert np.allclose(ind.sma_series(x, p), talib.SMA(x, p), rtol=1e-12, equal_nan=True)
