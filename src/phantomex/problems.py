"""What start-up skipped: a stored agent or LLM endpoint, a market source or a setting that could
not be used. The server starts without it; each one is logged and listed in ``/health`` (and so
in ``phantomex status`` and the dashboard) with how to fix or delete it."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Problem:
    """One skipped item: what it is, why it was skipped and how to fix it."""

    kind: str  # agent | llm_endpoint | source | setting
    name: str
    reason: str
    id: str | None = None
    fix: str = ""

    @property
    def key(self) -> str:
        return self.id or self.name


class Problems:
    """The items skipped at start-up, in the order they were found."""

    def __init__(self) -> None:
        self._items: list[Problem] = []

    def add(self, problem: Problem) -> None:
        """Record (and log) ``problem``; one found again replaces the earlier record."""
        known = self.find(problem.kind, problem.key)
        if known is not None:
            self._items[self._items.index(known)] = problem
            return
        log.warning(
            "skipped %s %r: %s%s",
            problem.kind,
            problem.name,
            problem.reason,
            f" ({problem.fix})" if problem.fix else "",
        )
        self._items.append(problem)

    def find(self, kind: str, key: str) -> Problem | None:
        """The problem of ``kind`` whose id (or, without one, name) is ``key``."""
        return next((p for p in self._items if p.kind == kind and p.key == key), None)

    def remove(self, problem: Problem) -> None:
        self._items.remove(problem)

    def __iter__(self) -> Iterator[Problem]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)


def error_text(error: Mapping[str, Any]) -> str:
    """One pydantic error as ``field: message`` (its input is never shown: it may be secret)."""
    where = ".".join(str(p) for p in error.get("loc", ()))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def reason_of(exc: BaseException) -> str:
    """A short reason for a log line and ``/health``: a validation error's messages by field,
    else the exception's text."""
    if isinstance(exc, ValidationError):
        return "; ".join(error_text(e) for e in exc.errors(include_input=False))
    return str(exc) or type(exc).__name__
