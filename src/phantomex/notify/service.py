"""Notifications for the server's lifetime: builds the notifier and the Telegram bot from the
settings, announces the server's start and stop, and never lets a failure stop the server."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from telegram.error import Forbidden, InvalidToken, NetworkError

from phantomex import __version__
from phantomex.notify.notifier import AppriseSink, Notifier, Sink
from phantomex.notify.settings import NotificationSettings
from phantomex.notify.telegram import TelegramBot
from phantomex.service import Service

log = logging.getLogger(__name__)

RETRY_SECONDS = (5, 15, 60, 300)  # Telegram unreachable at start: try again after these


class Notifications:
    """The running notifier and bot (either may be absent)."""

    def __init__(
        self, service: Service, notifier: Notifier | None, bot: TelegramBot | None
    ) -> None:
        self.service = service
        self.notifier = notifier
        self.bot = bot
        self._bot_task: asyncio.Task[None] | None = None
        self._detach = [
            service.queries.subscribe(x.on_event) for x in (notifier, bot) if x is not None
        ]

    @classmethod
    async def open(
        cls, config: NotificationSettings, service: Service, *, data_dir: Path, base_url: str
    ) -> Notifications:
        """Start what ``config`` asks for (``data_dir`` holds the bot token's key; ``base_url``
        is announced)."""
        sinks: list[Sink] = []
        if config.urls:
            apprise_log = logging.getLogger("apprise")
            if apprise_log.level == logging.NOTSET:  # not one "Notifying 1 service(s)" per message
                apprise_log.setLevel(logging.WARNING)
            apprise_sink = AppriseSink([u.get_secret_value() for u in config.urls])
            if len(apprise_sink):
                sinks.append(apprise_sink)
        bot = None
        if config.telegram.enabled:
            try:
                token = config.telegram.bot_token(data_dir)
            except ValueError as exc:  # SecretError: wrong or rotated key
                log.error("Telegram bot disabled: %s", exc)
                token = None
            if token and not config.telegram.allowed_chat_ids:
                log.error("Telegram bot disabled: notifications.telegram.allowed_chat_ids is empty")
            elif token:
                bot = TelegramBot(
                    service,
                    token,
                    config.telegram.allowed_chat_ids,
                    api_url=config.telegram.api_url,
                    poll_timeout=config.telegram.poll_timeout,
                )
                sinks.append(bot)
        notifier = None
        if sinks:
            notifier = Notifier(config, sinks, name_of=service.queries.agent_name)
            await notifier.start()
        self = cls(service, notifier, bot)
        if bot is not None:
            self._bot_task = asyncio.create_task(self._start_bot(bot), name="telegram-bot")
        self._announce("started", url=base_url)
        return self

    async def _start_bot(self, bot: TelegramBot) -> None:
        for attempt, wait in enumerate((*RETRY_SECONDS, None)):
            try:
                await bot.start()
                return
            except (InvalidToken, Forbidden) as exc:
                log.error("Telegram bot disabled: the token was refused (%s)", exc)
                break
            except NetworkError as exc:
                if wait is None:
                    log.error("Telegram bot disabled: unreachable after %d tries", attempt + 1)
                    break
                log.warning("Telegram unreachable (%s); trying again in %d s", exc, wait)
                await asyncio.sleep(wait)
        if self.notifier is not None and bot in self.notifier.sinks:
            self.notifier.sinks.remove(bot)  # the other channels go on

    def _announce(self, what: str, **data: str) -> None:
        self.service.commands.announce("server", {"event": what, "version": __version__, **data})

    async def close(self) -> None:
        """Announce the stop, send what is queued, stop the bot."""
        self._announce("stopped")
        if self.notifier is not None:
            await self.notifier.stop()
        for detach in self._detach:
            detach()
        if self._bot_task is not None:
            self._bot_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._bot_task
        if self.bot is not None:
            with contextlib.suppress(Exception):  # never block the shutdown on Telegram
                await self.bot.stop()
