"""LLM endpoints added at run time (API or dashboard), kept in the store's kernel state.

The API adds and removes them; the server and ``phantomex backtest`` load them at start-up."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from phantomex.brains.llm.types import EndpointConfig
from phantomex.problems import Problem, Problems, reason_of
from phantomex.secrets import SecretBox
from phantomex.store.port import KernelStore

__all__ = ["SAVED_KEY", "load_saved", "save_endpoint", "stored_endpoints"]

SAVED_KEY = "llm_endpoints"


FIX = "delete it (DELETE /api/llm/endpoints/NAME, or the dashboard) and add it again"


def stored_endpoints(store: KernelStore) -> list[dict[str, Any]]:
    """The stored entries as they are (API keys encrypted; unreadable ones included)."""
    return list((store.get_state(SAVED_KEY) or {}).get("endpoints", []))


def load_saved(
    store: KernelStore, box: SecretBox, problems: Problems | None = None
) -> list[EndpointConfig]:
    """Endpoints added through the API (their API keys decrypted). One that is no longer valid
    is skipped (logged, and listed in ``problems``); it stays stored until deleted or replaced."""
    problems = problems if problems is not None else Problems()
    out = []
    for i, entry in enumerate(stored_endpoints(store)):
        data = dict(entry)
        name = str(data.get("name") or f"#{i + 1}")
        token = data.pop("api_key_encrypted", None)
        data.pop("has_api_key", None)
        try:
            key = SecretStr(box.decrypt(token)) if token else None
            out.append(EndpointConfig(**data, api_key=key))
        except Exception as exc:  # one stored endpoint never stops the server
            problems.add(Problem("llm_endpoint", name, reason_of(exc), fix=FIX))
    return out


def save_endpoint(
    store: KernelStore, box: SecretBox, *, put: EndpointConfig | None = None, drop: str = ""
) -> None:
    """Store ``put`` (replacing an entry of its name) or forget the entry named ``drop``;
    the other stored entries, even unreadable ones, are kept as they are."""
    gone = {drop, put.name if put else ""}
    entries = [e for e in stored_endpoints(store) if e.get("name") not in gone]
    if put is not None:
        data = put.public()
        data.pop("has_api_key")
        if put.api_key is not None:
            data["api_key_encrypted"] = box.encrypt(put.api_key.get_secret_value())
        entries.append(data)
    store.set_state(SAVED_KEY, {"endpoints": sorted(entries, key=lambda e: str(e.get("name")))})
