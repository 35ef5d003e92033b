"""Notifications: a real kernel's events delivered through apprise (``json://`` to a local
server) and the Telegram bot (python-telegram-bot against a local Bot API stand-in)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeAPI, Reply, fixture
from faketelegram import FakeTelegram
from notify_helpers import make_kernel, next_minute, posted, tick_at, webhook
from pydantic import ValidationError

from phantomex.config import load_settings
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Action, Decision, Mode
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.bus import Event
from phantomex.market.health import SourceHealth
from phantomex.notify.limiter import RateLimit
from phantomex.notify.messages import Message, to_message
from phantomex.notify.notifier import AppriseSink, Notifier, Sink
from phantomex.notify.settings import NotificationSettings
from phantomex.notify.telegram import TelegramBot
from phantomex.service import Service


@pytest.fixture()
def api() -> Iterator[FakeAPI]:
    with FakeAPI() as server:
        yield server


def settings(**kw: Any) -> NotificationSettings:
    return NotificationSettings.model_validate({"max_per_minute": 1000, **kw})


@pytest.mark.asyncio
async def test_a_message_for_each_event_type_via_telegram_and_apprise(
    tmp_path: Path, api: FakeAPI
) -> None:
    kernel = make_kernel(tmp_path / "k.db")
    tg = FakeTelegram(api)
    bot = TelegramBot(
        Service.of(kernel), tg.token, [tg.chat_id], api_url=tg.api_url, poll_timeout=1
    )
    await bot.start()
    notifier = Notifier(
        settings(urls=[webhook(api)]),
        [AppriseSink([webhook(api)]), bot],
        name_of=lambda i: kernel.agents[i].name if i in kernel.agents else None,
    )
    notifier.attach(kernel.bus)
    await notifier.start()
    try:
        kernel.bus.publish("server", {"event": "started", "version": "t"}, next_minute(kernel, 0))
        sl = kernel.create_agent(
            AgentSpec(
                name="Stoppy",
                brain="rsi",
                params={"oversold": 1, "overbought": 99},
                symbols=["BTC"],
                risk=RiskProfile(cooldown_seconds=0, stop_loss_pct=Decimal(2)),
            )
        )
        dd = kernel.create_agent(
            AgentSpec(
                name="Drawy",
                brain="rsi",
                params={"oversold": 1, "overbought": 99},
                symbols=["BTC"],
                risk=RiskProfile(
                    cooldown_seconds=0,
                    stop_loss_pct=None,
                    max_allocation_pct=Decimal(50),
                    max_drawdown_pct=Decimal(1),
                ),
            )
        )
        adv = kernel.create_agent(
            AgentSpec(name="Asky", brain="rsi", symbols=["SOL"], mode=Mode.ADVISORY)
        )
        t0 = next_minute(kernel)
        await kernel.step(tick_at(t0, {"BTC": "30000", "SOL": "150"}))
        kernel.place(sl.id, Decision(Action.BUY, "BTC"))  # trade executed
        kernel.place(dd.id, Decision(Action.BUY, "BTC"))
        pending = kernel.place(adv.id, Decision(Action.BUY, "SOL"))  # approval requested
        assert pending.status == "pending"
        # -3.3 %: Stoppy's stop-loss and Drawy's drawdown exit fire before agents decide
        await kernel.step(tick_at(next_minute(kernel), {"BTC": "29000", "SOL": "150"}))
        kernel.kill()  # the kill switch
        health = SourceHealth("coingecko")
        health.failed(t0, "HTTP 429")
        kernel.bus.publish("feed_stale", health.as_dict(t0), t0)
        kernel.bus.publish("session_summary", {"session_id": "s1", "text": "+1.2 %"}, t0)
        kernel.bus.publish("server", {"event": "stopped"}, t0)
    finally:
        await notifier.stop()
        await bot.stop()
        kernel.store.close()

    texts = [m["text"] for m in tg.sent(tg.chat_id)]
    expected = [
        "PhantomEx started",
        "Trade: Stoppy\nBUY",
        "Approval needed: Asky\nBUY",
        "Stop-loss: Stoppy BTC",
        "Drawdown exit: Drawy",
        "Trade: Stoppy\nSELL",
        "Trade: Drawy\nSELL",
        "Kill switch ON",
        "Feed stale: coingecko",
        "Session s1 summary\n+1.2 %",
        "PhantomEx stopped",
    ]
    for start in expected:
        assert any(t.startswith(start) for t in texts), f"no Telegram message {start!r}: {texts}"
    approval = next(m for m in tg.sent() if m["text"].startswith("Approval needed"))
    buttons = approval["reply_markup"]["inline_keyboard"][0]
    assert [b["callback_data"] for b in buttons] == [
        f"approve:{pending.id}",
        f"reject:{pending.id}",
    ]
    assert "HTTP 429" in next(t for t in texts if t.startswith("Feed stale"))
    bodies = posted(api)
    assert len(bodies) == len(texts)  # the same messages through apprise
    assert {b["title"] for b in bodies} >= {"PhantomEx started", "Trade: Stoppy", "Kill switch ON"}
    assert notifier.stats["failed"] == 0 and notifier.stats["dropped"] == 0


@pytest.mark.asyncio
async def test_rate_limit_coalesces_the_rest_into_one_message(tmp_path: Path, api: FakeAPI) -> None:
    kernel = make_kernel(tmp_path / "k.db")
    url = webhook(api)
    notifier = Notifier(
        NotificationSettings(urls=[url], max_per_minute=2), [AppriseSink([url])], window=0.5
    )
    notifier.attach(kernel.bus)
    await notifier.start()
    agent = kernel.create_agent(
        AgentSpec(name="busy", brain="rsi", symbols=["ETH"], risk=RiskProfile(cooldown_seconds=0))
    )
    await kernel.step(tick_at(next_minute(kernel), {"ETH": "2000"}))
    for _ in range(6):
        rec = kernel.place(agent.id, Decision(Action.BUY, "ETH", quantity=Decimal("0.1")))
        assert rec.status == "executed"
    await FakeTelegram.until(lambda: len(posted(api)) >= 3)
    await notifier.stop()
    kernel.store.close()
    titles = [b["title"] for b in posted(api)]
    assert titles == ["Trade: busy", "Trade: busy", "4 more events (rate limit)"]
    assert posted(api)[-1]["message"] == "Not sent: 4 trade"
    assert notifier.stats["held"] == 4


def test_rate_limit_window_is_deterministic() -> None:
    limit = RateLimit(2, window=60)
    trade = Message("trade", "t", "")
    assert [limit.admit(trade, t) for t in (0, 1, 2, 3)] == [True, True, False, False]
    assert limit.admit(Message("approval", "a", "", urgent=True), 4)  # never held back
    assert limit.summary(30) is None and limit.next_free(30) == pytest.approx(30)
    summary = limit.summary(61.5)
    assert summary is not None and summary.title == "2 more events (rate limit)"
    assert limit.summary(62) is None and limit.held == 0


class Exploding:
    name = "exploding"

    async def send(self, message: Message) -> None:
        raise RuntimeError("boom")


@pytest.mark.asyncio
async def test_failing_notifications_never_break_trading(tmp_path: Path, api: FakeAPI) -> None:
    kernel = make_kernel(tmp_path / "k.db")
    api.route("POST", "/down", Reply(500, fixture("telegram/error_401.json")))
    urls = [f"json://{api.url.removeprefix('http://')}/down", "json://127.0.0.1:9/closed"]
    sinks: list[Sink] = [AppriseSink(urls), Exploding()]
    notifier = Notifier(settings(urls=urls), sinks)
    notifier.attach(kernel.bus)
    await notifier.start()
    agent = kernel.create_agent(
        AgentSpec(name="a", brain="rsi", symbols=["BTC"], risk=RiskProfile(cooldown_seconds=0))
    )
    await kernel.step(tick_at(next_minute(kernel), {"BTC": "30000"}))
    rec = kernel.place(agent.id, Decision(Action.BUY, "BTC"))
    kernel.kill()
    await notifier.stop()
    assert rec.status == "executed" and kernel.store.trades()[1] == 1 and kernel.killed
    assert kernel.audit() == []
    assert notifier.stats["failed"] == 2 * 2 and notifier.stats["sent"] == 0
    assert len(api.calls("/down")) == 2
    kernel.store.close()


@pytest.mark.asyncio
async def test_switched_off_events_are_not_sent(tmp_path: Path, api: FakeAPI) -> None:
    kernel = make_kernel(tmp_path / "k.db")
    url = webhook(api)
    notifier = Notifier(settings(urls=[url], events={"trade": False}), [AppriseSink([url])])
    notifier.attach(kernel.bus)
    await notifier.start()
    agent = kernel.create_agent(
        AgentSpec(name="a", brain="rsi", symbols=["BTC"], risk=RiskProfile(cooldown_seconds=0))
    )
    await kernel.step(tick_at(next_minute(kernel), {"BTC": "30000", "ETH": "2000"}))
    assert kernel.place(agent.id, Decision(Action.BUY, "BTC")).status == "executed"
    rejected = kernel.place(agent.id, Decision(Action.BUY, "ETH"))  # not one of its symbols
    assert rejected.status == "rejected"  # a risk rejection: off by default
    kernel.kill()
    await notifier.stop()
    kernel.store.close()
    assert [b["title"] for b in posted(api)] == ["Kill switch ON"]


def test_events_without_a_message_and_odd_payloads() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert to_message(Event("price", {"prices": []}, now, now)) is None
    assert to_message(Event("approval", {"event": "approved"}, now, now)) is None
    odd = to_message(Event("trade", {"trade": {"quantity": "x", "price": None}}, now, now))
    assert odd is not None and odd.title == "Trade: "  # no crash on a malformed payload
    fresh = to_message(Event("feed_stale", {"source": "ccxt:binance", "stale": False}, now, now))
    assert fresh is not None and fresh.title == "Feed recovered: ccxt:binance"


def test_settings_from_toml_and_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "phantomex.toml"
    path.write_text(
        "[notifications]\n"
        'urls = ["discord://webhook_id/webhook_token"]\n'
        "max_per_minute = 5\n"
        "events = { trade = false }\n"
        "[notifications.telegram]\n"
        'token = "123:abc"\n'
        "allowed_chat_ids = [1001, -100200300]\n"
    )
    monkeypatch.setenv("PHANTOMEX_CONFIG", str(path))
    monkeypatch.delenv("PHANTOMEX_NOTIFICATIONS", raising=False)
    n = load_settings().notifications
    assert n.max_per_minute == 5 and not n.events.trade and n.events.risk
    assert n.telegram.allowed_chat_ids == [1001, -100200300]
    assert n.telegram.bot_token(tmp_path) == "123:abc" and "abc" not in repr(n)
    with pytest.raises(ValidationError, match="tarde"):
        NotificationSettings.model_validate({"events": {"tarde": True}})
    with pytest.raises(ValidationError):
        NotificationSettings.model_validate({"max_per_minute": 0})
    with pytest.raises(ValidationError, match="not both"):
        NotificationSettings.model_validate({"telegram": {"token": "1:a", "token_encrypted": "x"}})
    assert AppriseSink(["not a url", "mailto://"]).invalid == ["?", "mailto://…"]


def _cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, toml: str, *args: str) -> Any:
    from typer.testing import CliRunner

    from phantomex.cli.main import app

    path = tmp_path / "phantomex.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\n{toml}')
    monkeypatch.setenv("PHANTOMEX_CONFIG", str(path))
    for var in ("PHANTOMEX_NOTIFICATIONS", "PHANTOMEX_DATA_DIR", "PHANTOMEX_SECRET_KEY"):
        monkeypatch.delenv(var, raising=False)
    return CliRunner().invoke(app, list(args))


def test_cli_notify_test_sends_through_every_channel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: FakeAPI
) -> None:
    tg = FakeTelegram(api)
    toml = (
        f'[notifications]\nurls = ["{webhook(api)}"]\n'
        f'[notifications.telegram]\ntoken = "{tg.token}"\n'
        f'allowed_chat_ids = [{tg.chat_id}]\napi_url = "{tg.api_url}"\n'
    )
    result = _cli(tmp_path, monkeypatch, toml, "notify", "test")
    assert result.exit_code == 0, result.output
    assert "apprise (1 URL(s)): sent" in result.output
    assert "telegram (1 chat(s)): sent" in result.output
    assert posted(api)[0]["title"] == "PhantomEx test"
    assert tg.sent(tg.chat_id)[0]["text"].startswith("PhantomEx test\n")


def test_cli_notify_test_reports_failures_and_missing_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, api: FakeAPI
) -> None:
    result = _cli(tmp_path, monkeypatch, "", "notify", "test")
    assert result.exit_code == 1 and "no notification channel configured" in result.output
    api.route("POST", "/down", Reply(500, {"error": "down"}))
    tg = FakeTelegram(api)
    tg.failures["sendMessage"] = [Reply(403, fixture("telegram/error_403_blocked.json"))]
    toml = (
        f'[notifications]\nurls = ["json://{api.url.removeprefix("http://")}/down", "nope"]\n'
        f'[notifications.telegram]\ntoken = "{tg.token}"\n'
        f'allowed_chat_ids = [{tg.chat_id}]\napi_url = "{tg.api_url}"\n'
    )
    result = _cli(tmp_path, monkeypatch, toml, "notify", "test")
    assert result.exit_code == 1
    assert "invalid setting notifications.urls[1]: not an absolute URL" in result.output
    assert "apprise (1 URL(s)): FAILED" in result.output
    assert "telegram (1 chat(s)): FAILED: chat 1001: Forbidden: bot was blocked" in result.output
    result = _cli(tmp_path, monkeypatch, "[notifications]\nmax_per_minute = -1\n", "notify", "test")
    assert result.exit_code == 1 and "invalid setting notifications.max_per_minute" in result.output


def test_cli_encrypt_token_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from phantomex.notify.settings import TelegramSettings

    token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
    result = _cli(tmp_path, monkeypatch, "", "notify", "encrypt-token", "--token", token)
    assert result.exit_code == 0, result.output
    line = result.output.splitlines()[-1]
    assert line.startswith('token_encrypted = "') and token not in result.output
    encrypted = line.split('"')[1]
    assert TelegramSettings(token_encrypted=encrypted).bot_token(tmp_path / "data") == token
    bad = _cli(tmp_path, monkeypatch, "", "notify", "encrypt-token", "--token", "hello")
    assert bad.exit_code == 1 and "does not look like a bot token" in bad.output


@pytest.mark.asyncio
async def test_the_server_runs_on_when_telegram_refuses_the_token(
    tmp_path: Path, api: FakeAPI, caplog: pytest.LogCaptureFixture
) -> None:
    from phantomex.notify.service import Notifications

    tg = FakeTelegram(api)
    # a slow refusal: the "started" notice is queued before Telegram has said no, and must not
    # go out through the refused token meanwhile
    tg.failures["getMe"] = [Reply(401, fixture("telegram/error_401.json"), delay=2.0)]
    config = {
        "urls": [webhook(api)],
        "telegram": {"token": tg.token, "allowed_chat_ids": [tg.chat_id], "api_url": tg.api_url},
    }
    kernel = make_kernel(tmp_path / "k.db")
    service = await Notifications.open(
        NotificationSettings.model_validate(config),
        Service.of(kernel),
        data_dir=tmp_path,
        base_url="http://127.0.0.1:8000",
    )
    assert service._bot_task is not None
    await service._bot_task
    assert "Telegram bot disabled: the token was refused" in caplog.text
    kernel.kill()
    await service.close()
    kernel.store.close()
    assert [b["title"] for b in posted(api)][-2:] == ["Kill switch ON", "PhantomEx stopped"]
    assert not tg.calls("sendMessage")


@pytest.mark.asyncio
async def test_events_published_from_another_thread_are_delivered(api: FakeAPI) -> None:
    import asyncio

    from phantomex.kernel.bus import EventBus

    url = webhook(api)
    bus = EventBus()
    notifier = Notifier(settings(urls=[url]), [AppriseSink([url])])
    notifier.attach(bus)
    await notifier.start()
    now = datetime(2026, 1, 1, tzinfo=UTC)
    stale = {"source": "ccxt:kraken", "stale": True, "age_seconds": 400.0}
    await asyncio.to_thread(bus.publish, "feed_stale", stale, now)  # a feed's own thread
    await notifier.stop()
    assert [(b["title"], b["message"]) for b in posted(api)] == [
        ("Feed stale: ccxt:kraken", "last price 400 s ago")
    ]
    notifier.submit(Message("trade", "after stop", ""))  # never raises
    assert notifier.stats["dropped"] == 1
