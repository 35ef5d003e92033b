"""What the stand-in does with the orders it is given: scripted per order, in arrival order."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

__all__ = ["Behaviour", "Disconnect", "Fill", "Hold", "Partial", "Reject"]


@dataclass(frozen=True, slots=True)
class Fill:
    """Fill the whole order at the current price (the default)."""


@dataclass(frozen=True, slots=True)
class Partial:
    """Fill ``now`` shares at once; the rest fills at the symbol's next price."""

    now: Decimal


@dataclass(frozen=True, slots=True)
class Hold:
    """Accept the order and leave it working, unfilled, until it is cancelled."""


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse the order with IB's error 201."""

    reason: str = "YOUR ORDER IS NOT ACCEPTED. THE ORDER SIZE IS TOO LARGE"


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Accept and fill the order, then drop every connection before a word is answered (the
    client's answer is lost; the order executed)."""


Behaviour = Fill | Partial | Hold | Reject | Disconnect
