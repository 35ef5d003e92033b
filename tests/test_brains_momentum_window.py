"""The SMA crossover brain reads its window in plain Python: the same bits as TA-Lib's SMA."""

from __future__ import annotations

import numpy as np
from brain_helpers import MINUTE, T0, make_bars, make_ctx
from hypothesis import given, settings
from hypothesis import strategies as st

from phantomex.brains.indicators import sma
from phantomex.brains.rules import MomentumBrain, MomentumParams, signals
from phantomex.brains.rules.momentum import sma_last_two
from phantomex.domain.models import Action
from phantomex.market.base import PriceHistory

prices = st.floats(min_value=1e-8, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=400, deadline=None)
@given(period=st.integers(2, 60), extra=st.integers(1, 5), data=st.data())
def test_sma_last_two_is_talib_to_the_bit(period: int, extra: int, data: st.DataObject) -> None:
    closes = data.draw(st.lists(prices, min_size=period + extra, max_size=period + extra))
    expected = sma(np.array(closes), period)
    assert sma_last_two(closes, period) == (float(expected[-1]), float(expected[-2]))


def test_close_list_is_closes_for_a_view_older_than_the_history() -> None:
    history = PriceHistory()
    closes = [100.0 + i * 0.25 for i in range(50)]
    history.append(make_bars(closes))
    for n in (0, 1, 20, 49, 50):
        view = history.view(T0 + n * MINUTE)
        for limit in (1, 5, 31, 100):
            assert view.close_list("BTC", limit) == view.closes("BTC", limit).tolist()
    assert history.view(T0 + 10 * MINUTE).close_list("ETH", 5) == []


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.sampled_from([-1.0, 0.0, 0.0, 1.0, 2.5, -2.5]), min_size=35, max_size=60),
    fast=st.integers(2, 8),
    slow=st.integers(9, 30),
    held=st.booleans(),
)
def test_sma_brain_decides_as_talib_averages_say(
    steps: list[float], fast: int, slow: int, held: bool
) -> None:
    """Flat stretches make equal averages (ties): the cross and the action follow TA-Lib's
    values, and a window too short or with a bad close holds."""
    closes = np.cumsum([1000.0, *steps]).tolist()
    ctx = make_ctx({"BTC": closes}, holdings={"BTC": ("1", "900")} if held else None)
    signal = MomentumBrain(MomentumParams(fast=fast, slow=slow)).evaluate(ctx, "BTC")
    window = np.array(closes[-(slow + 1) :])
    f, s = sma(window, fast), sma(window, slow)
    crossed = signals.cross(float(f[-1]), float(f[-2]), float(s[-1]), float(s[-2]))
    expected = signals.momentum_signal(crossed, held)
    action = {signals.BUY: Action.BUY, signals.SELL: Action.SELL, signals.HOLD: Action.HOLD}
    assert signal.action is action[expected]
    assert signal.meta["cross"] == {1: "up", -1: "down", 0: None}[crossed]
    assert signal.meta["fast"] == round(float(f[-1]), 6)
