"""Technical indicators for the rule brains: thin wrappers over TA-Lib on float64 arrays.

The reference semantics are TA-Lib's own (with its default "unstable period" of 0): ``rsi`` is
Wilder's RSI, whose first value is at index ``period`` (index 14 for RSI(14)); ``sma`` and ``ema``
have their first value at index ``period - 1`` (the EMA is seeded with the SMA of the first
``period`` values). Earlier positions are NaN, as are all positions when the input is too short.
Money never goes through these functions: floats are for indicators only. TA-Lib (which
imports pandas when it is installed) is imported on the first indicator computed, so code that
only needs these types (the research engine, the CLI) starts without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def as_float_array(values: Sequence[float] | npt.ArrayLike) -> FloatArray:
    """``values`` as a contiguous one-dimensional float64 array (what TA-Lib requires)."""
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"expected a one-dimensional series, got shape {array.shape}")
    return array


_TALIB: dict[str, Callable[..., FloatArray]] = {}


def _talib(name: str) -> Callable[..., FloatArray]:
    """TA-Lib's function ``name`` itself, without the wrapper that looks for pandas and polars
    series among its arguments (these are always float64 arrays): the same computation, without
    the overhead on every decision."""
    found = _TALIB.get(name)
    if found is None:
        import talib

        wrapped = getattr(talib, name)
        found = _TALIB[name] = getattr(wrapped, "__wrapped__", wrapped)
    return found


def _check_period(period: int, minimum: int) -> None:
    if isinstance(period, bool) or not isinstance(period, int) or period < minimum:
        raise ValueError(f"period must be an integer >= {minimum}, got {period!r}")


def rsi(closes: Sequence[float] | npt.ArrayLike, period: int = 14) -> FloatArray:
    """Wilder's Relative Strength Index (0-100) as TA-Lib computes it.

    A series that never moves has RSI 0 in TA-Lib (no gain, no loss); callers that care should
    check for a flat series themselves."""
    _check_period(period, 2)
    result: FloatArray = _talib("RSI")(as_float_array(closes), timeperiod=period)
    return result


def sma(closes: Sequence[float] | npt.ArrayLike, period: int) -> FloatArray:
    """Simple moving average over ``period`` values."""
    _check_period(period, 2)
    result: FloatArray = _talib("SMA")(as_float_array(closes), timeperiod=period)
    return result


def ema(closes: Sequence[float] | npt.ArrayLike, period: int) -> FloatArray:
    """Exponential moving average (k = 2 / (period + 1)), seeded with the first SMA."""
    _check_period(period, 2)
    result: FloatArray = _talib("EMA")(as_float_array(closes), timeperiod=period)
    return result


def moving_average(closes: Sequence[float] | npt.ArrayLike, period: int, kind: str) -> FloatArray:
    """``sma`` or ``ema`` by name."""
    if kind == "sma":
        return sma(closes, period)
    if kind == "ema":
        return ema(closes, period)
    raise ValueError(f"unknown moving average {kind!r} (expected 'sma' or 'ema')")


def coefficient_of_variation(values: Sequence[float] | npt.ArrayLike) -> float:
    """Population standard deviation divided by the mean (0.05 = 5 % dispersion).

    NaN when it is undefined: an empty series, a non-finite value, or a mean that is not
    strictly positive (prices are positive, so that only happens with bad data)."""
    array = as_float_array(values)
    if array.size == 0 or not np.isfinite(array).all():
        return math.nan
    mean = float(array.mean())
    if mean <= 0:
        return math.nan
    return float(array.std()) / mean


def is_clean_series(values: FloatArray) -> bool:
    """Every value is finite and strictly positive (a usable price series)."""
    return bool(values.size) and bool(np.isfinite(values).all()) and bool((values > 0).all())
