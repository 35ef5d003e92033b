"""The dashboard's Sessions and Leaderboard views in a real browser against a real server: a
short replay session started through the form runs to the end and lands on the leaderboard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from e2e_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ConsoleWatch,
    RestartableServer,
    browser_or_skip,
    restartable_server,
    shot,
)
from test_session_api import live_files, patient_start

TIMEOUT = 120_000  # ms: the session replays in the server while the page polls


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableServer]:
    browser_or_skip()
    folder = tmp_path_factory.mktemp("session-dashboard")
    env = {"PHANTOMEX_DEMO": "false", "PHANTOMEX_REPLAY_FILES": live_files(folder)}
    with patient_start(), restartable_server(folder, **env) as srv:
        yield srv


@pytest.fixture(scope="module")
def page(server: RestartableServer) -> Iterator[tuple[Any, ConsoleWatch]]:
    from playwright.sync_api import sync_playwright

    watch = ConsoleWatch()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(TIMEOUT)
        pg = context.new_page()
        watch.attach(pg)
        pg.goto(server.url + "/")
        pg.wait_for_selector('[data-testid=connection][data-state="live"]')
        try:
            yield pg, watch
        finally:
            context.close()
            browser.close()


def expect(locator: Any) -> Any:
    from playwright.sync_api import expect as pw_expect

    return pw_expect(locator)


def test_start_a_replay_session_from_the_form_and_see_it_ranked(
    page: tuple[Any, ConsoleWatch], server: RestartableServer
) -> None:
    pg, watch = page
    view = pg.get_by_test_id("sessions")
    view.get_by_test_id("session-form-toggle").click()
    form = view.get_by_test_id("session-form")
    form.locator("[name=name]").fill("ui duel")
    form.locator("[name=end]").fill("2023-04-10T00:30")
    form.locator("[name=agents]").fill("ruby=rsi\nmax=nope")
    with watch.expecting("422"):
        form.get_by_test_id("session-start").click()
        expect(view.get_by_test_id("session-error")).to_contain_text("unknown strategy 'nope'")
    form.locator("[name=agents]").fill("ruby=rsi\nmax=sma_cross:fast=5,slow=20\nsam=spike_fade")
    form.get_by_test_id("session-start").click()
    session = view.locator('[data-testid=session][data-name="ui duel"]')
    expect(session).to_be_visible()
    expect(session.get_by_test_id("session-agent")).to_have_count(5)  # 3 agents, 2 benchmarks
    expect(session).to_have_attribute("data-status", "finished")
    expect(session.get_by_test_id("session-timer")).to_contain_text("0:30:00 elapsed")
    (stored,) = server.get("/api/sessions")
    assert stored["name"] == "ui duel" and stored["status"] == "finished"
    board = pg.get_by_test_id("leaderboard")
    rows = board.get_by_test_id("leaderboard-row")
    expect(rows).to_have_count(5)
    bh = board.locator('[data-testid=leaderboard-row][data-entrant="buy-and-hold"]')
    expect(bh.get_by_test_id("lb-return")).to_contain_text("[")  # value [low, high]
    shot(pg, "sessions-leaderboard")
    assert watch.errors == []
