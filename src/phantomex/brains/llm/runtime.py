"""What LLM brains share: endpoint clients, per-endpoint concurrency, remembered structured-output
modes, the response cache (read side) and the keep-alive policy.

Keep-alive ``group`` (the default): agents sharing a model run as a group (see
:class:`ModelAwareSlots`), and the model stays loaded while work for it is queued, or due again
within :data:`KEEP_WARM_MAX_SECONDS` (a scheduler, the kernel, tells when: see :class:`Schedule`).
It is unloaded when the round moves on to another model on the same endpoint, or when nothing
will call it soon; Ollama's own timer (the ``keep_alive`` sent with each call, one interval plus
a margin) unloads it if the agents stop calling."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import math
import weakref
from collections.abc import AsyncIterator, Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, Protocol

from phantomex.brains.llm.context import ContextWindows
from phantomex.brains.llm.news import NewsReader
from phantomex.brains.llm.types import EndpointConfig, KeepAlive, LLMError

if TYPE_CHECKING:
    from phantomex.brains.llm.client_base import LLMClient


class CacheReader(Protocol):
    def __call__(self, key: str) -> dict[str, Any] | None: ...


class Schedule(Protocol):
    """Who will call which model, and how often (the kernel: its running LLM agents)."""

    def llm_intervals(self) -> Iterable[tuple[str, str, float]]:
        """``(endpoint, model, wall seconds between decisions)`` per agent that will call."""
        ...


#: Ollama keep_alive (seconds) for each policy while a call runs (GROUP: the least it sends; when
#: no agent is due soon the model is also unloaded after the round).
KEEP_ALIVE_VALUE: dict[KeepAlive, int] = {
    KeepAlive.UNLOAD: 0,
    KeepAlive.KEEP: -1,
    KeepAlive.GROUP: 600,
}
#: GROUP keeps a model loaded between calls due at most this many wall seconds apart
KEEP_WARM_MAX_SECONDS: Final = 1800.0
#: added to the interval in the keep_alive sent with a call (the decision's own time)
KEEP_WARM_MARGIN_SECONDS: Final = 60.0


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


def _make_client(endpoint: EndpointConfig) -> LLMClient:
    """The client of ``endpoint`` (the client libraries load with the first one: a process
    that runs no LLM agent never imports them)."""
    from phantomex.brains.llm.clients import make_client

    return make_client(endpoint)


class LLMRuntime:
    """One per server. Writes (cache entries, audit rows) go back through the kernel."""

    def __init__(
        self,
        endpoints: list[EndpointConfig],
        *,
        cache: CacheReader | None = None,
        client_factory: Callable[[EndpointConfig], LLMClient] | None = None,
        news: NewsReader | None = None,
    ) -> None:
        self.endpoints = {e.name: e for e in endpoints}
        self._factory = client_factory or _make_client
        self._clients: dict[str, LLMClient] = {}
        self._slots = {e.name: ModelAwareSlots(e.max_concurrency) for e in endpoints}
        self.modes: dict[tuple[str, str], Any] = {}  # (endpoint, model) -> structured form
        self.windows = ContextWindows()  # context windows and characters per token
        self.cache = cache
        self.news = news  # the news agents may read (up to their clock), when there is a store
        self._waiting: dict[tuple[str, str], int] = {}
        self._schedules: weakref.WeakSet[Schedule] = weakref.WeakSet()

    def watch(self, schedule: Schedule) -> None:
        """Keep models warm for ``schedule``'s agents (held weakly: a dropped kernel leaves)."""
        self._schedules.add(schedule)

    def unwatch(self, schedule: Schedule) -> None:
        self._schedules.discard(schedule)

    def next_call_within(self, endpoint: str, model: str) -> float | None:
        """Wall seconds within which ``model`` on ``endpoint`` is called again at the latest
        (the shortest interval of the agents using it); None when no agent will call it."""
        gaps = [
            gap
            for schedule in list(self._schedules)
            for ep, name, gap in schedule.llm_intervals()
            if ep == endpoint and name == model
        ]
        return min(gaps) if gaps else None

    def _stays_warm(self, endpoint: str, model: str) -> bool:
        """GROUP: keep ``model`` loaded after its round? Not when another model's calls are
        queued on the endpoint (their round comes now), nor when nothing calls it soon."""
        if any(ep == endpoint and m != model for ep, m in self._waiting):
            return False
        gap = self.next_call_within(endpoint, model)
        return gap is not None and gap <= KEEP_WARM_MAX_SECONDS

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

    def keep_alive(self, name: str, model: str | None = None) -> int:
        """Ollama's ``keep_alive`` for a call to ``model`` on endpoint ``name``: under GROUP,
        long enough to bridge the gap to the model's next due call (seconds)."""
        policy = self.endpoint(name).keep_alive
        if policy is KeepAlive.GROUP and model is not None:
            gap = self.next_call_within(name, model)
            if gap is not None and gap <= KEEP_WARM_MAX_SECONDS:
                floor = KEEP_ALIVE_VALUE[policy]
                return max(floor, math.ceil(gap + KEEP_WARM_MARGIN_SECONDS))
        return KEEP_ALIVE_VALUE[policy]

    @contextlib.asynccontextmanager
    async def call(self, endpoint: str, model: str) -> AsyncIterator[None]:
        """Hold one of the endpoint's slots for a call to ``model``.

        Waiting calls for the model that is already loaded go first, so agents sharing a model
        run as a group and the model loads once per round. Under the GROUP policy, when the last
        waiting call for it is done, the model is unloaded unless it stays warm (see the module
        docstring)."""
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
                if self.endpoint(endpoint).keep_alive is KeepAlive.GROUP and not self._stays_warm(
                    endpoint, model
                ):
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
