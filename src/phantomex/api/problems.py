"""What start-up skipped, as ``/health`` shows it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fastapi import Request

from phantomex.api.auth import gate_of
from phantomex.service import Queries

#: The API path (method DELETE) that removes a skipped item of each kind.
DELETE_PATHS = {"agent": "/api/agents/{}", "llm_endpoint": "/api/llm/endpoints/{}"}


def problems_view(queries: Queries, request: Request) -> list[dict[str, Any]]:
    """Each skipped item with its reason, fix and delete path. When auth is on and the request
    is not authenticated, only the kinds are shown (``/health`` is open to anyone)."""
    problems = queries.problems()
    if not problems:
        return []
    gate = gate_of(request.app)
    shown = not gate.enabled() or gate.identify(request.headers).method is not None
    out = []
    for problem in problems:
        if not shown:
            out.append({"kind": problem.kind})
            continue
        path = DELETE_PATHS.get(problem.kind)
        row: dict[str, Any] = asdict(problem)
        row["delete"] = path.format(problem.key) if path else None
        out.append(row)
    return out
