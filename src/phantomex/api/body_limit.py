"""A request body larger than the server's limit is refused with 413 before it is read.

A declared ``Content-Length`` over the limit is answered at once, without reading a byte; a
body without one (chunked) is counted as it arrives and refused as soon as it goes over."""

from __future__ import annotations

from fastapi import FastAPI, Request, Response
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from phantomex.api.errors import error_body


class BodyTooLarge(HTTPException):
    """Raised by the counting ``receive`` when a streamed body goes over the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than the limit of {limit} bytes")


def too_large_response(exc: BodyTooLarge) -> JSONResponse:
    return JSONResponse(
        status_code=413,
        content=error_body("body_too_large", str(exc.detail)),
        headers={"Connection": "close"},
    )


class BodyLimit:
    """Pure ASGI middleware: at most ``max_bytes`` of request body per HTTP request."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await too_large_response(BodyTooLarge(self.max_bytes))(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyTooLarge(self.max_bytes)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge as exc:  # an app that did not answer it itself
            if started:
                raise
            await too_large_response(exc)(scope, receive, send)


def install(app: FastAPI, max_bytes: int) -> None:
    """Limit ``app``'s request bodies to ``max_bytes`` (add it last: it must run first)."""

    async def _too_large(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, BodyTooLarge)
        return too_large_response(exc)

    app.add_exception_handler(BodyTooLarge, _too_large)
    app.add_middleware(BodyLimit, max_bytes=max_bytes)
