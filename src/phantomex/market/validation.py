"""What makes a price or a candle usable: one rule for bar files read from disk and for every
price a source hands the kernel (see :mod:`phantomex.market.guard`).

A price is usable when it is finite, strictly positive and below the price ceiling (default
:data:`~phantomex.domain.money.MAX_PRICE`, 1e12: nothing trades above it, so a bigger number
is garbage such as ``1E+400``). A candle is usable when its four prices are, ``low <= high``,
its open and close lie within ``[low, high]`` and its volume is finite and not negative.
"""

from __future__ import annotations

from decimal import Decimal

from phantomex.domain.money import MAX_PRICE

__all__ = ["bar_fault", "price_fault"]


def price_fault(label: str, value: Decimal, ceiling: Decimal = MAX_PRICE) -> str | None:
    """Why ``value`` (named ``label`` in the answer) is not a usable price, or None."""
    if not value.is_finite() or value <= 0:
        return f"{label} {value} is not a positive finite price"
    if value >= ceiling:
        return f"{label} {value} is not below the price ceiling {ceiling}"
    return None


def bar_fault(
    open_: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: Decimal,
    ceiling: Decimal = MAX_PRICE,
) -> str | None:
    """Why a candle is not usable (naming the field at fault), or None."""
    for label, price in (("open", open_), ("high", high), ("low", low), ("close", close)):
        fault = price_fault(label, price, ceiling)
        if fault:
            return fault
    if high < low:
        return f"high {high} < low {low}"
    for label, price in (("open", open_), ("close", close)):
        if not low <= price <= high:
            return f"{label} {price} is outside [low {low}, high {high}]"
    if not volume.is_finite() or volume < 0:
        return f"invalid volume {volume}"
    return None
