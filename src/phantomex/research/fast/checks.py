"""The research engine's price checks as numba functions: one pass over a million prices."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def between(values: np.ndarray, low: float, high: float) -> bool:
    """Whether every value lies strictly between ``low`` and ``high`` (NaN does not)."""
    inside = True
    for k in range(values.size):  # an explicit loop: numba compiles it to one pass
        inside &= low < values[k] < high
    return inside


@njit(cache=True, nogil=True)
def steady(opens: np.ndarray, closes: np.ndarray, jump: float, margin: float) -> bool:
    """Whether every open and close lies within ``jump`` times the previous close, ``margin``
    inside the bounds (numpy's arithmetic, element by element)."""
    for k in range(1, closes.size):
        previous = closes[k - 1]
        lower = previous / jump * (1 + margin)
        upper = previous * jump * (1 - margin)
        if not (lower < opens[k] < upper and lower < closes[k] < upper):
            return False
    return True
