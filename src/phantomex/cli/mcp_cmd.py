"""``phantomex mcp``: serve the running server's MCP tools on stdio (for desktop assistants)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import typer

from phantomex.cli.client import Api


def register(app: typer.Typer, api: Callable[[], Api]) -> None:
    @app.command("mcp")
    def mcp() -> None:
        """Speak MCP on stdin/stdout, forwarding to the server's /mcp (its tools, toolset and
        auth). Add to a desktop assistant as the command `phantomex mcp` (with --url or a
        profile to choose the server)."""
        from phantomex.mcp_server.bridge import serve_stdio

        client = api()
        token = client.headers.get("Authorization", "").removeprefix("Bearer ") or None
        asyncio.run(serve_stdio(client.url, token))
