"""Exact money and quantity arithmetic.

PhantomEx keeps every amount as :class:`decimal.Decimal`. Decimal is exact in base 10 (prices and
fees arrive as decimal strings), holds fractional crypto quantities without a fixed scale (the
reference backtest forbids rounding quantities), and is C-accelerated in CPython. Fixed-point
integers would force one scale on every instrument; floats cannot reconcile "to the last unit".
Ledger arithmetic runs in :data:`MONEY_CONTEXT` (28 significant digits, half-even, traps on
invalid operations), whatever another library did to the thread's context: ccxt, for one, sets
ROUND_HALF_UP on the current context, and a wallet must round exactly like its history's replay.
"""

from __future__ import annotations

import decimal
import functools
from collections.abc import Callable
from decimal import Decimal
from typing import Final, ParamSpec, TypeVar

ZERO: Final = Decimal(0)
ONE: Final = Decimal(1)
BPS: Final = Decimal(10_000)
MAX_PRICE: Final = Decimal("1e12")  # no instrument trades above this: a bigger price is garbage
MONEY_CONTEXT: Final = decimal.Context(
    prec=28,
    rounding=decimal.ROUND_HALF_EVEN,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)


def all_in_quantity(cash: Decimal, price: Decimal, fee_bps: Decimal) -> Decimal:
    """The quantity the whole ``cash`` buys at ``price``, its fee (``fee_bps``) included:
    the all-in sizing the risk engine and the brokers share."""
    return max(cash, ZERO) / (price * (1 + fee_bps / BPS))


P = ParamSpec("P")
R = TypeVar("R")


def money_math(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` (which must not change the context) in :data:`MONEY_CONTEXT` itself, the
    caller's context restored after it: what ``decimal.localcontext`` does, without copying
    the context on every call (a fill is one). Only its flags, which nothing reads, are
    shared (the price guard's ``MONEY_CONTEXT.multiply`` sets them too)."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        outer = decimal.getcontext()
        decimal.setcontext(MONEY_CONTEXT)
        try:
            return fn(*args, **kwargs)
        finally:
            decimal.setcontext(outer)

    return wrapper


def to_decimal(value: object) -> Decimal:
    """Convert ``value`` to a finite Decimal; floats go through ``repr`` so 0.1 stays 0.1."""
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, bool):
        raise ValueError("booleans are not amounts")
    elif isinstance(value, int | str):
        try:
            result = Decimal(value)
        except decimal.InvalidOperation as exc:
            raise ValueError(f"not a number: {value!r}") from exc
    elif isinstance(value, float):
        result = Decimal(repr(value))
    else:
        raise ValueError(f"not a number: {value!r}")
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


def is_valid_price(value: Decimal | None) -> bool:
    """A tradable price is present, finite, strictly positive and below :data:`MAX_PRICE`."""
    return value is not None and value.is_finite() and ZERO < value < MAX_PRICE


def quantize_down(value: Decimal, step: Decimal | None) -> Decimal:
    """Round ``value`` down to a multiple of ``step`` (no rounding when ``step`` is None)."""
    if step is None or step <= ZERO:
        return value
    return (value // step) * step
