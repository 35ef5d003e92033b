"""Tool calls a model wrote as text instead of calling them (small models in tool mode print
``[{"name": "get_portfolio", ...}, {"name": "place_order", ...}]``): a plan, never an order.

The brain reads such an answer as "this model cannot call tools": it answers without tools from
then on (remembered in the agent's state), and nothing in the plan is executed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["tool_names", "written_tool_calls"]


def tool_names(specs: Iterable[Mapping[str, Any]]) -> list[str]:
    """The names of tools in the OpenAI function format (or bare ``{"name": ...}``)."""
    names = []
    for spec in specs:
        function = spec.get("function")
        name = function.get("name") if isinstance(function, Mapping) else spec.get("name")
        if isinstance(name, str) and name:
            names.append(name)
    return names


def written_tool_calls(text: str | None, names: Iterable[str]) -> list[str]:
    """The tools ``text`` calls in writing, in order of first mention: a JSON ``"name":
    "<tool>"`` (also single-quoted, or as ``"function"``/``"tool"``), or ``<tool>(``."""
    wanted = sorted(set(names), key=len, reverse=True)
    if not text or not wanted:
        return []
    alternatives = "|".join(re.escape(n) for n in wanted)
    pattern = re.compile(
        rf"""["']?(?:name|function|tool)["']?\s*[:=]\s*["']({alternatives})["']"""
        rf"|\b({alternatives})\s*\(",
        re.IGNORECASE,
    )
    found: list[str] = []
    for match in pattern.finditer(text):
        name = (match.group(1) or match.group(2)).lower()
        if name not in found:
            found.append(name)
    return found
