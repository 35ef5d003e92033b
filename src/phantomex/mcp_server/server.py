"""Build the MCP server of a running PhantomEx: its tools over the command-and-query layer."""

from __future__ import annotations

from phantomex.mcp_server import resources, tools_agents, tools_research
from phantomex.mcp_server.registry import PhantomexMCP
from phantomex.mcp_server.toolsets import Toolset
from phantomex.research.jobs import JobRunner
from phantomex.service import Service
from phantomex.sessions.manager import SessionManager


def build_mcp(
    service: Service, sessions: SessionManager, jobs: JobRunner, toolset: Toolset
) -> PhantomexMCP:
    """The MCP server with the tools ``toolset`` admits (the others refused by name)."""
    mcp = PhantomexMCP(toolset)
    tools_agents.register(mcp, service)
    tools_research.register(mcp, jobs, sessions)
    resources.register(mcp)
    return mcp
