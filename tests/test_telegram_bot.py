"""The Telegram bot against a local Bot API stand-in: approval by button press, commands, chats
that are not allowed, flood control."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from fakeapi import FakeAPI, Reply, fixture
from faketelegram import FakeTelegram
from notify_helpers import make_kernel, next_minute, tick_at
from telegram.error import InvalidToken

from phantomex.domain.agent import AgentSpec
from phantomex.domain.clock import SimulatedClock
from phantomex.domain.models import Action, AgentStatus, Decision, Mode
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel
from phantomex.notify.messages import Message
from phantomex.notify.notifier import Notifier
from phantomex.notify.settings import NotificationSettings
from phantomex.notify.telegram import TelegramBot
from phantomex.service import Service

STRANGER = 666


class Rig:
    def __init__(self, kernel: Kernel, tg: FakeTelegram, bot: TelegramBot) -> None:
        self.kernel, self.tg, self.bot = kernel, tg, bot

    async def command(self, text: str, chat_id: int | None = None) -> str:
        """Send ``text`` from a chat and return the bot's reply to that chat."""
        chat = chat_id or self.tg.chat_id
        before = len(self.tg.sent(chat))
        self.tg.push_command(chat, text)
        replies = await self.tg.until(lambda: self.tg.sent(chat)[before:])
        return str(replies[0]["text"])


@pytest_asyncio.fixture()
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    with FakeAPI() as api:
        kernel = make_kernel(tmp_path / "k.db")
        tg = FakeTelegram(api)
        bot = TelegramBot(
            Service.of(kernel), tg.token, [tg.chat_id], api_url=tg.api_url, poll_timeout=1
        )
        await bot.start()
        try:
            yield Rig(kernel, tg, bot)
        finally:
            await bot.stop()
            kernel.store.close()


async def advisory_request(rig: Rig) -> tuple[str, dict[str, Any]]:
    """An advisory agent asks for a buy; returns the decision id and the message with buttons."""
    kernel = rig.kernel
    notifier = Notifier(NotificationSettings(), [rig.bot])
    notifier.attach(kernel.bus)
    await notifier.start()
    agent = kernel.create_agent(
        AgentSpec(
            name="Asky",
            brain="rsi",
            symbols=["SOL"],
            mode=Mode.ADVISORY,
            risk=RiskProfile(cooldown_seconds=0),
        )
    )
    await kernel.step(tick_at(next_minute(kernel), {"SOL": "150"}))
    async with kernel.lock:
        rec = kernel.place(agent.id, Decision(Action.BUY, "SOL"))
    assert rec.status == "pending"
    await notifier.stop()
    message = next(m for m in rig.tg.sent() if "reply_markup" in m)
    return rec.id, message


@pytest.mark.asyncio
async def test_an_approval_made_by_a_button_press(rig: Rig) -> None:
    decision_id, message = await advisory_request(rig)
    assert rig.kernel.store.trades()[1] == 0
    rig.tg.push_button(rig.tg.chat_id, f"approve:{decision_id}", message)
    edits = await rig.tg.until(lambda: rig.tg.calls("editMessageText"))
    stored = rig.kernel.store.get_decision(decision_id)
    assert stored is not None and stored.status == "executed"
    assert rig.kernel.store.trades()[1] == 1
    answer = rig.tg.calls("answerCallbackQuery")[0]
    assert answer["text"].startswith("Approved: BUY") and "executed @ 150" in answer["text"]
    assert edits[0]["message_id"] == str(message["message_id"])
    assert "Approved: BUY" in edits[0]["text"] and "(by ada)" in edits[0]["text"]
    assert "reply_markup" not in edits[0]  # the buttons are gone

    rig.tg.push_button(rig.tg.chat_id, f"reject:{decision_id}", message)  # a second press
    await rig.tg.until(lambda: len(rig.tg.calls("answerCallbackQuery")) == 2)
    assert "not pending" in rig.tg.calls("answerCallbackQuery")[1]["text"]
    assert rig.kernel.store.get_decision(decision_id).status == "executed"  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_a_rejection_by_button(rig: Rig) -> None:
    decision_id, message = await advisory_request(rig)
    rig.tg.push_button(rig.tg.chat_id, f"reject:{decision_id}", message)
    await rig.tg.until(lambda: rig.tg.calls("editMessageText"))
    stored = rig.kernel.store.get_decision(decision_id)
    assert stored is not None and stored.status == "rejected"
    assert rig.kernel.store.trades()[1] == 0


@pytest.mark.asyncio
async def test_a_command_from_an_unknown_chat_is_refused(rig: Rig) -> None:
    reply = await rig.command("/kill all", chat_id=STRANGER)
    assert reply == f"Not allowed: chat {STRANGER} is not in allowed_chat_ids."
    assert not rig.kernel.killed and rig.bot.refused == 1

    decision_id, message = await advisory_request(rig)
    rig.tg.push_button(STRANGER, f"approve:{decision_id}", message)
    answer = (await rig.tg.until(lambda: rig.tg.calls("answerCallbackQuery")))[0]
    assert answer["text"].startswith("Not allowed") and answer["show_alert"] == "true"
    stored = rig.kernel.store.get_decision(decision_id)
    assert stored is not None and stored.status == "pending"  # untouched
    assert rig.bot.refused == 2 and not rig.tg.calls("editMessageText")


@pytest.mark.asyncio
async def test_commands(rig: Rig) -> None:
    kernel = rig.kernel
    agent = kernel.create_agent(
        AgentSpec(name="Ruby", brain="rsi", symbols=["BTC"], risk=RiskProfile(cooldown_seconds=0))
    )
    await kernel.step(tick_at(next_minute(kernel), {"BTC": "30000"}))
    kernel.place(agent.id, Decision(Action.BUY, "BTC"))
    await kernel.step(tick_at(next_minute(kernel), {"BTC": "30300"}))

    assert "/pnl" in await rig.command("/help")
    status = await rig.command("/status")
    assert "Kill switch: off" in status and "Ruby: running, autonomous, equity" in status
    pnl = await rig.command("/pnl")
    assert pnl.startswith("Ruby: ") and "Total: " in pnl
    assert await rig.command("/pending") == "No pending approvals."

    assert await rig.command("/pause") == "Usage: /pause <agent name or id>"
    assert await rig.command("/pause ruby") == "Ruby: paused"
    assert agent.status is AgentStatus.PAUSED
    assert (await rig.command("/pause nobody")).startswith("Not done: no single agent matches")
    assert await rig.command(f"/resume {agent.id[:6]}") == "Ruby: running"

    assert (await rig.command("/kill")).startswith("Usage: /kill all")
    assert not kernel.killed  # a bare /kill only explains
    reply = await rig.command("/kill all flatten")
    assert reply == "Kill switch ON for all agents: 1 agent(s) stopped, positions closed"
    assert kernel.killed and kernel.ledger.wallet(agent.id).positions == {}
    assert (await rig.command("/release")).startswith("Kill switch released")
    assert not kernel.killed and agent.status is AgentStatus.STOPPED


@pytest.mark.asyncio
async def test_flood_control_429_waits_retry_after_then_sends(rig: Rig) -> None:
    rig.tg.failures["sendMessage"] = [Reply(429, fixture("telegram/error_429.json"))]
    await rig.bot.send(Message("server", "PhantomEx started", ""))
    assert [c["text"] for c in rig.tg.calls("sendMessage")] == ["PhantomEx started"] * 2
    assert [m["text"] for m in rig.tg.sent()] == ["PhantomEx started"]


@pytest.mark.asyncio
async def test_a_wrong_token_fails_at_start_with_a_clear_error(tmp_path: Path) -> None:
    with FakeAPI() as api:
        tg = FakeTelegram(api)
        tg.failures["getMe"] = [Reply(401, fixture("telegram/error_401.json"))]
        kernel = make_kernel(tmp_path / "k.db")
        bot = TelegramBot(Service.of(kernel), tg.token, [tg.chat_id], api_url=tg.api_url)
        with pytest.raises(InvalidToken):
            await bot.start()
        kernel.store.close()


@pytest.mark.asyncio
async def test_buttons_go_when_the_approval_is_resolved_elsewhere(rig: Rig) -> None:
    rig.bot.attach(rig.kernel.bus)
    decision_id, message = await advisory_request(rig)
    async with rig.kernel.lock:
        rig.kernel.approve(decision_id)  # as the dashboard or the CLI would
    edit = (await rig.tg.until(lambda: rig.tg.calls("editMessageText")))[0]
    assert edit["message_id"] == str(message["message_id"]) and "reply_markup" not in edit
    assert edit["text"].startswith(message["text"]) and "Approved: BUY" in edit["text"]

    agent_id = rig.kernel.store.get_decision(decision_id).agent_id  # type: ignore[union-attr]
    notifier = Notifier(NotificationSettings(), [rig.bot])
    notifier.attach(rig.kernel.bus)
    await notifier.start()
    async with rig.kernel.lock:
        first = rig.kernel.place(agent_id, Decision(Action.SELL, "SOL"))
        assert first.status == "pending"
        newer = rig.kernel.place(agent_id, Decision(Action.SELL, "SOL"))
    await notifier.stop()  # sends what it queued
    assert newer.status == "held" and newer.reason.startswith("waiting for your answer")
    request = next(m for m in rig.tg.sent() if first.id in str(m.get("reply_markup")))
    assert (
        "Answer by " in request["text"]
        and "newer decisions wait until you answer" in request["text"]
    )
    listed = await rig.command("/pending")  # the newer decision waits behind the first
    assert "Expires in 5:00 (" in listed and "1 newer decision waiting behind it" in listed

    assert isinstance(rig.kernel.clock, SimulatedClock)
    rig.kernel.clock.advance(timedelta(minutes=6))  # nobody answered in time
    async with rig.kernel.lock:
        with rig.kernel.unit():
            await rig.kernel.step(tick_at(next_minute(rig.kernel), {"SOL": "150"}))
    edits = await rig.tg.until(lambda: rig.tg.calls("editMessageText")[1:])
    assert "Expired: SELL" in edits[0]["text"] and "no answer before the expiry" in edits[0]["text"]
