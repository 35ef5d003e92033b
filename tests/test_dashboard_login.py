"""The dashboard's login screen in a real browser (Debian's chromium) against a real server
with a password: the form, a wrong password, signing in (the live WebSocket included), and
signing out."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI, ServerHandle, free_port, serve, server_env
from e2e_helpers import CHROMIUM, CHROMIUM_ARGS, browser_or_skip

PASSWORD = "dashboard secret 42"
TIMEOUT = 30_000  # ms


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    browser_or_skip()
    data_dir: Path = tmp_path_factory.mktemp("login")
    done = subprocess.run(
        [*CLI, "auth", "set-password", "--password-stdin"],
        env=server_env(free_port(), data_dir),
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    with serve(data_dir) as handle:
        yield handle


def test_login_then_dashboard_then_logout(server: ServerHandle) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(TIMEOUT)
        page: Any = context.new_page()
        try:
            page.goto(server.url + "/")
            form = page.get_by_test_id("login-form")
            expect(form).to_be_visible()
            expect(page.get_by_test_id("agent-card")).to_have_count(0)  # nothing leaks

            page.get_by_label("Password").fill("not the password")
            page.get_by_test_id("login-submit").click()
            expect(page.get_by_test_id("login-error")).to_contain_text("wrong password")

            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_test_id("login-submit").click()
            expect(page.locator('[data-testid=connection][data-state="live"]')).to_be_visible()
            expect(page.get_by_test_id("agent-card")).to_have_count(3)
            cookies = {c["name"]: c for c in context.cookies()}
            assert cookies["phantomex_session"]["httpOnly"] is True
            assert cookies["phantomex_session"]["sameSite"] == "Strict"

            page.get_by_test_id("logout").click()
            expect(page.get_by_test_id("login-form")).to_be_visible()
            assert "phantomex_session" not in {c["name"] for c in context.cookies()}
        finally:
            context.close()
            browser.close()
