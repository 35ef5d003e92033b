"""Serving the simulator: in a background thread for tests, in the foreground for the CLI."""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Sequence
from typing import Any

import httpx
import uvicorn

from phantomex.devtools.llm_sim.app import create_app
from phantomex.devtools.llm_sim.state import (
    DEFAULT_MODELS,
    SimState,
)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class SimServer:
    """The simulator on a loopback port, served by uvicorn in a background thread::

        with SimServer(models=["a", "b"], latency_seconds=0.1) as sim:
            sim.url            # "http://127.0.0.1:<port>" (Ollama API); sim.openai_url: ".../v1"
            sim.script("a", ['{"action": "hold"}', {"status": 429}])
            sim.stats()["loads"]

    ``port=0`` picks a free port. ``config``: :class:`SimState` arguments (models,
    latency_seconds, load_seconds, max_parallel, max_loaded, use_tools, reasoning_field,
    api_key). The helpers talk to the control endpoints over HTTP, so they are thread-safe.
    """

    def __init__(
        self, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning", **config: Any
    ) -> None:
        self.host = host
        self.port = port
        self.log_level = log_level
        self.state = SimState(**config)
        self.app = create_app(self.state)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._http: httpx.Client | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def start(self) -> SimServer:
        sock = _bind(self.host, self.port)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self.app,
            log_level=self.log_level,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="llm-sim", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError(f"the LLM simulator did not start on {self.url}")
            time.sleep(0.005)
        self._server, self._thread = server, thread
        self._http = httpx.Client(base_url=self.url, timeout=10)
        return self

    def stop(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(5)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(5)
        self._server = self._thread = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control helpers -------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        if self._http is None:
            raise RuntimeError("the simulator is not running")
        resp = self._http.request(method, path, **kwargs)
        resp.raise_for_status()
        return resp.json()

    def stats(self) -> dict[str, Any]:
        return dict(self._call("GET", "/sim/stats"))

    def reset(self) -> dict[str, Any]:
        return dict(self._call("POST", "/sim/reset"))

    def script(self, model: str, items: Sequence[Any]) -> None:
        self._call("POST", "/sim/script", json={"model": model, "items": list(items)})

    def configure(self, **changes: Any) -> dict[str, Any]:
        return dict(self._call("POST", "/sim/config", json=changes))

    def requests(self, path: str | None = None) -> list[dict[str, Any]]:
        params = {"path": path} if path else {}
        return list(self._call("GET", "/sim/requests", params=params))

    def last_request(self, path: str | None = None) -> dict[str, Any]:
        """The body of the latest request (to ``path``, e.g. ``/api/chat``)."""
        rows = self.requests(path)
        if not rows:
            raise LookupError(f"no request recorded for {path or 'any path'}")
        return dict(rows[-1]["body"])


def run(host: str = "127.0.0.1", port: int = 11434, log_level: str = "info", **config: Any) -> None:
    """Serve the simulator in the foreground until interrupted."""
    state = SimState(**config)
    names = ", ".join(state.models)
    print(
        f"PhantomEx LLM simulator on http://{host}:{port} "
        f"(Ollama /api/*, OpenAI /v1/*; stats at /sim/stats) models: {names}",
        flush=True,
    )
    uvicorn.run(create_app(state), host=host, port=port, log_level=log_level, access_log=False)


def parse_models(text: str | None) -> list[str] | None:
    if not text:
        return None
    names = [n.strip() for n in text.split(",") if n.strip()]
    return names or None


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m phantomex.devtools.llm_sim",
        description="Local simulator of the Ollama and OpenAI chat APIs.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=11434)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per reply")
    parser.add_argument("--load-seconds", type=float, default=0.0, help="seconds to load a model")
    parser.add_argument(
        "--models", default=None, help=f"comma-separated names (default {','.join(DEFAULT_MODELS)})"
    )
    parser.add_argument("--max-parallel", type=int, default=1, help="0: unlimited")
    parser.add_argument("--max-loaded", type=int, default=None)
    parser.add_argument("--no-tools", action="store_true", help="never call get_portfolio first")
    parser.add_argument("--api-key", default=None, help="require this key on /v1 endpoints")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    run(
        args.host,
        args.port,
        args.log_level,
        models=parse_models(args.models),
        latency_seconds=args.latency,
        load_seconds=args.load_seconds,
        max_parallel=args.max_parallel,
        max_loaded=args.max_loaded,
        use_tools=not args.no_tools,
        api_key=args.api_key,
    )
