"""The Telegram bot (python-telegram-bot, long polling): approval buttons, commands, and a
notifier sink that copies every notification to the allowed chats.

Only chats in ``allowed_chat_ids`` are served; any other chat is refused and logged before a
handler runs. Commands change the kernel under its lock, like the REST routes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram import Message as TgMessage
from telegram.error import RetryAfter, TelegramError
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    TypeHandler,
)

from phantomex.approvals import pending_summary
from phantomex.domain.agent import Agent
from phantomex.kernel.bus import Event, EventBus
from phantomex.kernel.runtime import Kernel, KernelError
from phantomex.notify.messages import Message, num
from phantomex.notify.notifier import DeliveryError
from phantomex.notify.settings import TELEGRAM_API
from phantomex.serialize import jsonable

log = logging.getLogger(__name__)

MAX_TEXT = 4096  # Bot API limit for sendMessage / editMessageText
MAX_RETRY_AFTER = 60.0  # longest flood-control wait honoured before giving up on a message

HELP = """PhantomEx commands:
/status: agents, kill switch, pending approvals
/pnl: profit and loss per agent
/pending: pending approvals (expiry, newer decisions waiting), with buttons
/pause <agent>, /resume <agent>: by name or id
/kill all|<agent> [flatten]: the kill switch (an argument is required)
/release: lift the global kill switch (agents stay stopped until resumed)"""

Context = ContextTypes.DEFAULT_TYPE


def approval_keyboard(decision_id: str) -> InlineKeyboardMarkup:
    """Approve/Reject buttons; callback data is ``approve:<id>`` (<= 64 bytes, the API limit)."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Approve", callback_data=f"approve:{decision_id}"),
                InlineKeyboardButton("Reject", callback_data=f"reject:{decision_id}"),
            ]
        ]
    )


def find_agent(kernel: Kernel, ref: str) -> Agent:
    """An agent by id, name (any case) or unique id prefix."""
    ref = ref.strip()
    if ref in kernel.agents:
        return kernel.agents[ref]
    named = [a for a in kernel.agents.values() if a.name.lower() == ref.lower()]
    if len(named) == 1:
        return named[0]
    prefixed = [a for a in kernel.agents.values() if ref and a.id.startswith(ref)]
    if len(prefixed) == 1:
        return prefixed[0]
    known = ", ".join(sorted(a.name for a in kernel.agents.values())) or "none"
    raise KernelError(f"no single agent matches {ref!r}; agents: {known}")


def outcome(d: dict[str, Any]) -> str:
    """One line on what became of a decision (a decision record as JSON)."""
    what = f"{str(d.get('action', '?')).upper()} {num(d.get('quantity'))} {d.get('symbol')}"
    status = str(d.get("status", "?"))
    if status == "executed":
        return f"Approved: {what} executed @ {num(d.get('price'))}"
    if status == "approved":
        return f"Approved: {what} placed"
    return f"{status.capitalize()}: {what} ({d.get('reason', '')})"


def status_text(kernel: Kernel) -> str:
    lines = [
        f"Kill switch: {'ON' if kernel.killed else 'off'}",
        f"Clock: {kernel.now.isoformat() if kernel.now else 'not started'}",
        f"Pending approvals: {len(kernel.pending())}",
    ]
    for agent in sorted(kernel.agents.values(), key=lambda a: a.name.lower()):
        w = kernel.agent_view(agent)["wallet"]
        lines.append(
            f"{agent.name}: {agent.status.value}, {agent.spec.mode.value}, equity "
            f"{num(w['equity'], 2)} ({num(w['pnl_pct'], 2)}%)"
        )
    return "\n".join(lines)


def pnl_text(kernel: Kernel) -> str:
    if not kernel.agents:
        return "No agents."
    lines, total = [], 0.0
    for agent in sorted(kernel.agents.values(), key=lambda a: a.name.lower()):
        w = kernel.agent_view(agent)["wallet"]
        total += float(w["pnl"])
        lines.append(
            f"{agent.name}: {num(w['pnl'], 2)} ({num(w['pnl_pct'], 2)}%), realized "
            f"{num(w['realized_pnl'], 2)}, unrealized {num(w['unrealized_pnl'], 2)}"
        )
    lines.append(f"Total: {num(total, 2)} USD")
    return "\n".join(lines)


async def send_text(
    bot: Bot, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None
) -> TgMessage:
    """sendMessage as plain text; on flood control (429) wait ``retry_after`` once and retry."""
    text = text[:MAX_TEXT]
    try:
        return await bot.send_message(chat_id, text, reply_markup=markup)
    except RetryAfter as exc:
        wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        if seconds > MAX_RETRY_AFTER:
            raise
        await asyncio.sleep(seconds)
        return await bot.send_message(chat_id, text, reply_markup=markup)


async def send_to_chats(
    bot: Bot, chat_ids: list[int], text: str, markup: InlineKeyboardMarkup | None = None
) -> list[TgMessage]:
    """Send to each chat; one chat failing does not stop the others (raises at the end)."""
    sent, failed = [], []
    for chat_id in chat_ids:
        try:
            sent.append(await send_text(bot, chat_id, text, markup))
        except TelegramError as exc:
            failed.append(f"chat {chat_id}: {exc}")
    if failed:
        raise DeliveryError("; ".join(failed))
    return sent


class TelegramBot:
    """The bot and its long-polling loop, run inside the server's event loop."""

    name = "telegram"

    def __init__(
        self,
        kernel: Kernel,
        token: str,
        allowed_chat_ids: list[int],
        *,
        api_url: str = TELEGRAM_API,
        poll_timeout: int = 30,
    ) -> None:
        self.kernel = kernel
        self.allowed = frozenset(allowed_chat_ids)
        self.poll_timeout = poll_timeout
        self.refused = 0
        self._buttons: dict[str, list[tuple[int, int, str]]] = {}  # decision: chat, message, text
        self._tasks: set[asyncio.Task[None]] = set()
        self.ready = False  # getMe answered and polling runs
        self._first_start = asyncio.Event()  # set once the first start attempt has an outcome
        file_url = api_url.removesuffix("/bot") + "/file/bot"
        self.app: Application[Any, Any, Any, Any, Any, Any] = (
            Application.builder().token(token).base_url(api_url).base_file_url(file_url).build()
        )
        self.app.add_handler(TypeHandler(Update, self._guard), group=-1)
        commands = {
            "start": self._help,
            "help": self._help,
            "status": self._status,
            "pnl": self._pnl,
            "pending": self._pending,
            "pause": self._pause,
            "resume": self._resume,
            "kill": self._kill,
            "release": self._release,
        }
        for command, callback in commands.items():
            self.app.add_handler(CommandHandler(command, callback))
        self.app.add_handler(CallbackQueryHandler(self._button, pattern=r"^(approve|reject):"))
        self.app.add_error_handler(self._error)

    # -- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Check the token (getMe) and start long polling. Updates sent while the server was down
        are dropped: an old /kill must not fire on the next start."""
        try:
            await self.app.initialize()
            assert self.app.updater is not None
            await self.app.updater.start_polling(
                timeout=self.poll_timeout,
                allowed_updates=["message", "callback_query"],
                drop_pending_updates=True,
            )
            await self.app.start()
            self.ready = True
        finally:
            self._first_start.set()
        log.info(
            "Telegram bot @%s polling for %d chat(s)", self.app.bot.username, len(self.allowed)
        )

    async def stop(self) -> None:
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    # -- the notifier sink ------------------------------------------------------------------------
    async def send(self, message: Message) -> None:
        """Send to every allowed chat; approval requests get Approve/Reject buttons. Waits for
        the first start attempt: nothing is sent through a token Telegram has not accepted."""
        await self._first_start.wait()
        if not self.ready:
            raise DeliveryError("the Telegram bot is not running")
        if message.decision_id is None:
            await send_to_chats(self.app.bot, sorted(self.allowed), message.text)
            return
        markup = approval_keyboard(message.decision_id)
        sent = await send_to_chats(self.app.bot, sorted(self.allowed), message.text, markup)
        copies = [(m.chat_id, m.message_id, message.text) for m in sent]
        rec = self.kernel.store.get_decision(message.decision_id)
        if rec is not None and rec.status != "pending":  # resolved while the message was queued
            await self._close(copies, outcome(jsonable(rec)))
        else:
            self._buttons[message.decision_id] = copies

    # -- approvals resolved elsewhere ---------------------------------------------------------
    def attach(self, bus: EventBus) -> Callable[[], None]:
        """Follow ``bus`` to take the buttons away from approvals resolved elsewhere."""
        return bus.subscribe(self.on_event)

    def on_event(self, event: Event) -> None:
        """A decision we showed buttons for was approved, rejected or expired (dashboard, CLI,
        expiry): edit our messages to say so, without buttons."""
        if event.type != "decision":
            return
        d = event.data.get("decision") or {}
        if d.get("status") == "pending" or str(d.get("id")) not in self._buttons:
            return
        sent = self._buttons.pop(str(d["id"]))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # published outside the server's loop: nothing to edit from here
            return
        task = loop.create_task(self._close(sent, outcome(d)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _close(self, sent: list[tuple[int, int, str]], line: str) -> None:
        for chat_id, message_id, text in sent:
            try:
                await self.app.bot.edit_message_text(
                    f"{text}\n\n{line}"[:MAX_TEXT], chat_id=chat_id, message_id=message_id
                )
            except TelegramError as exc:
                log.warning("could not update the approval message in chat %s: %s", chat_id, exc)

    # -- handlers ---------------------------------------------------------------------------------
    async def _guard(self, update: object, context: Context) -> None:
        """Refuse (and log) every update from a chat that is not allowed; nothing else runs."""
        if not isinstance(update, Update):
            raise ApplicationHandlerStop
        chat = update.effective_chat
        if chat is not None and chat.id in self.allowed:
            return
        self.refused += 1
        user = update.effective_user
        log.warning(
            "Telegram: refused an update from chat %s (user %s); not in allowed_chat_ids",
            chat.id if chat else None,
            user.id if user else None,
        )
        refusal = f"Not allowed: chat {chat.id if chat else '?'} is not in allowed_chat_ids."
        if update.callback_query is not None:
            await update.callback_query.answer(refusal, show_alert=True)
        elif update.effective_message is not None:
            await update.effective_message.reply_text(refusal)
        raise ApplicationHandlerStop

    async def _reply(self, update: Update, text: str) -> None:
        if update.effective_message is not None:
            await update.effective_message.reply_text(text[:MAX_TEXT])

    async def _help(self, update: Update, context: Context) -> None:
        await self._reply(update, HELP)

    async def _status(self, update: Update, context: Context) -> None:
        async with self.kernel.lock:
            text = status_text(self.kernel)
        await self._reply(update, text)

    async def _pnl(self, update: Update, context: Context) -> None:
        async with self.kernel.lock:
            text = pnl_text(self.kernel)
        await self._reply(update, text)

    async def _pending(self, update: Update, context: Context) -> None:
        async with self.kernel.lock:
            pending = self.kernel.pending()
            names = {a.id: a.name for a in self.kernel.agents.values()}
        if not pending:
            await self._reply(update, "No pending approvals.")
            return
        now = self.kernel.clock.now()
        for rec in pending[:20]:
            summary = pending_summary(jsonable(rec), now)
            text = (
                f"Approval needed: {names.get(rec.agent_id, rec.agent_id[:8])}\n"
                f"{rec.action.upper()} {num(rec.quantity)} {rec.symbol} @ {num(rec.price)}\n"
                f"{rec.reasoning}\n"
                f"{summary[:1].upper()}{summary[1:]}"
            )
            if update.effective_message is not None:
                await update.effective_message.reply_text(
                    text[:MAX_TEXT], reply_markup=approval_keyboard(rec.id)
                )

    async def _agent_command(self, update: Update, context: Context, verb: str) -> None:
        if not context.args:
            await self._reply(update, f"Usage: /{verb} <agent name or id>")
            return
        try:
            async with self.kernel.lock:
                agent = find_agent(self.kernel, " ".join(context.args))
                agent = getattr(self.kernel, verb)(agent.id)
                text = f"{agent.name}: {agent.status.value}"
        except KernelError as exc:
            text = f"Not done: {exc}"
        await self._reply(update, text)

    async def _pause(self, update: Update, context: Context) -> None:
        await self._agent_command(update, context, "pause")

    async def _resume(self, update: Update, context: Context) -> None:
        await self._agent_command(update, context, "resume")

    async def _kill(self, update: Update, context: Context) -> None:
        """``/kill all`` or ``/kill <agent>``, optionally ``flatten``; bare ``/kill`` only explains,
        so a stray tap in the command menu cannot stop everything."""
        args = list(context.args or [])
        flatten = bool(args) and args[-1].lower() == "flatten"
        target = " ".join(args[:-1] if flatten else args)
        if not target:
            await self._reply(update, "Usage: /kill all [flatten] or /kill <agent> [flatten]")
            return
        try:
            async with self.kernel.lock:
                agent_id = None if target.lower() == "all" else find_agent(self.kernel, target).id
                affected = self.kernel.kill(agent_id, flatten=flatten)
            text = (
                f"Kill switch ON for {'all agents' if agent_id is None else target}: "
                f"{len(affected)} agent(s) stopped" + (", positions closed" if flatten else "")
            )
        except KernelError as exc:
            text = f"Not done: {exc}"
        await self._reply(update, text)

    async def _release(self, update: Update, context: Context) -> None:
        async with self.kernel.lock:
            self.kernel.release_kill()
        await self._reply(update, "Kill switch released; agents stay stopped until /resume.")

    async def _button(self, update: Update, context: Context) -> None:
        query = update.callback_query
        assert query is not None and query.data is not None
        verb, _, decision_id = query.data.partition(":")
        copies = self._buttons.pop(decision_id, [])  # this press edits them, not on_event
        try:
            async with self.kernel.lock:
                rec = (self.kernel.approve if verb == "approve" else self.kernel.reject)(
                    decision_id
                )
            result = outcome(jsonable(rec))
        except KernelError as exc:
            result = f"Not done: {exc}"
        who = query.from_user.username or query.from_user.first_name if query.from_user else "?"
        await query.answer(result[:200])
        original = query.message.text if query.message and hasattr(query.message, "text") else ""
        await query.edit_message_text(f"{original}\n\n{result} (by {who})"[:MAX_TEXT])
        pressed = (query.message.chat.id, query.message.message_id) if query.message else None
        await self._close([c for c in copies if c[:2] != pressed], f"{result} (by {who})")

    async def _error(self, update: object, context: Context) -> None:
        log.error("Telegram bot: %s", context.error, exc_info=context.error)
