"""ASGI plumbing that lets a scripted reply drop the client's connection."""

from __future__ import annotations

import asyncio

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

_CYCLE_KEY = "phantomex.sim.cycle"


class CaptureConnection:
    """Puts uvicorn's request cycle in the scope so a scripted ``disconnect`` can close it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[_CYCLE_KEY] = getattr(receive, "__self__", None)
        await self.app(scope, receive, send)


async def wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def close_connection(request: Request) -> None:
    cycle = request.scope.get(_CYCLE_KEY)
    transport = getattr(cycle, "transport", None)
    if transport is None:  # not under uvicorn: the best we can do is fail the request
        raise RuntimeError("simulated disconnect")
    request.state.sim_disconnect = True
    transport.close()
    for _ in range(200):  # until uvicorn has noticed, so nothing more is written
        if getattr(cycle, "disconnected", True):
            return
        await asyncio.sleep(0.005)
