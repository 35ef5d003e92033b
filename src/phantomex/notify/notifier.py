"""The Notifier: follows the kernel's event bus and delivers messages in the background.

``on_event`` runs inside the kernel's tick, so it only formats and queues; a worker task sends
through the sinks (apprise URLs, the Telegram bot). A failing sink is logged and counted and
never reaches the kernel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from typing import Protocol

import apprise

from phantomex.kernel.bus import Event, EventBus
from phantomex.notify.limiter import RateLimit
from phantomex.notify.messages import Message, NameOf, to_message
from phantomex.notify.settings import NotificationSettings

log = logging.getLogger(__name__)

SEND_TIMEOUT = 60.0  # seconds one sink may take for one message


class DeliveryError(RuntimeError):
    """A sink could not deliver a message."""


class Sink(Protocol):
    name: str

    async def send(self, message: Message) -> None:
        """Deliver ``message`` or raise."""


class AppriseSink:
    """Every configured apprise URL (Telegram, Discord, e-mail, ntfy, JSON webhooks, ...)."""

    name = "apprise"

    def __init__(self, urls: list[str]) -> None:
        self.apprise = apprise.Apprise()
        self.invalid: list[str] = []  # schemes only: the URLs themselves hold secrets
        for url in urls:
            if not self.apprise.add(url):
                self.invalid.append(url.split("://", 1)[0] + "://…" if "://" in url else "?")
        if self.invalid:
            log.error("ignored %d invalid notification URL(s): %s", len(self.invalid), self.invalid)

    def __len__(self) -> int:
        return len(self.apprise)

    async def send(self, message: Message) -> None:
        ok = await self.apprise.async_notify(
            body=message.body or message.title, title=message.title
        )
        if not ok:
            raise DeliveryError("at least one notification URL failed (see the apprise log)")


class Notifier:
    """Maps bus events to messages, applies the switches and the rate limit, delivers."""

    def __init__(
        self,
        settings: NotificationSettings,
        sinks: list[Sink],
        *,
        name_of: NameOf = lambda _: None,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.sinks = sinks
        self.name_of = name_of
        self.limit = RateLimit(settings.max_per_minute, window)
        self.stats: Counter[str] = Counter()  # queued, sent, failed, held, dropped
        self._clock = clock
        self._queue: asyncio.Queue[Message | None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def attach(self, bus: EventBus) -> Callable[[], None]:
        """Follow ``bus``; returns the function that stops following it."""
        return bus.subscribe(self.on_event)

    def on_event(self, event: Event) -> None:
        message = to_message(event, self.name_of)
        if message is not None and getattr(self.settings.events, message.kind, True):
            self.submit(message)

    def submit(self, message: Message) -> None:
        """Queue ``message`` without blocking; from any thread. A full queue drops it."""
        loop, queue = self._loop, self._queue
        if loop is None or queue is None or loop.is_closed():
            self.stats["dropped"] += 1
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._put(message)
            return
        try:
            loop.call_soon_threadsafe(self._put, message)
        except RuntimeError:  # the loop closed meanwhile
            self.stats["dropped"] += 1

    def _put(self, message: Message) -> None:
        assert self._queue is not None
        try:
            self._queue.put_nowait(message)
            self.stats["queued"] += 1
        except asyncio.QueueFull:
            self.stats["dropped"] += 1
            log.warning("notification queue full; dropped %s message", message.kind)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue = asyncio.Queue(self.settings.queue_size)
        self._task = asyncio.create_task(self._run(), name="notifier")

    async def stop(self, timeout: float = 10.0) -> None:
        """Send what is queued (for up to ``timeout`` seconds), then stop."""
        if self._task is None or self._queue is None:
            return
        with contextlib.suppress(asyncio.QueueFull):
            self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            log.warning("notifications still queued at shutdown were not sent")
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = self._queue = None  # later messages are counted as dropped
        log.info("notifications: %s", dict(self.stats))

    async def _run(self) -> None:
        assert self._queue is not None
        while True:
            wait = self.limit.next_free(self._clock())
            try:
                message = await asyncio.wait_for(self._queue.get(), wait)
            except TimeoutError:
                summary = self.limit.summary(self._clock())
                if summary is not None:
                    await self._deliver(summary)
                continue
            if message is None:
                summary = self.limit.summary(self._clock(), force=True)
                if summary is not None:
                    await self._deliver(summary)
                return
            if self.limit.admit(message, self._clock()):
                await self._deliver(message)
            else:
                self.stats["held"] += 1

    async def _deliver(self, message: Message) -> None:
        for sink in self.sinks:
            try:
                await asyncio.wait_for(sink.send(message), SEND_TIMEOUT)
                self.stats["sent"] += 1
            except Exception as exc:  # a notification failure must never reach the kernel
                self.stats["failed"] += 1
                log.warning("%s notification via %s failed: %s", message.kind, sink.name, exc)
