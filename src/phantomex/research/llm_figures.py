"""What an LLM agent's backtest says about its model: the figures of its calls.

:func:`llm_figures` reads the calls the kernel stored (``Store.add_llm_calls``: purpose, error,
cached, tokens, latency, parsed answer, per decision) and gives decisions, valid first try,
repaired, bad-output holds, failed calls, timeouts, cache hits, tokens in/out, latency
p50/p95 and each decision's answer with its reasoning (a backtest's store lives in memory:
without this the reasoning is lost with it).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["llm_figures", "llm_summary_line"]

_ANSWERS = ("decide", "tool")


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 3)


def llm_figures(calls: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The figures of one agent's LLM calls (in the order they were made)."""
    by_decision: dict[str, list[dict[str, Any]]] = {}
    for call in calls:
        by_decision.setdefault(str(call.get("decision_id")), []).append(call)
    figures: dict[str, Any] = dict.fromkeys(
        (
            "decisions",
            "valid_first_try",
            "repaired",
            "bad_output_holds",
            "failed_calls",
            "timeouts",
            "cache_hits",
            "calls",
            "tokens_in",
            "tokens_out",
        ),
        0,
    )
    latencies: list[float] = []
    answers: list[dict[str, Any]] = []
    for group in by_decision.values():
        first = next((c for c in group if c.get("purpose") in _ANSWERS), None)
        if first is None:
            continue  # a reflection alone
        figures["decisions"] += 1
        repairs = [c for c in group if c.get("purpose") == "repair"]
        if not first.get("error"):
            figures["valid_first_try"] += 1
        if repairs and not repairs[-1].get("error"):
            figures["repaired"] += 1
        if repairs and repairs[-1].get("error"):
            figures["bad_output_holds"] += 1
        last = next((c for c in reversed(group) if c.get("parsed")), None)
        answer = (last or {}).get("parsed") or {}
        answers.append(
            {
                "time": first.get("time"),
                "action": answer.get("action"),
                "symbol": answer.get("symbol"),
                "reasoning": answer.get("reasoning"),
                "error": None if last else first.get("error"),
            }
        )
    for group in by_decision.values():
        for call in group:
            figures["calls"] += 1
            error = str(call.get("error") or "")
            if error.startswith("timeout"):
                figures["timeouts"] += 1
            elif error and not error.startswith(("invalid output", "tool")):
                figures["failed_calls"] += 1
            if call.get("cached"):
                figures["cache_hits"] += 1
            else:
                latencies.append(float(call.get("latency_seconds") or 0.0))
            figures["tokens_in"] += int(call.get("tokens_in") or 0)
            figures["tokens_out"] += int(call.get("tokens_out") or 0)
    figures["latency_p50_seconds"] = _quantile(latencies, 0.5)
    figures["latency_p95_seconds"] = _quantile(latencies, 0.95)
    figures["answers"] = answers
    return figures


def llm_summary_line(figures: dict[str, Any]) -> str:
    """One line for a text report."""
    p50, p95 = figures["latency_p50_seconds"], figures["latency_p95_seconds"]
    latency = f"latency p50 {p50:g} s, p95 {p95:g} s" if p50 is not None else "no live calls"
    return (
        f"LLM: {figures['decisions']} decisions, {figures['valid_first_try']} valid first try, "
        f"{figures['repaired']} repaired, {figures['bad_output_holds']} bad-output holds, "
        f"{figures['timeouts']} timeouts, {figures['failed_calls']} failed calls, "
        f"{figures['cache_hits']}/{figures['calls']} calls from the cache, tokens "
        f"{figures['tokens_in']} in / {figures['tokens_out']} out, {latency}"
    )
