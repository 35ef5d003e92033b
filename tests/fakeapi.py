"""A real local HTTP server that stands in for a third-party API (CoinGecko, Binance, Yahoo,
Polymarket, Telegram, ...), answering with the documented responses in ``tests/fixtures/api``.

Routes are scripted per method and path: a list of replies is served in order (the last one
repeats), or a handler builds the reply from the request. Every request is recorded.

    with FakeAPI() as api:
        api.route("GET", "/api/v3/simple/price", Reply(body=fixture("coingecko/simple_price.json")))
        api.route("GET", "/api/v3/ping", Reply(status=429, headers={"Retry-After": "2"}))
        feed = CoinGeckoFeed(base_url=api.url + "/api/v3")
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent / "fixtures" / "api"


def fixture(name: str) -> Any:
    """The parsed JSON of ``tests/fixtures/api/<name>`` (see its SOURCES.md)."""
    return json.loads((FIXTURES / name).read_text())


@dataclass
class Reply:
    """One scripted answer. A dict or list body is sent as JSON; ``delay`` makes it late."""

    status: int = 200
    body: Any = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0

    def encoded(self) -> tuple[bytes, str]:
        if isinstance(self.body, bytes):
            return self.body, "application/octet-stream"
        if isinstance(self.body, str):
            return self.body.encode(), "text/plain; charset=utf-8"
        return json.dumps(self.body).encode(), "application/json"


@dataclass(frozen=True)
class Request:
    """A request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None

    def form(self) -> dict[str, str]:
        """An ``application/x-www-form-urlencoded`` body (the first value of each field)."""
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


Handler = Callable[[Request], Reply]


class FakeAPI:
    """A threaded HTTP server on 127.0.0.1 with scripted routes; unknown routes get 404."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self._routes: dict[tuple[str, str], list[Reply] | Handler] = {}
        self._fallback: Handler | None = None
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, method: str, path: str, *replies: Reply | Handler) -> None:
        """Script ``method path``: replies in order (the last repeats), or one handler."""
        if len(replies) == 1 and callable(replies[0]) and not isinstance(replies[0], Reply):
            self._routes[(method.upper(), path)] = replies[0]
        else:
            self._routes[(method.upper(), path)] = [r for r in replies if isinstance(r, Reply)]

    def fallback(self, handler: Handler) -> None:
        """Answer every request no route matches with ``handler`` (e.g. a recording proxy)."""
        self._fallback = handler

    def calls(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def __enter__(self) -> FakeAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            script = self._routes.get((request.method, request.path))
            if script is None and self._fallback is not None:
                script = self._fallback
            if script is None:
                return Reply(404, {"error": f"no route {request.method} {request.path}"})
            if callable(script):
                handler = script
            else:
                reply = script[0] if len(script) == 1 else script.pop(0)
                return reply
        return handler(request)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                reply = fake._answer(request)
                if reply.delay:
                    time.sleep(reply.delay)
                payload, content_type = reply.encoded()
                try:
                    self.send_response(reply.status)
                    headers = {"Content-Type": content_type, **reply.headers}
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to do

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        return _Handler
