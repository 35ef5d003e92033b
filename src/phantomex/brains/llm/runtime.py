"""What LLM brains share: endpoint clients, per-endpoint concurrency, remembered structured-output
modes, the response cache (read side) and the keep-alive policy."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from phantomex.brains.llm.clients import LLMClient, make_client
from phantomex.brains.llm.context import ContextWindows
from phantomex.brains.llm.types import EndpointConfig, KeepAlive, LLMError


class CacheReader(Protocol):
    def __call__(self, key: str) -> dict[str, Any] | None: ...


#: Ollama keep_alive for each policy while a call runs (GROUP unloads after the round).
KEEP_ALIVE_VALUE: dict[KeepAlive, str | int] = {
    KeepAlive.UNLOAD: 0,
    KeepAlive.KEEP: -1,
    KeepAlive.GROUP: "10m",
}


class ModelAwareSlots:
    """A semaphore whose waiters are served model by model: when a slot frees, a waiter for the
    model that just ran (still loaded) goes before older waiters for other models."""

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: list[tuple[str, asyncio.Future[None]]] = []

    async def acquire(self, model: str) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((model, fut))
        try:
            await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled():
                self.release(model)  # it was handed a slot just as it was cancelled
            else:
                self._waiters.remove((model, fut))
            raise

    def release(self, model: str) -> None:
        pending = [(m, f) for m, f in self._waiters if not f.done()]
        self._waiters = pending
        if not pending:
            self._free += 1
            return
        same = next((w for w in pending if w[0] == model), None)
        chosen = same or pending[0]
        self._waiters.remove(chosen)
        chosen[1].set_result(None)


class LLMRuntime:
    """One per server. Writes (cache entries, audit rows) go back through the kernel."""

    def __init__(
        self,
        endpoints: list[EndpointConfig],
        *,
        cache: CacheReader | None = None,
        client_factory: Callable[[EndpointConfig], LLMClient] = make_client,
    ) -> None:
        self.endpoints = {e.name: e for e in endpoints}
        self._factory = client_factory
        self._clients: dict[str, LLMClient] = {}
        self._slots = {e.name: ModelAwareSlots(e.max_concurrency) for e in endpoints}
        self.modes: dict[tuple[str, str], Any] = {}  # (endpoint, model) -> structured form
        self.windows = ContextWindows()  # context windows and characters per token
        self.cache = cache
        self._waiting: dict[tuple[str, str], int] = {}

    def add_endpoint(self, endpoint: EndpointConfig) -> None:
        if endpoint.name in self.endpoints:
            raise ValueError(f"LLM endpoint {endpoint.name!r} exists")
        self.endpoints[endpoint.name] = endpoint
        self._slots[endpoint.name] = ModelAwareSlots(endpoint.max_concurrency)

    async def remove_endpoint(self, name: str) -> None:
        self.endpoint(name)
        del self.endpoints[name]
        del self._slots[name]
        client = self._clients.pop(name, None)
        if client is not None:
            await client.aclose()

    def endpoint(self, name: str) -> EndpointConfig:
        try:
            return self.endpoints[name]
        except KeyError:
            known = ", ".join(sorted(self.endpoints)) or "none configured"
            raise ValueError(f"unknown LLM endpoint {name!r} (known: {known})") from None

    def client(self, name: str) -> LLMClient:
        if name not in self._clients:
            self._clients[name] = self._factory(self.endpoint(name))
        return self._clients[name]

    def keep_alive(self, name: str) -> str | int:
        return KEEP_ALIVE_VALUE[self.endpoint(name).keep_alive]

    @contextlib.asynccontextmanager
    async def call(self, endpoint: str, model: str) -> AsyncIterator[None]:
        """Hold one of the endpoint's slots for a call to ``model``.

        Waiting calls for the model that is already loaded go first, so agents sharing a model
        run as a group and the model loads once per round. Under the GROUP policy the model is
        unloaded when the last waiting call for it is done."""
        key = (endpoint, model)
        self._waiting[key] = self._waiting.get(key, 0) + 1
        slots = self._slots[endpoint]
        await slots.acquire(model)
        try:
            yield
        finally:
            slots.release(model)
            self._waiting[key] -= 1
            if self._waiting[key] == 0:
                del self._waiting[key]
                if self.endpoint(endpoint).keep_alive is KeepAlive.GROUP:
                    with contextlib.suppress(LLMError):
                        await self.client(endpoint).unload(model)

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()


def cache_key(endpoint: str, model: str, messages: list[dict[str, Any]], options: Any) -> str:
    """The response cache key: endpoint, model, messages and options (sorted JSON, sha256)."""
    blob = json.dumps(
        {"endpoint": endpoint, "model": model, "messages": messages, "options": options},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()
