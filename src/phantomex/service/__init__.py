"""The command-and-query layer: the one way front ends (REST, WebSocket, Telegram, the CLI
through the API, the MCP server) change and read the kernel's state.

``Service(kernel)`` bundles :class:`~phantomex.service.commands.Commands` (each takes the
kernel's lock itself) and :class:`~phantomex.service.queries.Queries` (typed read models)."""

from __future__ import annotations

from dataclasses import dataclass

from phantomex.kernel.runtime import Kernel
from phantomex.service.commands import Commands
from phantomex.service.queries import Queries

__all__ = ["Commands", "Queries", "Service"]


@dataclass(frozen=True, slots=True)
class Service:
    """The commands and queries over one kernel."""

    commands: Commands
    queries: Queries

    @classmethod
    def of(cls, kernel: Kernel, *, llm_static: frozenset[str] = frozenset()) -> Service:
        """The service over ``kernel``; ``llm_static``: the settings file's LLM endpoints."""
        return cls(Commands(kernel, llm_static=llm_static), Queries(kernel))
