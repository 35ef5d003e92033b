"""``phantomex mcp``: the server's MCP tools on stdio, for desktop assistants.

A desktop assistant starts a local process and speaks MCP on its stdin/stdout. This process
holds no state and no tools of its own: it forwards every request to ``/mcp`` of the running
server (the profile's URL, with its token), so the tools, the toolset and the auth are the
server's, and a stdio session and an HTTP session see exactly the same thing."""

from __future__ import annotations

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.stdio import stdio_server
from mcp_types import (
    CallToolRequestParams,
    CallToolResult,
    ListResourcesResult,
    ListToolsResult,
    PaginatedRequestParams,
    ReadResourceRequestParams,
    ReadResourceResult,
)

from phantomex import __version__
from phantomex.mcp_server.http import PATH

TIMEOUT = httpx2.Timeout(30.0, read=600.0)  # a tool may wait for the kernel's lock


async def serve_stdio(base_url: str, token: str | None) -> None:
    """Serve stdio until the assistant closes it, forwarding to ``base_url``'s ``/mcp``."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=TIMEOUT) as http,
        Client(streamable_http_client(base_url.rstrip("/") + PATH, http_client=http)) as remote,
    ):

        async def list_tools(
            ctx: ServerRequestContext[object], params: PaginatedRequestParams | None
        ) -> ListToolsResult:
            return await remote.list_tools(cursor=params.cursor if params else None)

        async def call_tool(
            ctx: ServerRequestContext[object], params: CallToolRequestParams
        ) -> CallToolResult:
            return await remote.call_tool(params.name, params.arguments or {})

        async def list_resources(
            ctx: ServerRequestContext[object], params: PaginatedRequestParams | None
        ) -> ListResourcesResult:
            return await remote.list_resources(cursor=params.cursor if params else None)

        async def read_resource(
            ctx: ServerRequestContext[object], params: ReadResourceRequestParams
        ) -> ReadResourceResult:
            return await remote.read_resource(str(params.uri))

        server: Server[object] = Server(
            "phantomex",
            version=__version__,
            instructions=remote.instructions,
            on_list_tools=list_tools,
            on_call_tool=call_tool,
            on_list_resources=list_resources,
            on_read_resource=read_resource,
        )
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
