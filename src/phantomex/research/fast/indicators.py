"""TA-Lib's SMA, EMA and RSI as numba functions, operation for operation (the same float
results to the last bit: ``tests/test_research_fast_indicators.py``), over a window ``x[a..b]``
(inclusive) of a series, as the rule brains compute them on their look-back window.

They follow the TA-Lib build PhantomEx installs, as measured against it: its EMA step is a fused
multiply-add (``fma(x - ma, k, ma)``), its RSI divides by the period as a multiplication by the
reciprocal, and its RSI is 0 only when gains and losses are exactly 0. A TA-Lib build that
rounds otherwise fails the indicator test (and the research engine then falls out of step with
the brains, which the differential test shows).

Also the whole-series versions the research engine uses as a filter (an exact windowed check
runs only where the whole-series value is near a decision)."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _fma(typingctx: object, a: types.Type, b: types.Type, c: types.Type) -> tuple[object, object]:
    """``a * b + c`` rounded once (LLVM's ``llvm.fma.f64``)."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context: object, builder: ir.IRBuilder, signature: object, args: list) -> object:
        double = ir.DoubleType()
        fnty = ir.FunctionType(double, [double, double, double])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.fma.f64")
        return builder.call(fn, args)

    return sig, codegen


fma: Callable[[float, float, float], float] = _fma  # type: ignore[assignment]


@njit(cache=True, nogil=True, inline="always")
def _rsi_value(gain: float, s: float) -> float:
    """RSI from the average gain and gain + loss: 0 when both are 0 (TA-Lib's scale-aware zero
    test of a sum of non-negative terms is true only at exactly 0)."""
    return 100.0 * (gain / s) if s != 0.0 else 0.0


@njit(cache=True, nogil=True)
def sma_tail(x: np.ndarray, a: int, b: int, p: int) -> tuple[float, float]:
    """TA-Lib SMA(period ``p``) of ``x[a..b]``: its values at ``b - 1`` and ``b``."""
    total = 0.0
    i = a
    if p > 1:
        while i < a + p - 1:
            total += x[i]
            i += 1
    trailing = a
    prev = math.nan
    last = math.nan
    while i <= b:
        total += x[i]
        i += 1
        temp = total
        total -= x[trailing]
        trailing += 1
        prev = last
        last = temp / p
    return prev, last


@njit(cache=True, nogil=True)
def ema_tail(x: np.ndarray, a: int, b: int, p: int) -> tuple[float, float]:
    """TA-Lib EMA(period ``p``, k = 2 / (p + 1), seeded with the SMA of the first ``p``) of
    ``x[a..b]``: its values at ``b - 1`` and ``b``."""
    k = 2.0 / (p + 1)
    total = 0.0
    today = a
    for _ in range(p):
        total += x[today]
        today += 1
    ma = total / p
    prev = math.nan
    last = ma
    while today <= b:
        ma = fma(x[today] - ma, k, ma)
        today += 1
        prev = last
        last = ma
    return prev, last


@njit(cache=True, nogil=True)
def rsi_last(x: np.ndarray, a: int, b: int, p: int) -> float:
    """TA-Lib RSI(period ``p``, Wilder) of ``x[a..b]`` at ``b`` (needs ``b - a >= p``).

    TA-Lib's build divides by the period as a multiplication by its reciprocal (``* (1 / p)``,
    which rounds differently from ``/ p``): so does this."""
    r = 1.0 / p
    prev_value = x[a]
    gain = 0.0
    loss = 0.0
    today = a + 1
    for _ in range(p):
        v = x[today]
        today += 1
        d = v - prev_value
        prev_value = v
        if d < 0:
            loss -= d
        else:
            gain += d
    loss *= r
    gain *= r
    s = gain + loss
    out = _rsi_value(gain, s)
    while today <= b:
        v = x[today]
        today += 1
        d = v - prev_value
        prev_value = v
        loss *= p - 1
        gain *= p - 1
        if d < 0:
            loss -= d
        else:
            gain += d
        loss *= r
        gain *= r
        s = gain + loss
        out = _rsi_value(gain, s)
    return out


# -- whole series (the filter) -----------------------------------------------------------------
REANCHOR = 256  # a running sum is recomputed from scratch this often (bounded rounding drift)


@njit(cache=True, nogil=True)
def sma_series(x: np.ndarray, p: int) -> np.ndarray:
    """SMA(``p``) of the whole series by running sums re-anchored every :data:`REANCHOR` bars
    (NaN before index ``p - 1``); within ~1e-12 relative of TA-Lib's."""
    n = x.size
    out = np.full(n, np.nan)
    if n < p:
        return out
    total = 0.0
    for j in range(p):
        total += x[j]
    out[p - 1] = total / p
    for i in range(p, n):
        if (i - p) % REANCHOR == 0:
            total = 0.0
            for j in range(i - p + 1, i + 1):
                total += x[j]
        else:
            total += x[i] - x[i - p]
        out[i] = total / p
    return out


@njit(cache=True, nogil=True)
def ema_series(x: np.ndarray, p: int) -> np.ndarray:
    """TA-Lib EMA(``p``) of the whole series (NaN before index ``p - 1``)."""
    n = x.size
    out = np.full(n, np.nan)
    if n < p:
        return out
    k = 2.0 / (p + 1)
    total = 0.0
    for j in range(p):
        total += x[j]
    ma = total / p
    out[p - 1] = ma
    for i in range(p, n):
        ma = fma(x[i] - ma, k, ma)
        out[i] = ma
    return out


@njit(cache=True, nogil=True)
def rsi_series(x: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """TA-Lib RSI(``p``) of the whole series and its average gain + loss at each bar (NaN
    before index ``p``), with :func:`rsi_last`'s arithmetic."""
    n = x.size
    r = 1.0 / p
    out = np.full(n, np.nan)
    sums = np.full(n, np.nan)
    if n <= p:
        return out, sums
    gain = 0.0
    loss = 0.0
    for i in range(1, n):
        d = x[i] - x[i - 1]
        if i <= p:
            if d < 0:
                loss -= d
            else:
                gain += d
            if i < p:
                continue
            loss *= r
            gain *= r
        else:
            loss *= p - 1
            gain *= p - 1
            if d < 0:
                loss -= d
            else:
                gain += d
            loss *= r
            gain *= r
        s = gain + loss
        sums[i] = s
        out[i] = _rsi_value(gain, s)
    return out, sums
