"""What start-up skipped, as ``/health`` shows it, and deleting a skipped agent."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from fastapi import Request

from phantomex.api.auth import gate_of
from phantomex.domain.models import OrderStatus
from phantomex.kernel.runtime import Kernel
from phantomex.problems import Problem

#: The API path (method DELETE) that removes a skipped item of each kind.
DELETE_PATHS = {"agent": "/api/agents/{}", "llm_endpoint": "/api/llm/endpoints/{}"}


def problems_view(kernel: Kernel, request: Request) -> list[dict[str, Any]]:
    """Each skipped item with its reason, fix and delete path. When auth is on and the request
    is not authenticated, only the kinds are shown (``/health`` is open to anyone)."""
    if not len(kernel.problems):
        return []
    gate = gate_of(request.app)
    shown = not gate.enabled() or gate.identify(request.headers).method is not None
    out = []
    for problem in kernel.problems:
        if not shown:
            out.append({"kind": problem.kind})
            continue
        path = DELETE_PATHS.get(problem.kind)
        row: dict[str, Any] = asdict(problem)
        row["delete"] = path.format(problem.key) if path else None
        out.append(row)
    return out


def delete_skipped_agent(kernel: Kernel, problem: Problem) -> None:
    """Delete an agent that start-up skipped (call it holding the kernel's lock): it leaves
    every list, its resting orders are cancelled, its trades stay for the audit."""
    assert problem.kind == "agent" and problem.id is not None
    with kernel.unit():
        for order in kernel.store.open_orders():
            if order.agent_id == problem.id:
                kernel.store.save_order(order, OrderStatus.CANCELLED)
        kernel.store.delete_agent(problem.id, kernel.now or datetime.now(UTC))
    kernel.problems.remove(problem)
