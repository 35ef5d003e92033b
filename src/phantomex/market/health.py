"""How a market source is doing: when it last answered, whether its prices are stale, its errors.

Every feed keeps one :class:`SourceHealth` and updates it as it polls; the API and CLI list them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol


@dataclass
class SourceHealth:
    """Health of one source (``coingecko``, ``ccxt:binance``, ``replay`` ...)."""

    source: str
    stale_after: timedelta = timedelta(minutes=3)
    last_update: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    errors: int = 0
    consecutive_errors: int = 0
    symbols: list[str] = field(default_factory=list)

    def ok(self, when: datetime) -> None:
        """A good answer arrived at ``when``."""
        self.last_update = when
        self.consecutive_errors = 0

    def failed(self, when: datetime, error: str) -> None:
        """A request failed; prices already known stay, marked stale once they age."""
        self.last_error, self.last_error_at = error, when
        self.errors += 1
        self.consecutive_errors += 1

    def stale(self, now: datetime) -> bool:
        return self.last_update is None or now - self.last_update > self.stale_after

    def as_dict(self, now: datetime) -> dict[str, Any]:
        age = None if self.last_update is None else (now - self.last_update).total_seconds()
        return {
            "source": self.source,
            "last_update": self.last_update.isoformat() if self.last_update else None,
            "age_seconds": age,
            "stale": self.stale(now),
            "stale_after_seconds": self.stale_after.total_seconds(),
            "errors": self.errors,
            "consecutive_errors": self.consecutive_errors,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
            "symbols": list(self.symbols),
        }


class HasHealth(Protocol):
    """A feed that reports its health (every feed should)."""

    def health(self) -> list[SourceHealth]: ...
