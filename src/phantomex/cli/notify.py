"""``phantomex notify test`` and ``phantomex notify encrypt-token``: check the configured
notification channels, and store the Telegram bot token encrypted."""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Annotated

import typer

from phantomex.cli.client import fail
from phantomex.cli.output import say
from phantomex.cli.settings_arg import settings_from

if TYPE_CHECKING:
    from phantomex.config import Settings

TEST_TITLE = "PhantomEx test"
TEST_BODY = "If you can read this, PhantomEx notifications reach you."
TOKEN_SHAPE = re.compile(r"^\d+:[\w-]{20,}$")  # <bot id>:<secret>, as @BotFather gives it


async def _send_test(settings: Settings) -> list[tuple[str, str | None]]:
    """(channel, error or None) for each configured channel."""
    from telegram import Bot
    from telegram.error import TelegramError

    from phantomex.notify.messages import Message
    from phantomex.notify.notifier import AppriseSink, DeliveryError
    from phantomex.notify.telegram import send_to_chats
    from phantomex.secrets import SecretError

    config = settings.notifications
    results: list[tuple[str, str | None]] = []
    if config.urls:
        sink = AppriseSink([u.get_secret_value() for u in config.urls])
        for scheme in sink.invalid:
            results.append((f"apprise URL {scheme}", "not a valid apprise URL"))
        if len(sink):
            try:
                await sink.send(Message("test", TEST_TITLE, TEST_BODY))
                results.append((f"apprise ({len(sink)} URL(s))", None))
            except DeliveryError as exc:
                results.append((f"apprise ({len(sink)} URL(s))", str(exc)))
    tg = config.telegram
    if tg.enabled:
        channel = f"telegram ({len(tg.allowed_chat_ids)} chat(s))"
        try:
            token = tg.bot_token(settings.data_dir)
            if not tg.allowed_chat_ids:
                raise DeliveryError("notifications.telegram.allowed_chat_ids is empty")
            assert token is not None
            async with Bot(token, base_url=tg.api_url) as bot:
                await send_to_chats(bot, tg.allowed_chat_ids, f"{TEST_TITLE}\n{TEST_BODY}")
            results.append((channel, None))
        except (TelegramError, DeliveryError, SecretError) as exc:
            results.append((channel, str(exc)))
    return results


def register(app: typer.Typer) -> None:
    """Add the ``notify`` commands to ``app``."""
    notify_app = typer.Typer(help="Notifications and the Telegram bot.", no_args_is_help=True)
    app.add_typer(notify_app, name="notify")

    @notify_app.command("test")
    def test() -> None:
        """Send a test message through every configured channel (the notifications table)."""
        settings = settings_from()
        skipped = [p for p in settings.skipped if p.name.startswith("notifications")]
        for problem in skipped:
            say(f"invalid setting {problem.name}: {problem.reason}", "red")
        if not settings.notifications.enabled:
            fail(
                "no notification channel configured: set [notifications] urls = [...] or "
                "[notifications.telegram] in phantomex.toml"
            )
        results = asyncio.run(_send_test(settings))
        for channel, error in results:
            say(
                f"{channel}: {'sent' if error is None else 'FAILED: ' + error}",
                "green" if error is None else "red",
            )
        if skipped or any(error is not None for _, error in results):
            raise typer.Exit(1)

    @notify_app.command("encrypt-token")
    def encrypt_token(
        token: Annotated[
            str,
            typer.Option(
                prompt="Telegram bot token",
                hide_input=True,
                envvar="PHANTOMEX_TELEGRAM_TOKEN",
                help="The token from @BotFather (asked for when not given).",
                show_default=False,
            ),
        ],
    ) -> None:
        """Encrypt the bot token with the data folder's key, for token_encrypted in the TOML."""
        token = token.strip()
        if not TOKEN_SHAPE.match(token):
            fail("that does not look like a bot token (<digits>:<secret> from @BotFather)")
        from phantomex.secrets import SecretBox

        settings = settings_from()
        encrypted = SecretBox.for_data_dir(settings.data_dir).encrypt(token)
        say("[notifications.telegram]")
        say(f'token_encrypted = "{encrypted}"')
