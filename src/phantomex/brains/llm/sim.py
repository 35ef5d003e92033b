"""A local LLM server simulator speaking the documented Ollama and OpenAI chat APIs.

Endpoints (responses shaped like the fixtures in ``fixtures/``):

* Ollama: ``GET /``, ``GET /api/version``, ``GET /api/tags``, ``GET /api/ps``,
  ``POST /api/chat`` (non-streaming; ``format`` schema or ``"json"``, ``tools``, ``think``,
  ``keep_alive``, ``options.seed/temperature/num_predict``), ``POST /api/generate``
  (the documented load/unload call: no prompt, ``keep_alive: 0`` unloads).
* OpenAI: ``GET /v1/models``, ``POST /v1/chat/completions`` (``response_format`` incl.
  llama-cpp-python's ``json_object`` + ``schema`` and vLLM's ``guided_json``, ``tools``,
  ``max_tokens``/``max_completion_tokens``, ``usage``), errors as ``{"error": {...}}``.
* Streaming (``stream: true``): Ollama's NDJSON parts, OpenAI's server-sent
  ``chat.completion.chunk`` events (usage in a last chunk when ``stream_options.include_usage``
  and ``stream_usage``); a client that goes away mid-stream is counted in ``cancelled``.
* A model's ``context_window``: OpenAI requests that do not fit get llama-cpp-python's HTTP 400
  ``context_length_exceeded``; Ollama's ``POST /api/show`` and llama-server's ``GET /props``
  report it.
* Control: ``GET /sim/stats``, ``POST /sim/reset``, ``POST /sim/script``, ``POST /sim/config``,
  ``GET /sim/requests``.

Model accounting: a request for a model that is not loaded waits ``load_seconds`` and loads it
(``max_loaded`` evicts the least recently used); ``keep_alive`` sets the expiry shown by
``/api/ps`` and ``keep_alive: 0`` unloads after the reply. ``max_parallel`` requests are served
at a time (0: unlimited), the rest queue in FIFO order like on a single GPU.

The default reply is the deterministic decision of :mod:`sim_model`. Scripted replies per model
(``POST /sim/script`` or :meth:`SimServer.script`) are consumed first, one per request; an item is

* a string: the raw content (prose around JSON, ``<think>`` blocks, fences, truncated JSON...);
* ``{"status": 429|500|400|..., "body": <json or text>, "headers": {...}}``: an error reply
  (default bodies in the documented shapes of the API called);
* ``{"delay": seconds}``: wait, then use the next item (or the default reply);
* ``{"stream_seconds": seconds}``: a streamed reply takes that long to generate (spread over its
  chunks), combined with any other reply item;
* ``{"disconnect": true}``: close the connection without a response;
* ``{"content": ..., "thinking": ..., "refusal": ..., "finish_reason": ...,
  "tool_calls": [{"name": ..., "arguments": {...} or "raw string", "id": ...}]}``, any subset
  (``{"refusal": "..."}`` is an OpenAI refusal; ``{"finish_reason": "length", "content": "{\\""}``
  a truncated reply). ``delay`` may be combined with any item.

Run it: ``python -m phantomex.brains.llm.sim --port 11434 [--latency 0.2] [--load-seconds 2]
[--models a,b,c]``; in tests: ``with SimServer(models=[...]) as sim: sim.url ...``.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import hashlib
import json
import math
import re
import secrets
import socket
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, Literal

import httpx
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from phantomex.brains.llm import sim_model

Api = Literal["ollama", "openai"]
MODES = ("json_schema", "json_object+schema", "guided_json", "json_object", "prompt")
STANDARD_MODES = ("json_schema", "json_object", "prompt")
DEFAULT_MODELS = ("llama3.2:latest", "qwen2.5:7b", "deepseek-r1:latest")
DEFAULT_KEEP_ALIVE = 300.0  # Ollama's default "5m"
FOREVER = math.inf
OLLAMA_VERSION = "0.9.6"
PORTFOLIO_TOOL = "get_portfolio"
_CYCLE_KEY = "phantomex.sim.cycle"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_REQUEST_LOG = 200


@cache
def template(name: str) -> dict[str, Any]:
    """A fixture shipped in ``fixtures/`` (a documented or recorded response)."""
    text = resources.files("phantomex.brains.llm").joinpath("fixtures", name).read_text("utf-8")
    return dict(json.loads(text))


def _shaped(tmpl: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` in the template's key order; keys the template lacks are appended."""
    out = {k: values[k] for k in tmpl if k in values}
    out.update({k: v for k, v in values.items() if k not in out})
    return out


def _default_size(name: str) -> int:
    m = re.search(r"(\d+(?:\.\d+)?)b\b", name.lower())
    params = float(m.group(1)) * 1e9 if m else 3.2e9
    return int(params * 0.6)  # ~Q4 weights


def _is_thinking(name: str) -> bool:
    n = name.lower()
    return any(k in n for k in ("r1", "think", "qwq", "reason"))


@dataclass
class SimModel:
    """A simulated model. ``supports``: structured modes (request forms) it accepts, of
    :data:`MODES`; others get HTTP 400. ``flavour="llama-cpp-python"`` behaves like that
    server: a 500 from its request validation for an unknown form, and a 200 whose connection
    drops when a streamed request fails (the error only in its log). ``thinking``: emits reasoning
    (default: name has r1/think/...). ``context_window``: tokens of prompt + ``max_tokens``
    it takes (None: unlimited)."""

    name: str
    size_bytes: int | None = None
    supports: tuple[str, ...] = STANDARD_MODES
    flavour: Literal["standard", "llama-cpp-python"] = "standard"
    context_window: int | None = None
    thinking: bool | None = None
    latency_seconds: float | None = None  # overrides the server's
    load_seconds: float | None = None  # overrides the server's
    buy_below: float | None = None  # overrides the name-derived threshold (percent)
    sell_above: float | None = None

    def __post_init__(self) -> None:
        if ":" not in self.name:
            self.name = f"{self.name}:latest"
        if self.size_bytes is None:
            self.size_bytes = _default_size(self.name)
        if self.thinking is None:
            self.thinking = _is_thinking(self.name)
        bad = set(self.supports) - set(MODES)
        if bad:
            raise ValueError(f"unknown structured modes {sorted(bad)}; use {MODES}")
        self.supports = tuple(self.supports)

    @property
    def limits(self) -> tuple[float, float]:
        buy, sell = sim_model.thresholds(self.name)
        return (
            self.buy_below if self.buy_below is not None else buy,
            self.sell_above if self.sell_above is not None else sell,
        )

    def public(self) -> dict[str, Any]:
        buy, sell = self.limits
        return {
            "name": self.name,
            "size_bytes": self.size_bytes,
            "supports": list(self.supports),
            "flavour": self.flavour,
            "context_window": self.context_window,
            "thinking": self.thinking,
            "buy_below": buy,
            "sell_above": sell,
        }


def _models(models: Iterable[str | SimModel | dict[str, Any]] | None) -> dict[str, SimModel]:
    out: dict[str, SimModel] = {}
    for m in DEFAULT_MODELS if models is None else models:
        sm = m if isinstance(m, SimModel) else SimModel(**m) if isinstance(m, dict) else None
        if sm is None:
            sm = SimModel(name=str(m).strip())
        out[sm.name] = sm
    if not out:
        raise ValueError("the simulator needs at least one model")
    return out


def parse_keep_alive(value: Any) -> float:
    """Seconds to stay loaded: Ollama's ``keep_alive`` (number of seconds or a Go duration such
    as ``"5m"``); negative means forever, missing or invalid means the 5-minute default."""
    if value is None or isinstance(value, bool):
        return DEFAULT_KEEP_ALIVE
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            sign = -1.0 if text.startswith("-") else 1.0
            parts = _DURATION.findall(text.lstrip("+-"))
            if not parts or "".join(a + u for a, u in parts) != text.lstrip("+-"):
                return DEFAULT_KEEP_ALIVE
            seconds = sign * sum(float(a) * _UNITS[u] for a, u in parts)
    else:
        return DEFAULT_KEEP_ALIVE
    return FOREVER if seconds < 0 else seconds


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _local_iso(ts: float) -> str:
    if ts == FOREVER:
        ts = time.time() + 293 * 365.25 * 86400  # Ollama shows year ~2318 for "forever"
    return datetime.fromtimestamp(ts).astimezone().isoformat(timespec="microseconds")


class Gate:
    """At most ``limit`` holders (0: unlimited); waiters are served in FIFO order."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.holders = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def _free(self) -> bool:
        return self.limit <= 0 or self.holders < self.limit

    async def acquire(self) -> None:
        if self._free() and not self._waiters:
            self.holders += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(fut)
            raise

    def release(self) -> None:
        self.holders -= 1
        self.wake()

    def wake(self) -> None:
        while self._waiters and self._free():
            fut = self._waiters.popleft()
            if not fut.done():
                self.holders += 1
                fut.set_result(None)


@dataclass
class _Loaded:
    expires: float  # wall-clock epoch seconds, or FOREVER
    last_used: float


@dataclass
class _Reply:
    content: str | None = ""
    thinking: str | None = None
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    finish_reason: str | None = None
    refusal: str | None = None
    load_ns: int = 0
    started: float = 0.0


class _Error(Exception):
    def __init__(
        self, status: int, body: Any, headers: dict[str, str] | None = None, *, counted: bool = True
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}
        self.counted = counted


def _ollama_error(message: str) -> dict[str, Any]:
    return {"error": message}


def _openai_error(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _error_body(api: Api, status: int, message: str | None = None) -> dict[str, Any]:
    if api == "ollama":
        return _ollama_error(message or template("ollama_error.json")["error"])
    if status == 429:
        return _openai_error(
            message
            or "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. "
            "Please try again in 20s.",
            "requests",
            "rate_limit_exceeded",
        )
    if status >= 500:
        return _openai_error(
            message or "The server had an error while processing your request. Sorry about that!",
            "server_error",
        )
    return _openai_error(message or f"HTTP {status}", "invalid_request_error")


def _mode_of(api: Api, body: dict[str, Any]) -> str:
    if api == "ollama":
        fmt = body.get("format")
        if fmt in (None, ""):
            return "prompt"
        if fmt == "json":
            return "json_object"
        if isinstance(fmt, dict):
            return "json_schema"
        raise _Error(400, _ollama_error(f"invalid format: {fmt!r}"))
    rf = body.get("response_format")
    if rf is None:
        return "guided_json" if "guided_json" in body else "prompt"
    kind = rf.get("type") if isinstance(rf, dict) else None
    if kind == "json_object" and "schema" in rf:
        return "json_object+schema"
    if kind == "text":
        return "prompt"
    if kind in ("json_object", "json_schema"):
        if kind == "json_schema" and not isinstance(rf.get("json_schema"), dict):
            raise _Error(
                400,
                _openai_error(
                    "Missing required parameter: 'response_format.json_schema'.",
                    "invalid_request_error",
                    "missing_required_parameter",
                    "response_format.json_schema",
                ),
            )
        return str(kind)
    raise _Error(
        400,
        _openai_error(
            f"Invalid value for 'response_format': {rf!r}.",
            "invalid_request_error",
            "invalid_value",
            "response_format",
        ),
    )


def _unsupported(api: Api, mode: str, model: SimModel) -> _Error:
    if api == "openai" and mode == "guided_json":  # OpenAI's answer to an unknown field
        return _Error(
            400,
            _openai_error(
                "Unrecognized request argument supplied: guided_json", "invalid_request_error"
            ),
        )
    if api == "openai" and model.flavour == "llama-cpp-python":  # its pydantic check
        message = (
            "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
            "'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", "
            f"'input': '{mode}', 'ctx': {{'expected': \"'text' or 'json_object'\"}}}}"
        )
        return _Error(500, _openai_error(message, "internal_server_error"))
    return _standard_unsupported(api, mode, model.name)


def _standard_unsupported(api: Api, mode: str, model: str) -> _Error:
    if api == "ollama":
        return _Error(
            400,
            _ollama_error(
                f"format: structured output '{mode}' (response_format) is not supported by "
                f"model '{model}'"
            ),
        )
    return _Error(
        400,
        _openai_error(
            f"Invalid parameter: 'response_format' of type '{mode}' is not supported with "
            f"this model ({model}).",
            "invalid_request_error",
            "unsupported_parameter",
            "response_format",
        ),
    )


class SimState:
    """Configuration, counters and model accounting. Used from the server's event loop only
    (other threads go through the HTTP control endpoints, e.g. via :class:`SimServer`)."""

    def __init__(
        self,
        models: Iterable[str | SimModel | dict[str, Any]] | None = None,
        *,
        latency_seconds: float = 0.0,
        load_seconds: float = 0.0,
        max_parallel: int = 1,
        max_loaded: int | None = None,
        use_tools: bool = True,
        reasoning_field: str = "reasoning",
        api_key: str | None = None,
        stream_usage: bool = True,
    ) -> None:
        self.models = _models(models)
        self.stream_usage = stream_usage  # False: no usage in a stream (llama-cpp-python)
        self.latency_seconds = float(latency_seconds)
        self.load_seconds = float(load_seconds)
        self.max_loaded = max_loaded
        self.use_tools = use_tools
        self.reasoning_field = reasoning_field  # "reasoning" (Ollama) or "reasoning_content"
        self.api_key = api_key
        self.gate = Gate(max_parallel)
        self.started_at = time.time()
        self.reset()

    # -- configuration ---------------------------------------------------------------------------
    @property
    def max_parallel(self) -> int:
        return self.gate.limit

    def configure(self, **changes: Any) -> None:
        allowed = {
            "latency_seconds",
            "load_seconds",
            "max_parallel",
            "max_loaded",
            "use_tools",
            "reasoning_field",
            "api_key",
            "stream_usage",
        }
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; allowed: {sorted(allowed)}")
        for key, value in changes.items():
            if key == "max_parallel":
                self.gate.limit = int(value)
                self.gate.wake()
            elif key in ("latency_seconds", "load_seconds"):
                setattr(self, key, float(value))
            else:
                setattr(self, key, value)

    def config(self) -> dict[str, Any]:
        return {
            "latency_seconds": self.latency_seconds,
            "load_seconds": self.load_seconds,
            "max_parallel": self.max_parallel,
            "max_loaded": self.max_loaded,
            "use_tools": self.use_tools,
            "reasoning_field": self.reasoning_field,
            "auth": self.api_key is not None,
            "stream_usage": self.stream_usage,
            "models": [m.public() for m in self.models.values()],
        }

    def reset(self) -> None:
        """Counters, loaded models, scripts and the request log back to empty."""
        self.requests = 0
        self.requests_by_model: collections.Counter[str] = collections.Counter()
        self.requests_by_path: collections.Counter[str] = collections.Counter()
        self.loads: collections.Counter[str] = collections.Counter()
        self.unloads: collections.Counter[str] = collections.Counter()
        self.evictions: collections.Counter[str] = collections.Counter()
        self.errors = 0
        self.cancelled = 0
        self.in_flight = 0
        self.running = 0
        self.max_in_flight = 0
        self.max_concurrent = 0
        self.loaded: dict[str, _Loaded] = {}
        self.scripts: dict[str, collections.deque[Any]] = {}
        self.log: collections.deque[dict[str, Any]] = collections.deque(maxlen=_REQUEST_LOG)

    def stats(self) -> dict[str, Any]:
        self._expire()
        return {
            "requests": self.requests,
            "requests_by_model": dict(self.requests_by_model),
            "requests_by_path": dict(self.requests_by_path),
            "loads": dict(self.loads),
            "unloads": dict(self.unloads),
            "evictions": dict(self.evictions),
            "loaded": sorted(self.loaded),
            "in_flight": self.in_flight,
            "running": self.running,
            "max_in_flight": self.max_in_flight,
            "max_concurrent": self.max_concurrent,
            "errors": self.errors,
            "cancelled": self.cancelled,
            "scripts_pending": {m: len(q) for m, q in self.scripts.items() if q},
            "config": self.config(),
        }

    # -- models ----------------------------------------------------------------------------------
    def resolve(self, name: str) -> SimModel | None:
        """Ollama matching: ``llama3.2`` is ``llama3.2:latest``."""
        for candidate in (name, f"{name}:latest", name.removesuffix(":latest")):
            if candidate in self.models:
                return self.models[candidate]
        return None

    def script(self, model: str, items: Sequence[Any]) -> None:
        sm = self.resolve(model)
        if sm is None:
            raise KeyError(model)
        self.scripts.setdefault(sm.name, collections.deque()).extend(items)

    def next_item(self, model: str) -> tuple[Any, float]:
        """The next scripted item for ``model`` (None: default reply) and the delay before it."""
        queue = self.scripts.get(model)
        delay = 0.0
        while queue:
            item = queue.popleft()
            if isinstance(item, dict) and "delay" in item:
                delay += float(item["delay"])
                if set(item) == {"delay"}:
                    continue
            return item, delay
        return None, delay

    def _expire(self) -> None:
        now = time.time()
        for name in [n for n, e in self.loaded.items() if e.expires <= now]:
            del self.loaded[name]
            self.unloads[name] += 1

    async def ensure_loaded(self, model: SimModel, keep_alive: float) -> int:
        """Load ``model`` if needed (waits its load time); returns the load duration in ns."""
        self._expire()
        now = time.time()
        entry = self.loaded.get(model.name)
        if entry is not None:
            entry.last_used = now
            return 0
        if self.max_loaded is not None and self.max_loaded > 0:
            while len(self.loaded) >= self.max_loaded:
                victim = min(self.loaded, key=lambda n: self.loaded[n].last_used)
                del self.loaded[victim]
                self.evictions[victim] += 1
                self.unloads[victim] += 1
        started = time.perf_counter()
        seconds = model.load_seconds if model.load_seconds is not None else self.load_seconds
        if seconds > 0:
            await asyncio.sleep(seconds)
        # until after_reply sets the requested keep_alive, at least long enough to answer
        self.loaded[model.name] = _Loaded(
            expires=time.time() + max(keep_alive, 60.0), last_used=now
        )
        self.loads[model.name] += 1
        return max(int(seconds * 1e9), int((time.perf_counter() - started) * 1e9), 1)

    def after_reply(self, model: SimModel, keep_alive: float) -> None:
        entry = self.loaded.get(model.name)
        if entry is None:
            return
        if keep_alive == 0:
            del self.loaded[model.name]
            self.unloads[model.name] += 1
        else:
            entry.expires = time.time() + keep_alive if keep_alive != FOREVER else FOREVER

    def unload(self, model: SimModel) -> None:
        if self.loaded.pop(model.name, None) is not None:
            self.unloads[model.name] += 1


class _CaptureConnection:
    """Puts uvicorn's request cycle in the scope so a scripted ``disconnect`` can close it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[_CYCLE_KEY] = getattr(receive, "__self__", None)
        await self.app(scope, receive, send)


async def _wait_disconnect(request: Request) -> None:
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def _close_connection(request: Request) -> None:
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


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    if isinstance(body, str | bytes):
        return PlainTextResponse(body, status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


class _Sim:
    """The request handlers over a :class:`SimState`."""

    def __init__(self, state: SimState) -> None:
        self.s = state

    # -- plumbing --------------------------------------------------------------------------------
    def record(self, request: Request, body: Any) -> None:
        self.s.log.append(
            {
                "path": request.url.path,
                "body": body,
                "has_auth": bool(request.headers.get("authorization")),
                "at": time.time(),
            }
        )

    def check_auth(self, api: Api, request: Request) -> None:
        if self.s.api_key is None or api != "openai":
            return
        header = request.headers.get("authorization", "")
        given = header.removeprefix("Bearer ").strip()
        if given != self.s.api_key:
            # Deliberately echoes the whole key (worse than OpenAI, which masks it) so that
            # clients can be tested for redaction.
            raise _Error(
                401,
                _openai_error(
                    f"Incorrect API key provided: {given}. You can find your API key at "
                    "https://platform.openai.com/account/api-keys.",
                    "invalid_request_error",
                    "invalid_api_key",
                ),
            )

    async def body(self, api: Api, request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except ValueError:
            raise _Error(
                400,
                _ollama_error("invalid character in request body")
                if api == "ollama"
                else _openai_error(
                    "We could not parse the JSON body of your request.", "invalid_request_error"
                ),
            ) from None
        if not isinstance(body, dict):
            raise _Error(400, _error_body(api, 400, "the request body must be a JSON object"))
        self.record(request, body)
        return body

    def error_response(self, api: Api, err: _Error) -> Response:
        if err.counted:
            self.s.errors += 1
        return _json(err.status, err.body, err.headers)

    async def guarded(self, api: Api, request: Request, work: Any) -> Response:
        """Run ``work`` (a coroutine) unless the client goes away first; map ``_Error``s."""
        task: asyncio.Task[Response] = asyncio.ensure_future(work)
        watch = asyncio.ensure_future(_wait_disconnect(request))
        try:
            await asyncio.wait({task, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
                if not getattr(request.state, "sim_disconnect", False):
                    self.s.cancelled += 1
        if task.cancelled():
            return Response(status_code=499)
        exc = task.exception()
        if isinstance(exc, _Error):
            return self.error_response(api, exc)
        return task.result()

    # -- chat ------------------------------------------------------------------------------------
    def model_of(self, api: Api, body: dict[str, Any]) -> SimModel:
        name = body.get("model")
        if not isinstance(name, str) or not name:
            raise _Error(
                400,
                _ollama_error("model is required")
                if api == "ollama"
                else _openai_error(
                    "you must provide a model parameter",
                    "invalid_request_error",
                    None,
                    "model",
                ),
            )
        model = self.s.resolve(name)
        if model is None:
            raise _Error(
                404,
                _ollama_error(f"model '{name}' not found")
                if api == "ollama"
                else _openai_error(
                    f"The model `{name}` does not exist or you do not have access to it.",
                    "invalid_request_error",
                    "model_not_found",
                ),
            )
        return model

    async def chat(self, api: Api, request: Request, kind: str) -> Response:
        try:
            self.check_auth(api, request)
            body = await self.body(api, request)
            self.s.requests += 1
            self.s.requests_by_path[request.url.path] += 1
            model = self.model_of(api, body)
            self.s.requests_by_model[model.name] += 1
        except _Error as err:
            return self.error_response(api, err)
        if kind == "generate":
            return await self.guarded(api, request, self.generate(request, body, model))
        return await self.guarded(api, request, self.complete(api, request, body, model))

    async def generate(self, request: Request, body: dict[str, Any], model: SimModel) -> Response:
        prompt = body.get("prompt")
        if not prompt:
            return await self.load_unload(request, body, model, "response")
        messages = []
        if isinstance(body.get("system"), str):
            messages.append({"role": "system", "content": body["system"]})
        messages.append({"role": "user", "content": str(prompt)})
        return await self.complete("ollama", request, {**body, "messages": messages}, model, True)

    async def load_unload(
        self, request: Request, body: dict[str, Any], model: SimModel, field_name: str
    ) -> Response:
        """Ollama's documented load (no messages/prompt) and unload (plus keep_alive 0)."""
        keep_alive = parse_keep_alive(body.get("keep_alive"))
        load_ns = 0
        if keep_alive == 0:
            self.s.unload(model)
            reason = "unload"
        else:
            await self.s.gate.acquire()
            try:
                load_ns = await self.s.ensure_loaded(model, keep_alive)
            finally:
                self.s.gate.release()
            self.s.after_reply(model, keep_alive)
            reason = "load"
        out: dict[str, Any] = {"model": body["model"], "created_at": _utc_now()}
        out[field_name] = {"role": "assistant", "content": ""} if field_name == "message" else ""
        out.update(done_reason=reason, done=True)
        if load_ns:
            out["load_duration"] = load_ns
        return JSONResponse(out)

    async def complete(
        self,
        api: Api,
        request: Request,
        body: dict[str, Any],
        model: SimModel,
        as_generate: bool = False,
    ) -> Response:
        messages = body.get("messages")
        if messages is None and api == "ollama":
            messages = []
        if not isinstance(messages, list) or (api == "openai" and not messages):
            raise _Error(400, _error_body(api, 400, "messages must be a non-empty list"))
        if api == "ollama" and not messages:
            return await self.load_unload(request, body, model, "message")
        mode = _mode_of(api, body)
        if mode not in model.supports:
            raise _unsupported(api, mode, model)
        if api == "openai" and model.context_window is not None:
            try:
                _check_context(
                    model.context_window, self._prompt_tokens(messages), self.max_tokens(api, body)
                )
            except _Error:
                if body.get("stream") and model.flavour == "llama-cpp-python":
                    return StreamingResponse(_broken_stream(), media_type="text/event-stream")
                raise
        keep_alive = parse_keep_alive(body.get("keep_alive"))
        s = self.s
        s.in_flight += 1
        s.max_in_flight = max(s.max_in_flight, s.in_flight)
        try:
            await s.gate.acquire()
            s.running += 1
            s.max_concurrent = max(s.max_concurrent, s.running)
            try:
                started = time.perf_counter()
                item, delay = s.next_item(model.name)
                if delay > 0:
                    await asyncio.sleep(delay)
                if isinstance(item, dict) and item.get("disconnect"):
                    await _close_connection(request)
                    return Response(status_code=499)
                if isinstance(item, dict) and "status" in item:
                    status = int(item["status"])
                    payload = item.get("body")
                    raise _Error(
                        status,
                        _error_body(api, status) if payload is None else payload,
                        {str(k): str(v) for k, v in (item.get("headers") or {}).items()},
                    )
                load_ns = await s.ensure_loaded(model, keep_alive)
                latency = (
                    model.latency_seconds
                    if model.latency_seconds is not None
                    else s.latency_seconds
                )
                if latency > 0:
                    await asyncio.sleep(latency)
                reply = self.reply(api, body, model, messages, mode, item)
                reply.load_ns, reply.started = load_ns, started
                s.after_reply(model, keep_alive)
            finally:
                s.running -= 1
                s.gate.release()
        finally:
            s.in_flight -= 1
        stream_seconds = float(item.get("stream_seconds", 0)) if isinstance(item, dict) else 0.0
        if api == "openai":
            full = self.openai_body(body, messages, reply)
            if body.get("stream"):
                return self.stream(api, body, full, stream_seconds)
            return JSONResponse(full)
        out = self.ollama_body(body, messages, reply)
        if body.get("stream") is True and not as_generate:
            return self.stream(api, body, out, stream_seconds)
        if as_generate:
            msg = out.pop("message")
            out = {
                "model": out.pop("model"),
                "created_at": out.pop("created_at"),
                "response": msg.get("content") or "",
                **({"thinking": msg["thinking"]} if msg.get("thinking") else {}),
                **out,
            }
        return JSONResponse(out)

    # -- streaming -------------------------------------------------------------------------------
    def stream(
        self, api: Api, body: dict[str, Any], full: dict[str, Any], seconds: float
    ) -> Response:
        """``full`` (a complete answer) as the API's stream, taking ``seconds`` to generate."""
        chunks = _openai_chunks(body, full, self.s) if api == "openai" else _ollama_parts(full)
        pause = seconds / max(1, len(chunks))
        s = self.s

        async def generate() -> Any:
            done = False
            try:
                for chunk in chunks:
                    if pause > 0:
                        await asyncio.sleep(pause)
                    if api == "openai":
                        yield f"data: {json.dumps(chunk)}\n\n"
                    else:
                        yield json.dumps(chunk) + "\n"
                if api == "openai":
                    yield "data: [DONE]\n\n"
                done = True
            finally:
                if not done:  # the client went away: the generation stops here
                    s.cancelled += 1

        media = "text/event-stream" if api == "openai" else "application/x-ndjson"
        return StreamingResponse(generate(), media_type=media)

    # -- the "model" -----------------------------------------------------------------------------
    def reply(
        self,
        api: Api,
        body: dict[str, Any],
        model: SimModel,
        messages: list[Any],
        mode: str,
        item: Any,
    ) -> _Reply:
        if isinstance(item, str):
            return _Reply(content=item)
        if isinstance(item, dict):
            calls = [
                {
                    "name": str(c.get("name", "")),
                    "arguments": c.get("arguments", {}),
                    "id": c.get("id") or f"call_{secrets.token_hex(6)}",
                }
                for c in item.get("tool_calls") or []
                if isinstance(c, dict)
            ]
            content = item.get("content", None if (calls or "refusal" in item) else "")
            return _Reply(
                content=content,
                thinking=item.get("thinking"),
                tool_calls=calls,
                finish_reason=item.get("finish_reason"),
                refusal=item.get("refusal"),
            )
        tools = body.get("tools")
        if self.s.use_tools and sim_model.wants_tool(messages, tools, PORTFOLIO_TOOL):
            call = {"name": PORTFOLIO_TOOL, "arguments": {}, "id": f"call_{secrets.token_hex(6)}"}
            return _Reply(content=None, tool_calls=[call])
        decision = sim_model.default_reply(model.name, messages, model.limits)
        if mode == "prompt":
            text = "Here is my decision:\n```json\n" + json.dumps(decision, indent=2) + "\n```"
        else:
            text = json.dumps(decision)
        thinking = None
        if model.thinking:
            thought = (
                f"The prompt gives {decision.get('action', 'reflection')} signals; my thresholds "
                f"are {model.limits[0]:+.2f}% / {model.limits[1]:+.2f}%. "
                f"{decision.get('reasoning', '')}"
            )
            if api == "openai" or body.get("think"):
                thinking = thought
            elif mode == "prompt":
                text = f"<think>\n{thought}\n</think>\n\n{text}"
        finish = None
        limit = self.max_tokens(api, body)
        if limit is not None and sim_model.estimate_tokens(text) > limit:
            text, finish = text[: max(0, limit * 4)], "length"
        return _Reply(content=text, thinking=thinking, finish_reason=finish)

    @staticmethod
    def max_tokens(api: Api, body: dict[str, Any]) -> int | None:
        if api == "ollama":
            options = body.get("options")
            value = options.get("num_predict") if isinstance(options, dict) else None
        else:
            value = body.get("max_completion_tokens", body.get("max_tokens"))
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        return None

    @staticmethod
    def _prompt_tokens(messages: list[Any]) -> int:
        text = "".join(
            str(m.get("content") or "") if isinstance(m, dict) else str(m) for m in messages
        )
        return sim_model.estimate_tokens(text) + 4 * len(messages)

    def ollama_body(
        self, body: dict[str, Any], messages: list[Any], reply: _Reply
    ) -> dict[str, Any]:
        content = reply.content if reply.content is not None else (reply.refusal or "")
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if reply.thinking:
            message["thinking"] = reply.thinking
        if reply.tool_calls:
            calls = []
            for c in reply.tool_calls:
                args = c["arguments"]
                if isinstance(args, str):
                    with contextlib.suppress(ValueError):
                        args = json.loads(args)
                calls.append({"function": {"name": c["name"], "arguments": args}})
            message["tool_calls"] = calls
        tokens_in = self._prompt_tokens(messages)
        tokens_out = sim_model.estimate_tokens(content + (reply.thinking or ""))
        total_ns = max(1, int((time.perf_counter() - reply.started) * 1e9))
        eval_ns = max(1, total_ns - reply.load_ns)
        return _shaped(
            template("ollama_chat.json"),
            {
                "model": body["model"],
                "created_at": _utc_now(),
                "message": message,
                "done_reason": reply.finish_reason or "stop",
                "done": True,
                "total_duration": total_ns,
                "load_duration": reply.load_ns,
                "prompt_eval_count": tokens_in,
                "prompt_eval_duration": eval_ns // 5,
                "eval_count": tokens_out,
                "eval_duration": eval_ns - eval_ns // 5,
            },
        )

    def openai_body(
        self, body: dict[str, Any], messages: list[Any], reply: _Reply
    ) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.content,
            "refusal": reply.refusal,
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {
                        "name": c["name"],
                        "arguments": c["arguments"]
                        if isinstance(c["arguments"], str)
                        else json.dumps(c["arguments"]),
                    },
                }
                for c in reply.tool_calls
            ]
        if reply.thinking:
            message[self.s.reasoning_field] = reply.thinking
        finish = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")
        tokens_in = self._prompt_tokens(messages)
        reasoning_tokens = sim_model.estimate_tokens(reply.thinking) if reply.thinking else 0
        tokens_out = (
            sim_model.estimate_tokens(
                (reply.content or "")
                + (reply.refusal or "")
                + "".join(json.dumps(c["arguments"]) for c in reply.tool_calls)
            )
            + reasoning_tokens
        )
        tmpl = template("openai_chat_completion.json")
        return _shaped(
            tmpl,
            {
                "id": f"chatcmpl-{secrets.token_urlsafe(21)[:29]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
                ],
                "usage": {
                    "prompt_tokens": tokens_in,
                    "completion_tokens": tokens_out,
                    "total_tokens": tokens_in + tokens_out,
                    "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
                },
                "system_fingerprint": "fp_phantomexsim",
            },
        )

    # -- listings --------------------------------------------------------------------------------
    def _digest(self, name: str) -> str:
        return hashlib.sha256(name.encode("utf-8")).hexdigest()

    def _details(self, model: SimModel) -> dict[str, Any]:
        tmpl = template("ollama_tags.json")["models"][0]["details"]
        family = re.split(r"[\d:.\-]", model.name, maxsplit=1)[0] or "llama"
        params = (model.size_bytes or 0) / 0.6 / 1e9
        return _shaped(
            tmpl,
            {
                "parent_model": "",
                "format": "gguf",
                "family": family,
                "families": [family],
                "parameter_size": f"{params:.1f}B",
                "quantization_level": "Q4_K_M",
            },
        )

    def tags(self) -> dict[str, Any]:
        tmpl = template("ollama_tags.json")["models"][0]
        modified = _local_iso(self.s.started_at)
        return {
            "models": [
                _shaped(
                    tmpl,
                    {
                        "name": m.name,
                        "model": m.name,
                        "modified_at": modified,
                        "size": m.size_bytes,
                        "digest": self._digest(m.name),
                        "details": self._details(m),
                    },
                )
                for m in self.s.models.values()
            ]
        }

    def ps(self) -> dict[str, Any]:
        self.s._expire()
        tmpl = template("ollama_ps.json")["models"][0]
        out = []
        for name, entry in sorted(self.s.loaded.items()):
            m = self.s.models[name]
            out.append(
                _shaped(
                    tmpl,
                    {
                        "name": name,
                        "model": name,
                        "size": m.size_bytes,
                        "digest": self._digest(name),
                        "details": self._details(m),
                        "expires_at": _local_iso(entry.expires),
                        "size_vram": m.size_bytes,
                    },
                )
            )
        return {"models": out}

    def openai_models(self) -> dict[str, Any]:
        tmpl = template("openai_models.json")
        item = tmpl["data"][0]
        created = int(self.s.started_at)
        return _shaped(
            tmpl,
            {
                "object": "list",
                "data": [
                    _shaped(
                        item,
                        {
                            "id": m.name,
                            "object": "model",
                            "created": created,
                            "owned_by": "library",
                            "shutdown_date": None,
                        },
                    )
                    for m in self.s.models.values()
                ],
            },
        )


def _pieces(text: str, size: int = 4) -> list[str]:
    """``text`` in token-sized pieces."""
    return [text[i : i + size] for i in range(0, len(text), size)]


def _openai_chunks(body: dict[str, Any], full: dict[str, Any], st: SimState) -> list[Any]:
    """A ``chat.completion`` as its ``chat.completion.chunk`` events."""
    choice = full["choices"][0]
    msg = choice["message"]
    keys = ("id", "created", "model", "system_fingerprint")
    head: dict[str, Any] = {k: full[k] for k in keys if k in full}
    head["object"] = "chat.completion.chunk"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **head,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    out = [chunk({"role": "assistant", "content": ""})]
    reasoning = msg.get(st.reasoning_field)
    if reasoning:
        out += [chunk({st.reasoning_field: p}) for p in _pieces(reasoning)]
    if msg.get("refusal"):
        out += [chunk({"refusal": p}) for p in _pieces(msg["refusal"])]
    out += [chunk({"content": p}) for p in _pieces(msg.get("content") or "")]
    for i, call in enumerate(msg.get("tool_calls") or []):
        out.append(chunk({"tool_calls": [{"index": i, **call}]}))
    out.append(chunk({}, choice["finish_reason"]))
    options = body.get("stream_options")
    if st.stream_usage and isinstance(options, dict) and options.get("include_usage"):
        out.append({**head, "choices": [], "usage": full["usage"]})
    return out


def _ollama_parts(full: dict[str, Any]) -> list[Any]:
    """An Ollama chat answer as its streamed parts (the last one has the counts)."""
    msg = full["message"]
    head = {"model": full["model"], "created_at": full["created_at"]}

    def part(**message: Any) -> dict[str, Any]:
        return {**head, "message": {"role": "assistant", "content": "", **message}, "done": False}

    out = [part(thinking=p) for p in _pieces(msg.get("thinking") or "")]
    out += [part(content=p) for p in _pieces(msg.get("content") or "")]
    if msg.get("tool_calls"):
        out.append(part(tool_calls=msg["tool_calls"]))
    last = {**full, "message": {"role": "assistant", "content": ""}}
    return [*out, last]


async def _broken_stream() -> Any:
    """llama-cpp-python's stream of a failed request: 200, then the connection drops."""
    raise RuntimeError("Requested tokens exceed context window (simulated)")
    yield ""  # an async generator


def _check_context(window: int, prompt_tokens: int, max_tokens: int | None) -> None:
    """llama-cpp-python's (and OpenAI's) answer to a request that does not fit."""
    asked = prompt_tokens + (max_tokens or 0)
    if asked > window:
        raise _Error(
            400,
            _openai_error(
                f"This model's maximum context length is {window} tokens. However, you "
                f"requested {asked} tokens ({prompt_tokens} in the messages, {max_tokens or 0} "
                "in the completion). Please reduce the length of the messages or completion.",
                "invalid_request_error",
                "context_length_exceeded",
                "messages",
            ),
        )


def create_app(state: SimState | None = None, **config: Any) -> FastAPI:
    """The simulator as an ASGI app (``config``: :class:`SimState` arguments)."""
    st = state if state is not None else SimState(**config)
    sim = _Sim(st)
    app = FastAPI(title="PhantomEx LLM simulator", docs_url=None, redoc_url=None)
    app.add_middleware(_CaptureConnection)
    app.state.sim = st

    @app.get("/")
    async def root() -> Response:
        return PlainTextResponse("Ollama is running")

    @app.get("/api/version")
    async def version() -> dict[str, str]:
        return {"version": OLLAMA_VERSION}

    @app.get("/api/tags")
    async def tags() -> dict[str, Any]:
        return sim.tags()

    @app.get("/api/ps")
    async def ps() -> dict[str, Any]:
        return sim.ps()

    @app.post("/api/chat")
    async def ollama_chat(request: Request) -> Response:
        return await sim.chat("ollama", request, "chat")

    @app.post("/api/show")
    async def ollama_show(request: Request) -> Response:
        body = await request.json()
        sim.record(request, body)
        model = st.resolve(str(body.get("model") or body.get("name") or ""))
        if model is None:
            return JSONResponse(_ollama_error("model not found"), status_code=404)
        info: dict[str, Any] = {"general.architecture": "llama"}
        if model.context_window is not None:
            info["llama.context_length"] = model.context_window
        return JSONResponse(
            {"modelfile": "", "parameters": "", "template": "", "details": sim._details(model),
             "model_info": info, "capabilities": ["completion", "tools"]}
        )  # fmt: skip

    @app.post("/extras/tokenize/count")
    async def tokenize_count(request: Request) -> Response:
        body = await request.json()
        sim.record(request, body)
        return JSONResponse({"count": sim_model.estimate_tokens(str(body.get("input") or ""))})

    @app.get("/props")
    async def props() -> Response:
        windows = [
            m.context_window
            for m in st.models.values()
            if m.context_window and m.flavour == "standard"
        ]
        if not windows:  # llama-cpp-python has no /props; llama-server has
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return JSONResponse({"default_generation_settings": {"n_ctx": min(windows)}})

    @app.post("/api/generate")
    async def ollama_generate(request: Request) -> Response:
        return await sim.chat("ollama", request, "generate")

    @app.get("/v1/models")
    async def openai_models(request: Request) -> Response:
        try:
            sim.check_auth("openai", request)
        except _Error as err:
            return sim.error_response("openai", err)
        return JSONResponse(sim.openai_models())

    @app.post("/v1/chat/completions")
    async def openai_chat(request: Request) -> Response:
        return await sim.chat("openai", request, "chat")

    @app.get("/sim/stats")
    async def stats() -> dict[str, Any]:
        return st.stats()

    @app.post("/sim/reset")
    async def reset() -> dict[str, Any]:
        st.reset()
        return st.stats()

    @app.post("/sim/script")
    async def script(request: Request, model: str | None = None) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "invalid JSON"}, status_code=400)
        items = body
        if isinstance(body, dict):
            model = body.get("model", model)
            items = body.get("items", [])
        if not isinstance(model, str) or not isinstance(items, list):
            return JSONResponse(
                {"error": 'send {"model": ..., "items": [...]} or a list with ?model='},
                status_code=400,
            )
        try:
            st.script(model, items)
        except KeyError:
            return JSONResponse({"error": f"model '{model}' not found"}, status_code=404)
        return JSONResponse({"model": model, "pending": st.stats()["scripts_pending"]})

    @app.post("/sim/config")
    async def configure(request: Request) -> Response:
        try:
            body = await request.json()
            st.configure(**body)
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(st.config())

    @app.get("/sim/requests")
    async def requests_log(path: str | None = None, limit: int = _REQUEST_LOG) -> list[Any]:
        rows = [r for r in st.log if path is None or r["path"] == path]
        return rows[-limit:] if limit > 0 else []

    return app


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
        prog="python -m phantomex.brains.llm.sim",
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


if __name__ == "__main__":
    main()
