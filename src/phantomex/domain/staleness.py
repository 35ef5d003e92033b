"""The age of a decision when it is applied: a slow model's answer may come long after the
market it was asked about (a replay at 60x with a 2-minute model: two market hours).

:func:`age_checked` is what the kernel applies to a background decision when it arrives: the
prompt's market time and the applied time go to ``meta`` (stored with the decision), and a
trade decided on a market older than its limit becomes a recorded stale hold. The limit is the
decision's own ``meta["max_age_seconds"]`` (an LLM agent's setting), else one decision interval
of market time.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from phantomex.domain.models import Action, Decision

__all__ = ["MAX_AGE_KEY", "age_checked"]

#: the ``Decision.meta`` key a brain sets to choose its own age limit, in seconds
MAX_AGE_KEY = "max_age_seconds"


def age_checked(
    decision: Decision, asked_at: datetime, now: datetime, interval_seconds: float
) -> Decision:
    """``decision`` with ``prompt_time``, ``applied_time`` and ``age_seconds`` in its meta;
    a buy or sell older than its limit is a hold that says so (``meta["stale"]``), keeping
    every other meta entry (the LLM calls, the warnings)."""
    age = (now - asked_at).total_seconds()
    limit = float(decision.meta.get(MAX_AGE_KEY) or interval_seconds)
    meta = {
        **decision.meta,
        "prompt_time": asked_at.isoformat(),
        "applied_time": now.isoformat(),
        "age_seconds": age,
    }
    if decision.action is Action.HOLD or age <= limit:
        return replace(decision, meta=meta)
    what = f"{decision.action.value} {decision.symbol or ''}".strip()
    return Decision.hold(
        f"stale: decided on the market of {asked_at.isoformat()}, {age:g}s of market time "
        f"before it arrived (limit {limit:g}s); the {what} was not applied. Its reasoning: "
        f"{decision.reasoning}",
        **meta,
        stale={"action": decision.action.value, "symbol": decision.symbol},
    )
