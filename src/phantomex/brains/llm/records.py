"""The audit-trail and cache forms of a model call: what the brain records of each call
(``decision.meta["llm_calls"]``), and the response-cache entry a replay answers from."""

from __future__ import annotations

import json
from typing import Any

from phantomex.brains.llm.types import ChatResult, StructuredMode, ToolCall
from phantomex.domain.models import Decision

__all__ = ["cache_entry", "parsed", "result_fields", "result_from_cache"]


def tool_calls_json(calls: list[ToolCall]) -> list[dict[str, Any]]:
    out = []
    for c in calls:
        item: dict[str, Any] = {"name": c.name, "arguments": c.arguments, "id": c.id}
        if c.arguments_error:
            item["arguments_error"] = c.arguments_error
        out.append(item)
    return out


def result_fields(result: ChatResult) -> dict[str, Any]:
    raw = result.content
    fields: dict[str, Any] = {}
    if result.tool_calls:  # the audit trail shows what the model called
        tool_calls = tool_calls_json(result.tool_calls)
        fields["tool_calls"] = tool_calls
        shown = json.dumps({"tool_calls": tool_calls}, default=str)
        raw = f"{raw}\n{shown}" if raw else shown
    return {
        "mode": result.mode.value,
        "form": result.form,
        "raw_response": raw,
        "thinking": result.thinking,
        "latency_seconds": result.latency_seconds,
        "tokens_in": result.tokens_in,
        "tokens_out": result.tokens_out,
        **fields,
    }


def cache_entry(result: ChatResult) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "content": result.content,
        "thinking": result.thinking,
        "mode": result.mode.value,
        "tokens_in": result.tokens_in,
        "tokens_out": result.tokens_out,
    }
    if result.tool_calls:
        entry["tool_calls"] = tool_calls_json(result.tool_calls)
    return entry


def result_from_cache(entry: dict[str, Any]) -> ChatResult:
    calls = [
        ToolCall(
            name=str(c.get("name") or ""),
            arguments=dict(c.get("arguments") or {}),
            id=c.get("id"),
            arguments_error=c.get("arguments_error"),
        )
        for c in entry.get("tool_calls") or []
        if isinstance(c, dict)
    ]
    return ChatResult(
        content=entry.get("content") or "",
        mode=StructuredMode(entry.get("mode", StructuredMode.PROMPT.value)),
        latency_seconds=0.0,
        thinking=entry.get("thinking"),
        tool_calls=calls,
        tokens_in=entry.get("tokens_in"),
        tokens_out=entry.get("tokens_out"),
    )


def parsed(decision: Decision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    return {
        "action": decision.action.value,
        "symbol": decision.symbol,
        "quantity": str(decision.quantity) if decision.quantity is not None else None,
        "notional": str(decision.notional) if decision.notional is not None else None,
        "confidence": decision.confidence,
        "reasoning": decision.reasoning,
    }
