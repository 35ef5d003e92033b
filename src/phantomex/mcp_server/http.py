"""``/mcp`` on the running server: the MCP tools over streamable HTTP, behind the server's auth.

The route is added when the app is made; the MCP server itself is built in the app's lifespan
(it needs the running kernel's command-and-query layer) and its session manager runs for the
lifespan. The server's auth gate covers ``/mcp`` like every API path (a bearer token when auth
is on); on a loopback server the SDK also refuses foreign Host/Origin headers (DNS rebinding)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from phantomex.mcp_server.registry import PhantomexMCP

PATH = "/mcp"


def install(app: FastAPI) -> None:
    """Route ``/mcp`` to the MCP server the lifespan starts (503 until it runs)."""

    app.router.routes.append(
        Route(
            PATH, endpoint=_Forward(app), methods=["GET", "POST", "DELETE"], include_in_schema=False
        )
    )


class _Forward:
    """An ASGI app (not a request function) handing the request to the running MCP server."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = getattr(self.app.state, "mcp_http", None)
        if handler is None:
            message = "the MCP server is not running"
            body = {"error": {"code": "unavailable", "message": message, "field": None}}
            await JSONResponse(body, status_code=503)(scope, receive, send)
            return
        await handler(scope, receive, send)


@contextlib.asynccontextmanager
async def serving(app: FastAPI, mcp: PhantomexMCP, host: str) -> AsyncIterator[None]:
    """Serve ``mcp`` at ``/mcp`` for the duration of the block."""
    http: Any = mcp.streamable_http_app(streamable_http_path=PATH, host=host)
    async with mcp.session_manager.run():
        app.state.mcp_http = http
        try:
            yield
        finally:
            app.state.mcp_http = None
