"""The research engine on bars loaded as columns (:class:`~phantomex.market.columns.BarColumns`):
its arrays come straight from them, the price guard's check is done on the floats where they
decide it, and the exact kernel gets Decimal bars when it has to run instead."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from phantomex.domain.models import AssetClass, Bar
from phantomex.market.columns import BarColumns
from phantomex.market.guard import PriceGuard
from phantomex.research.fast import compiled

#: How far inside the jump rule's bounds a float must lie to decide it for the exact rule (the
#: exact bounds are Decimal quotients and products; floats are within 1e-15 of them).
MARGIN = 1e-9


def quiet(data: Mapping[str, Sequence[Bar]]) -> bool:
    """Whether the price guard accepts every bar (:meth:`PriceGuard.quiet`, backtests pricing
    every symbol as crypto); on columns decided from the floats unless a price lies within
    :data:`MARGIN` of a bound, then exactly."""
    guard = PriceGuard()
    config = guard.config
    if not config.enabled:
        return True
    jump = config.max_jump.get(AssetClass.CRYPTO)
    if all(
        isinstance(bars, BarColumns)
        and bars.ceiling <= config.max_price  # the loader's row rule is the guard's bar rule
        and (jump is None or _steady(bars, float(jump)))
        for bars in data.values()
    ):
        return True
    return guard.quiet(data, {})


def _steady(bars: BarColumns, jump: float) -> bool:
    """Whether every open and close lies well within ``jump`` times the previous close."""
    return bool(compiled.ACTIVE.steady(bars.values["open"], bars.values["close"], jump, MARGIN))


def materialised(data: Mapping[str, Sequence[Bar]]) -> dict[str, Sequence[Bar]]:
    """The bars as lists of :class:`Bar` (what the exact kernel walks, many times)."""
    return {s: list(b) if isinstance(b, BarColumns) else b for s, b in data.items()}
