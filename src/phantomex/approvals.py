"""How a pending approval reads to a person: its deadline and the decisions waiting behind it.

One wording for the CLI and Telegram (the dashboard's approval card says the same). While a
person has an agent's decision to answer, the agent's newer actionable decisions are held and
counted on the pending decision as ``meta["waiting_behind"]`` (see the kernel)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


def waiting_behind(decision: Mapping[str, Any]) -> int:
    """How many newer decisions of the agent are held until the person answers this one."""
    meta = decision.get("meta") or {}
    return int(meta.get("waiting_behind") or 0)


def waiting_text(count: int) -> str:
    """'no newer decision waiting', '1 newer decision waiting behind it', '3 newer …'."""
    if count <= 0:
        return "no newer decision waiting"
    return f"{count} newer decision{'' if count == 1 else 's'} waiting behind it"


def countdown(seconds: float) -> str:
    """Seconds left as m:ss (the dashboard's countdown), 'expired' when none are left."""
    if seconds <= 0:
        return "expired"
    total = math.ceil(seconds)
    return f"{total // 60}:{total % 60:02d}"


def deadline_text(expires_at: datetime | str | None, now: datetime) -> str:
    """'expires in 4:52 (14:05:09 UTC)' at wall time ``now``; 'no expiry' without one."""
    if expires_at is None:
        return "no expiry"
    at = datetime.fromisoformat(expires_at) if isinstance(expires_at, str) else expires_at
    at = at.astimezone(UTC)
    left = countdown((at - now).total_seconds())
    clock = at.strftime("%H:%M:%S UTC")
    return f"expired at {clock}" if left == "expired" else f"expires in {left} ({clock})"


def pending_summary(decision: Mapping[str, Any], now: datetime) -> str:
    """The deadline and the decisions held behind a pending decision (a decision as JSON)."""
    deadline = deadline_text(decision.get("expires_at"), now)
    return f"{deadline}; {waiting_text(waiting_behind(decision))}"
