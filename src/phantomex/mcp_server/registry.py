"""The MCP server object: tools registered by kind, filtered by the toolset, refusals explained."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.context import Context
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import CallToolResult, ToolAnnotations

from phantomex import __version__
from phantomex.mcp_server.errors import explained, tool_error, translate
from phantomex.mcp_server.guide import INSTRUCTIONS
from phantomex.mcp_server.toolsets import Kind, Toolset
from phantomex.mcp_server.untrusted import NOTICE

IRREVERSIBLE = "IRREVERSIBLE: "


class PhantomexMCP(MCPServer[Any]):
    """An MCP server that knows which tools its toolset leaves out, and says so when one is
    called (instead of the SDK's bare "unknown tool")."""

    def __init__(self, toolset: Toolset) -> None:
        super().__init__("phantomex", version=__version__, instructions=INSTRUCTIONS)
        self.toolset = toolset
        self.refused: dict[str, Kind] = {}

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> Any:
        kind = self.refused.get(name)
        if kind is not None:
            raise tool_error(
                "forbidden",
                f"{name} is a {kind} tool; this server offers the {self.toolset} toolset "
                "(the server's owner sets `mcp_toolset`)",
            )
        try:
            result: CallToolResult | Any = await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            raise  # a crash: its text stays in the server's log
        except ToolError as exc:
            # the SDK prefixes "Error executing tool NAME: "; answer with the API's error body
            cause = exc.__cause__
            if isinstance(cause, ToolError):
                raise ToolError(str(cause)) from cause
            known = translate(cause) if isinstance(cause, Exception) else None
            if known is not None:
                raise known from cause
            raise
        return result

    def add(
        self,
        kind: Kind,
        fn: Callable[..., Awaitable[Any]],
        description: str,
        *,
        irreversible: bool = False,
        untrusted: bool = False,
    ) -> None:
        """Register ``fn`` as a tool named after it, if the toolset admits ``kind``."""
        name = fn.__name__
        if not self.toolset.admits(kind):
            self.refused[name] = kind
            return
        text = (IRREVERSIBLE if irreversible else "") + description
        if untrusted:
            text += " " + NOTICE
        annotations = ToolAnnotations(
            read_only_hint=kind is Kind.READ,
            destructive_hint=irreversible,
            open_world_hint=False,
        )
        self.add_tool(explained(fn), name=name, description=text, annotations=annotations)
