"""In-process event bus: the kernel publishes, the store, WebSocket hub and others follow."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from phantomex.domain.clock import Clock, WallClock
from phantomex.kernel.events import KernelEvent

log = logging.getLogger(__name__)

EVENT_TYPES = (
    "price",
    "decision",
    "approval",
    "trade",
    "agent",
    "risk",
    "error",
    "server",  # {"event": "started" | "stopped", "version", "url"}
    "session_summary",  # {"session_id", "text"}
    "sources",  # {"sources": [SourceHealth.as_dict()...], "changed": [...]}
    "llm",  # {"agent_id", "calls": [endpoint, model, purpose, latency_seconds, ...]}
    "feed_stale",  # {"source", "stale": bool, ...} (a SourceHealth record)
)

_KNOWN = frozenset(EVENT_TYPES)


@dataclass(frozen=True, slots=True)
class Event:
    """A typed message. ``time`` is the kernel's clock; ``wall_time`` when it was published."""

    type: str
    data: dict[str, Any]
    time: datetime
    wall_time: datetime


Subscriber = Callable[[Event], None]
Payload = dict[str, Any] | Callable[[], dict[str, Any]]


class EventBus:
    """Delivers the kernel's events; ``clock`` stamps each with its publication time."""

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock = clock or WallClock()
        self._subscribers: list[Subscriber] = []
        self._types: dict[Subscriber, frozenset[str] | None] = {}
        self._wanted: frozenset[str] | None = frozenset()  # the types followed (None: all)
        self._held: ContextVar[list[Event] | None] = ContextVar(f"held-{id(self)}", default=None)

    def subscribe(self, fn: Subscriber, types: Iterable[str] | None = None) -> Callable[[], None]:
        """Add a subscriber (of ``types`` only, when given; every event otherwise); returns the
        function that removes it."""
        self._subscribers.append(fn)
        self._types[fn] = frozenset(types) if types is not None else None
        self._follow()

        def remove() -> None:
            self._subscribers.remove(fn)
            if fn not in self._subscribers:
                self._types.pop(fn, None)
            self._follow()

        return remove

    def _follow(self) -> None:
        """Note the types followed now (:meth:`wants` is asked on every event)."""
        kinds = list(self._types.values())
        every = any(k is None for k in kinds)
        self._wanted = None if every else frozenset(t for k in kinds if k is not None for t in k)

    def wants(self, type_: str) -> bool:
        """Whether any subscriber follows events of ``type_``."""
        return self._wanted is None or type_ in self._wanted

    def publish(self, type_: str, data: Payload, time: datetime) -> None:
        """Publish an event. ``data`` may be a function building the payload: it is called
        (at once) only when someone follows ``type_``, so unfollowed events cost nothing."""
        if type_ not in _KNOWN:
            raise ValueError(f"unknown event type {type_}")
        if callable(data):
            if not self.wants(type_):
                return
            data = data()
        event = Event(type_, data, time, self._clock.now())
        held = self._held.get()
        if held is not None:
            held.append(event)
        else:
            self._deliver(event)

    def emit(self, event: KernelEvent, time: datetime) -> None:
        """Publish a typed event (its payload is built only when someone follows its type)."""
        self.publish(event.type, event.payload, time)

    def held(self) -> AbstractContextManager[None]:
        """Hold the events published in this context (this task) until it ends without an error,
        then deliver them; drop them if it fails. The kernel wraps each store transaction in it,
        so followers never hear of a change that a rollback or a crash undid."""
        return _Held(self)

    def _deliver(self, event: Event) -> None:
        for fn in list(self._subscribers):
            types = self._types.get(fn)
            if types is not None and event.type not in types:
                continue
            try:
                fn(event)
            except Exception:  # a broken follower must never stop the kernel
                log.exception("event subscriber failed on %s", event.type)


class _Held:
    """:meth:`EventBus.held` (a plain context manager: it wraps every tick)."""

    __slots__ = ("_bus", "_events", "_token")

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._events: list[Event] = []
        self._token: Token[list[Event] | None] | None = None

    def __enter__(self) -> None:
        if self._bus._held.get() is None:  # the outermost: nested ones deliver nothing
            self._token = self._bus._held.set(self._events)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._token is None:
            return
        self._bus._held.reset(self._token)
        if kind is None:
            for event in self._events:
                self._bus._deliver(event)
