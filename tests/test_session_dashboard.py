"""The dashboard's Sessions and Leaderboard views in a real browser against a real server: a
short replay session started through the form runs to the end and lands on the leaderboard;
opened, it shows its curves, figures, trades and summary; the leaderboard fits its panel."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from e2e_helpers import (
    ConsoleWatch,
    RestartableServer,
    browser_or_skip,
    expect,
    live_page,
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
    watch = ConsoleWatch()
    with live_page(server.url, watch, TIMEOUT) as pg:
        yield pg, watch


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


def test_a_session_opens_with_its_curves_figures_trades_and_summary(
    page: tuple[Any, ConsoleWatch], server: RestartableServer
) -> None:
    pg, watch = page
    (stored,) = server.get("/api/sessions")
    full = server.get(f"/api/sessions/{stored['id']}")
    trades = sum(len(a["trades"]) for a in full["agents"])
    session = pg.locator('[data-testid=session][data-name="ui duel"]')
    session.get_by_test_id("session-open").click()
    detail = session.get_by_test_id("session-detail")
    expect(detail).to_have_attribute("data-loaded", "true")
    expect(detail).to_have_attribute("data-curves", "5")  # 3 agents and 2 benchmarks
    expect(detail.locator("canvas").first).to_be_visible()
    figures = detail.get_by_test_id("session-figure")
    expect(figures).to_have_count(5)
    ruby = detail.locator('[data-testid=session-figure][data-name="ruby"]')
    expect(ruby).to_contain_text("$")
    expect(detail.get_by_test_id("session-summary")).to_contain_text("Session 'ui duel'")
    expect(detail.get_by_test_id("session-trade")).to_have_count(trades)
    # a 30-minute session: Sharpe per minute, not annualised, and said so
    expect(detail.get_by_test_id("session-figures")).to_contain_text("per 1 min")
    detail.scroll_into_view_if_needed()
    shot(pg, "session-detail", full_page=False)
    detail.get_by_test_id("session-close").click()
    expect(detail).to_have_count(0)
    assert watch.errors == []


def test_the_leaderboard_fits_its_panel_at_1440_px_and_states_the_sharpe_basis(
    page: tuple[Any, ConsoleWatch],
) -> None:
    pg, _ = page
    pg.set_viewport_size({"width": 1440, "height": 900})
    try:
        board = pg.get_by_test_id("leaderboard")
        board.scroll_into_view_if_needed()
        expect(board.get_by_test_id("leaderboard-row")).to_have_count(5)
        widths = board.get_by_test_id("leaderboard-scroll").evaluate_all(
            "els => els.map(e => [e.scrollWidth, e.clientWidth])"
        )
        assert widths and all(sw <= cw for sw, cw in widths), widths  # no column cut off
        panel = board.bounding_box()
        for key in ("lb-win-rate", "lb-trades", "lb-ns"):
            cell = board.get_by_test_id(key).first.bounding_box()
            assert panel and cell and cell["x"] + cell["width"] <= panel["x"] + panel["width"]
        basis = board.get_by_test_id("leaderboard-basis")
        expect(basis).to_contain_text("per 1-minute period (30 min of returns)")
        expect(board.locator("thead")).to_contain_text("per 1 min")
        shot(pg, "leaderboard-1440", full_page=False)
    finally:
        pg.set_viewport_size({"width": 1400, "height": 1000})


def test_chained_windows_read_apart_on_a_phone(
    page: tuple[Any, ConsoleWatch], server: RestartableServer
) -> None:
    """The same entrants on a second window: one group, two windows, one line each."""
    pg, _ = page
    spec = {
        "name": "second window",
        "kind": "replay",
        "symbols": ["BTC", "ETH"],
        "cash": "10000",
        "agents": [
            {"name": "ruby", "brain": "rsi"},
            {"name": "max", "brain": "sma_cross", "params": {"fast": 5, "slow": 20}},
            {"name": "sam", "brain": "spike_fade"},
        ],
        "replay": {"start": "2023-04-11T00:00:00Z", "end": "2023-04-11T00:30:00Z", "speed": 0},
    }
    started = server.post("/api/sessions", spec)
    deadline = time.monotonic() + 120
    while server.get(f"/api/sessions/{started['id']}", curves="false")["status"] == "running":
        assert time.monotonic() < deadline, "the second session did not finish"
        time.sleep(0.5)
    board = pg.get_by_test_id("leaderboard")
    windows = board.get_by_test_id("leaderboard-windows").first.locator("li")
    expect(windows).to_have_count(2)
    pg.set_viewport_size({"width": 390, "height": 844})
    try:
        board.scroll_into_view_if_needed()
        boxes = [windows.nth(i).bounding_box() for i in range(2)]
        assert boxes[0] and boxes[1]
        assert boxes[1]["y"] >= boxes[0]["y"] + boxes[0]["height"] - 1, boxes  # own lines
        overflow = pg.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 1, f"the page scrolls sideways on a phone by {overflow}px"
        shot(pg, "leaderboard-phone")
    finally:
        pg.set_viewport_size({"width": 1400, "height": 1000})
