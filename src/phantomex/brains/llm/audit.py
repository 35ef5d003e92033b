"""The audit trail and answer cache of a decision's LLM calls."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from phantomex.serialize import jsonable

#: The fields of each call the ``llm`` event carries.
LLM_CALL_SUMMARY = ("endpoint", "model", "purpose", "latency_seconds", "error", "cached")


class CallStore(Protocol):
    """Where the calls and cached answers go (the kernel's store)."""

    def add_llm_calls(
        self, decision_id: str, agent_id: str, time: datetime, calls: list[dict[str, Any]]
    ) -> None: ...

    def cache_put(self, key: str, response: dict[str, Any], when: datetime) -> None: ...


def jsonable_call(call: dict[str, Any]) -> dict[str, Any]:
    """An LLM call record ready for the store: JSON-safe except its money and time fields."""
    return {k: (v if k in ("cost", "time") else jsonable(v)) for k, v in call.items()}


def record_calls(
    store: CallStore, decision_id: str, agent_id: str, when: datetime, calls: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Store the calls behind a decision and cache their answers; returns their summaries (the
    ``llm`` event's ``calls``)."""
    store.add_llm_calls(decision_id, agent_id, when, [jsonable_call(c) for c in calls])
    for call in calls:
        if call.get("cache_entry") is not None and call.get("cache_key"):
            store.cache_put(call["cache_key"], call["cache_entry"], when)
    return [{k: c.get(k) for k in LLM_CALL_SUMMARY} for c in calls]
