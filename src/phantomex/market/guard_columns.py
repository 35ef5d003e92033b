"""The price guard's check of a replay (:meth:`PriceGuard.quiet`) on bars as columns: the floats
decide every row they can vouch for, each remaining row is decided exactly, on its Decimal bar.

A float comparison vouches for the exact one when it is strict: rounding to float is monotone,
so ``float(a) > float(b)`` implies ``a > b``; the same text is the same value. The jump
rule's bounds are Decimal quotients and products of the previous close; a float more than a
relative :data:`MARGIN` inside the float bounds lies inside the exact ones (floats are within
1e-15 of them).
"""

from __future__ import annotations

from decimal import Decimal

import numpy as np

from phantomex.domain.models import Bar
from phantomex.domain.money import MONEY_CONTEXT, ZERO
from phantomex.market.columns import BarColumns, true_at

__all__ = ["MARGIN", "bar_accepted", "quiet_columns"]

MARGIN = 1e-9


def bar_accepted(bar: Bar, ceiling: Decimal, cap: Decimal | None) -> bool:
    """Whether the guard takes a replayed bar (its close the snapshot's price) as valid."""
    lo, h, v = bar.low, bar.high, bar.volume
    try:
        if not (ZERO < lo <= bar.open <= h < ceiling and lo <= bar.close <= h):
            return False
        return v >= ZERO and v.is_finite() and (cap is None or h <= cap)
    except ArithmeticError:  # NaN compared
        return False


def _same(bars: BarColumns, a: str, b: str) -> np.ndarray:
    """Where two fields have the same text (so the same value)."""
    import pyarrow.compute as pc

    return true_at(pc.equal(bars.texts[a], bars.texts[b]))


def quiet_columns(
    bars: BarColumns, jump: Decimal | None, ceiling: Decimal, cap: Decimal | None
) -> bool:
    """Whether the guard accepts every bar of ``bars`` in order (see the module)."""
    if len(bars) == 0:
        return True
    v = bars.values
    o, h, lo, c, vol = (v[k] for k in ("open", "high", "low", "close", "volume"))
    with np.errstate(invalid="ignore"):
        sure = (lo > 0) & (h < float(ceiling)) & np.isfinite(vol) & (vol > 0)
        for (a, b), x, y in (
            (("open", "low"), o, lo),
            (("high", "open"), h, o),
            (("close", "low"), c, lo),
            (("high", "close"), h, c),
        ):
            sure &= (x > y) | _same(bars, a, b)
        if cap is not None:
            sure &= h < float(cap)
    for k in np.flatnonzero(~sure).tolist():
        if not bar_accepted(bars[k], ceiling, cap):
            return False
    if jump is None or len(bars) < 2:
        return True
    previous, f = c[:-1], float(jump)
    lower, upper = previous / f * (1 + MARGIN), previous * f * (1 - MARGIN)
    with np.errstate(invalid="ignore"):
        steady = (lower < o[1:]) & (o[1:] < upper) & (lower < c[1:]) & (c[1:] < upper)
    for k in (np.flatnonzero(~steady) + 1).tolist():
        before, bar = bars[k - 1].close, bars[k]
        low, high = MONEY_CONTEXT.divide(before, jump), MONEY_CONTEXT.multiply(before, jump)
        if not (low < bar.open < high and low < bar.close < high):
            return False
    return True
