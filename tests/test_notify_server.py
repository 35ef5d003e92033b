"""A real server process with notifications on: announced start and stop, the bot's commands
and refusals, a webhook copy of every message."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from conftest import serve, terminate
from fakeapi import FakeAPI
from faketelegram import FakeTelegram
from notify_helpers import posted, webhook

STRANGER = 666


def test_the_server_runs_notifications_and_the_bot(tmp_path: Path) -> None:

    def wait(predicate: Any, timeout: float = 30.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if result := predicate():
                return result
            time.sleep(0.1)
        raise AssertionError("condition not met")

    with FakeAPI() as api:
        tg = FakeTelegram(api)
        config = {
            "urls": [webhook(api)],
            "telegram": {
                "token": tg.token,
                "allowed_chat_ids": [tg.chat_id],
                "api_url": tg.api_url,
                "poll_timeout": 1,
            },
        }
        env = {"PHANTOMEX_NOTIFICATIONS": json.dumps(config), "PHANTOMEX_REPLAY_SPEED": "60"}
        with serve(tmp_path / "srv", PHANTOMEX_DEMO="false", **env) as server:
            wait(lambda: any(m["text"].startswith("PhantomEx started") for m in tg.sent()))
            wait(lambda: tg.calls("getUpdates"))  # polling
            tg.push_command(tg.chat_id, "/status")
            status = wait(lambda: [m for m in tg.sent() if "Kill switch" in m["text"]])
            assert "Pending approvals: 0" in status[0]["text"]
            tg.push_command(STRANGER, "/kill all")
            wait(lambda: tg.sent(STRANGER))
            assert server.get("/api/kill-switch") == {"on": False}
            assert server.proc is not None
            terminate(server.proc)
        texts = [m["text"] for m in tg.sent(tg.chat_id)]
        assert texts[-1].startswith("PhantomEx stopped")
        titles = [b["title"] for b in posted(api)]
        assert titles[0] == "PhantomEx started" and titles[-1] == "PhantomEx stopped"
        assert "refused an update from chat 666" in server.server_output()
