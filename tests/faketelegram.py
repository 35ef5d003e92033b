"""A Telegram Bot API stand-in on :class:`fakeapi.FakeAPI`, answering with the documented shapes
in ``tests/fixtures/api/telegram`` (see SOURCES.md).

It keeps an update queue with ``getUpdates`` offset semantics (updates with ``update_id >=
offset``; ``deleteWebhook(drop_pending_updates=true)`` empties it), numbers sent messages, and
records every call. Scripted failures (e.g. a 429) are served before the normal answer.

    with FakeAPI() as api:
        tg = FakeTelegram(api)
        bot = TelegramBot(Service.of(kernel), tg.token, [tg.chat_id], api_url=tg.api_url)
        tg.push_command(tg.chat_id, "/status")
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from fakeapi import FakeAPI, Reply, Request, fixture

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"  # the docs' example token format


class FakeTelegram:
    def __init__(self, api: FakeAPI, *, chat_id: int = 1001, token: str = TOKEN) -> None:
        self.api = api
        self.token = token
        self.chat_id = chat_id
        self.failures: dict[str, list[Reply]] = {}  # method -> replies served first
        self._updates: list[dict[str, Any]] = []
        self._sent: list[dict[str, Any]] = []
        self._update_ids = itertools.count(100)
        self._message_ids = itertools.count(1)
        self._lock = threading.Lock()
        methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getMe": lambda _: fixture("telegram/getMe.json")["result"],
            "deleteWebhook": self._delete_webhook,
            "getUpdates": self._get_updates,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "answerCallbackQuery": lambda _: True,
        }
        for method, answer in methods.items():
            api.route("POST", f"/bot{token}/{method}", self._handler(method, answer))

    @property
    def api_url(self) -> str:
        return f"{self.api.url}/bot"

    # -- scripting ----------------------------------------------------------------------------
    def push_command(self, chat_id: int, text: str, *, user_id: int | None = None) -> None:
        """A message from ``chat_id``; a leading ``/word`` is marked as a bot_command entity."""
        update = copy.deepcopy(fixture("telegram/getUpdates_message.json")["result"][0])
        message = update["message"]
        message["chat"]["id"] = chat_id
        message["from"]["id"] = user_id or chat_id
        message["text"] = text
        message["message_id"] = next(self._message_ids) + 1000
        command = text.split()[0] if text.startswith("/") else ""
        message["entities"] = (
            [{"offset": 0, "length": len(command), "type": "bot_command"}] if command else []
        )
        self._push(update)

    def push_button(self, chat_id: int, data: str, message: dict[str, Any]) -> str:
        """A press on an inline button of ``message`` (as sent); returns the callback query id."""
        update = copy.deepcopy(fixture("telegram/getUpdates_callback_query.json")["result"][0])
        query = update["callback_query"]
        query["id"] = f"cbq{next(self._update_ids)}"
        query["from"]["id"] = chat_id
        query["message"] = copy.deepcopy(message)
        query["message"]["chat"]["id"] = chat_id
        query["data"] = data
        self._push(update)
        return str(query["id"])

    def _push(self, update: dict[str, Any]) -> None:
        with self._lock:
            update["update_id"] = next(self._update_ids)
            self._updates.append(update)

    # -- what the bot did ---------------------------------------------------------------------
    def calls(self, method: str) -> list[dict[str, Any]]:
        """The decoded parameters of every ``method`` call, in order."""
        return [_params(r) for r in self.api.calls(f"/bot{self.token}/{method}")]

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """The Message objects answered to successful sendMessage calls."""
        with self._lock:
            return [m for m in self._sent if chat_id is None or m["chat"]["id"] == chat_id]

    @staticmethod
    async def until(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
        """Await until ``predicate()`` is truthy (returns it); fail after ``timeout``. The event
        loop keeps running meanwhile, so the bot under test can work."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = predicate()
            if result:
                return result
            await asyncio.sleep(0.05)
        raise AssertionError(f"condition not met within {timeout} s")

    # -- the API ------------------------------------------------------------------------------
    def _handler(self, method: str, answer: Callable[[dict[str, Any]], Any]) -> Any:
        def handle(request: Request) -> Reply:
            with self._lock:
                scripted = self.failures.get(method)
                if scripted:
                    return scripted.pop(0)
            return Reply(body={"ok": True, "result": answer(_params(request))})

        return handle

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        if params.get("drop_pending_updates") in (True, "true", "True"):
            with self._lock:
                self._updates.clear()
        return True

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        deadline = time.monotonic() + min(float(params.get("timeout") or 0), 0.3)
        while True:  # a short long-poll: answer as soon as updates arrive
            with self._lock:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates or time.monotonic() >= deadline:
                    return copy.deepcopy(self._updates)
            time.sleep(0.02)

    def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        message = copy.deepcopy(fixture("telegram/sendMessage.json")["result"])
        message["chat"]["id"] = int(params["chat_id"])
        message["text"] = params["text"]
        if "reply_markup" in params:
            message["reply_markup"] = params["reply_markup"]
        with self._lock:
            message["message_id"] = next(self._message_ids)
            self._sent.append(message)
        return message

    def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        message = copy.deepcopy(fixture("telegram/editMessageText.json")["result"])
        message["chat"]["id"] = int(params["chat_id"])
        message["message_id"] = int(params["message_id"])
        message["text"] = params["text"]
        return message


def _params(request: Request) -> dict[str, Any]:
    """Bot API parameters from a form or JSON body; JSON-encoded values are decoded."""
    if request.headers.get("content-type", "").startswith("application/json"):
        raw: dict[str, Any] = request.json() or {}
    else:
        raw = request.form()
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if isinstance(value, str) and value[:1] in "[{":
            try:
                out[key] = json.loads(value)
                continue
            except ValueError:
                pass
        out[key] = value
    return out
