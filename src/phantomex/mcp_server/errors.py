"""Tool errors with the REST API's meaning: ``{"code", "message", "field"}`` as the error text."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import ValidationError

from phantomex.brains.registry import UnknownEndpointError, UnknownStrategyError
from phantomex.kernel.runtime import KernelError
from phantomex.research.jobs import JobNotFound
from phantomex.research.spec import BacktestError
from phantomex.sessions.leaderboard import LeaderboardError

P = ParamSpec("P")
R = TypeVar("R")


def tool_error(code: str, message: str, field: str | None = None) -> ToolError:
    """A tool failure an assistant can act on: the same body as the API's 4xx answers."""
    return ToolError(json.dumps({"error": {"code": code, "message": message, "field": field}}))


def translate(exc: Exception) -> ToolError | None:
    """The tool error of a known failure (``None``: not ours to explain)."""
    if isinstance(exc, KernelError):
        return tool_error(exc.code, str(exc), exc.field)
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ())) or None
        msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
        return tool_error("validation_error", f"{field}: {msg}" if field else msg, field)
    if isinstance(exc, UnknownStrategyError):
        return tool_error("unknown_strategy", str(exc), "brain")
    if isinstance(exc, UnknownEndpointError):
        return tool_error("unknown_endpoint", str(exc), "llm.endpoint")
    if isinstance(exc, JobNotFound):
        return tool_error("not_found", str(exc), "job_id")
    if isinstance(exc, BacktestError | LeaderboardError):
        return tool_error("invalid", str(exc))
    return None


def explained(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """``fn`` with its known failures turned into :func:`tool_error`s."""

    @wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except ToolError:
            raise
        except Exception as exc:
            err = translate(exc)
            if err is None:
                raise
            raise err from exc

    return wrapper


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
