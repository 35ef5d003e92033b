"""The simulated models and the server state: configuration, scripts, counters, loading."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from phantomex.devtools.llm_sim import behaviour
from phantomex.devtools.llm_sim.protocol import (
    FOREVER,
    MODES,
    STANDARD_MODES,
    Api,
    ApiError,
    openai_error,
    standard_unsupported,
)

DEFAULT_MODELS = ("llama3.2:latest", "qwen2.5:7b", "deepseek-r1:latest")
REQUEST_LOG = 200


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
        buy, sell = behaviour.thresholds(self.name)
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


def unsupported(api: Api, mode: str, model: SimModel) -> ApiError:
    if api == "openai" and mode == "guided_json":  # OpenAI's answer to an unknown field
        return ApiError(
            400,
            openai_error(
                "Unrecognized request argument supplied: guided_json", "invalid_request_error"
            ),
        )
    if api == "openai" and model.flavour == "llama-cpp-python":  # its pydantic check
        message = (
            "1 validation error:\n  {'type': 'literal_error', 'loc': ('body', "
            "'response_format', 'type'), 'msg': \"Input should be 'text' or 'json_object'\", "
            f"'input': '{mode}', 'ctx': {{'expected': \"'text' or 'json_object'\"}}}}"
        )
        return ApiError(500, openai_error(message, "internal_server_error"))
    return standard_unsupported(api, mode, model.name)


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
        self.log: collections.deque[dict[str, Any]] = collections.deque(maxlen=REQUEST_LOG)

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
