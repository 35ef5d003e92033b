"""A replay-then-live session in the dashboard, in a real browser against a real server: the
recorded bars come through ccxt from a local server speaking Binance's REST API, the live part
from a local server speaking CoinGecko's (the servers of ``test_handover``, on the real clock).
Opened, the session shows its two parts: the replay's from and to and speed, the live part's source
and start, and the hand-over time."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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
from fakeapi import FakeAPI, Reply
from test_data_download import exchange_info
from test_handover import WallClock, klines, market_chart, simple_price
from test_session_api import patient_start

TIMEOUT = 60_000  # ms


def shown(iso: str) -> str:
    """A time as the dashboard writes it (UTC)."""
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableServer]:
    browser_or_skip()
    present = WallClock()
    with FakeAPI() as binance, FakeAPI() as gecko:
        binance.route("GET", "/api/v3/exchangeInfo", Reply(body=exchange_info(("BTC", "USDT"))))
        binance.route("GET", "/api/v3/klines", klines(present))
        gecko.route("GET", "/api/v3/simple/price", simple_price(present))
        gecko.route("GET", "/api/v3/coins/bitcoin/market_chart", market_chart(present))
        env = {
            "PHANTOMEX_DEMO": "false",
            "PHANTOMEX_COINGECKO": json.dumps(
                {"coins": ["ETH"], "base_url": gecko.url + "/api/v3", "poll_seconds": 0.5}
            ),
            "PHANTOMEX_EXCHANGE": json.dumps(
                {"api_urls": {"binance": {"public": binance.url + "/api/v3"}}}
            ),
        }
        folder = tmp_path_factory.mktemp("handover-dashboard")
        with patient_start(), restartable_server(folder, **env) as srv:
            yield srv


@pytest.fixture(scope="module")
def session(server: RestartableServer) -> dict[str, Any]:
    """A session that replayed the last two hours and then ran 3 seconds on live prices."""
    since = (datetime.now(UTC) - timedelta(hours=2)).replace(second=0, microsecond=0)
    started = server.post(
        "/api/sessions",
        {
            "name": "went live",
            "symbols": ["BTC"],
            "agents": [{"name": "ruby", "brain": "rsi"}],
            "replay": {"dataset": "binance", "start": since.isoformat()},
            "then_live": {"source": "coingecko", "duration": "3s"},
        },
    )
    deadline = time.monotonic() + 300
    got = server.get(f"/api/sessions/{started['id']}", curves="false")
    while got["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.5)
        got = server.get(f"/api/sessions/{started['id']}", curves="false")
    assert got["status"] == "finished", got.get("error")
    assert got["window"]["parts"] and got["window"]["handover_at"]
    return dict(got)


@pytest.fixture(scope="module")
def page(server: RestartableServer) -> Iterator[tuple[Any, ConsoleWatch]]:
    watch = ConsoleWatch()
    with live_page(server.url, watch, TIMEOUT) as pg:
        yield pg, watch


def test_the_session_view_shows_the_replay_part_the_live_part_and_the_hand_over(
    page: tuple[Any, ConsoleWatch], session: dict[str, Any]
) -> None:
    pg, watch = page
    window = session["window"]
    replay, live = window["parts"]
    pg.reload()  # the session finished after the page loaded its list
    card = pg.locator('[data-testid=session][data-name="went live"]')
    expect(card).to_have_attribute("data-status", "finished")
    card.get_by_test_id("session-open").click()
    detail = card.get_by_test_id("session-detail")
    expect(detail).to_have_attribute("data-loaded", "true")
    parts = detail.get_by_test_id("session-parts")
    expect(parts).to_have_attribute("data-handover", window["handover_at"])
    expect(parts.get_by_test_id("session-handover")).to_contain_text(
        f"Handed over to live prices at {shown(window['handover_at'])} UTC"
    )
    expect(parts.get_by_test_id("session-handover")).to_contain_text("no gap")
    row = parts.locator('[data-testid=session-part][data-part="replay"]')
    expect(row.get_by_test_id("part-from")).to_have_text(shown(replay["start"]))
    expect(row.get_by_test_id("part-to")).to_have_text(shown(replay["end"]))
    expect(row.get_by_test_id("part-speed")).to_have_text("as fast as it can")
    expect(row).to_contain_text(
        f"dataset binance (then {window['bridge_bars']} bars of the live source's history)"
    )
    row = parts.locator('[data-testid=session-part][data-part="live"]')
    expect(row.get_by_test_id("part-source")).to_have_text("coingecko")
    expect(row.get_by_test_id("part-since")).to_have_text(shown(live["start"]))
    assert live["start"] == window["handover_at"]
    parts.scroll_into_view_if_needed()
    shot(pg, "session-parts", full_page=False)
    assert watch.errors == []


def test_a_session_that_did_not_go_live_shows_no_parts(
    page: tuple[Any, ConsoleWatch], server: RestartableServer, session: dict[str, Any]
) -> None:
    pg, watch = page
    done = server.post(
        "/api/sessions",
        {
            "name": "replay only",
            "symbols": ["BTC"],
            "agents": [{"name": "ruby", "brain": "rsi"}],
            "replay": {
                "dataset": "binance",
                "start": session["window"]["parts"][0]["start"],
                "end": session["window"]["parts"][0]["end"],
                "speed": 0,
            },
        },
    )
    deadline = time.monotonic() + 120
    while server.get(f"/api/sessions/{done['id']}", curves="false")["status"] == "running":
        assert time.monotonic() < deadline
        time.sleep(0.5)
    pg.reload()
    card = pg.locator('[data-testid=session][data-name="replay only"]')
    card.get_by_test_id("session-open").click()
    detail = card.get_by_test_id("session-detail")
    expect(detail).to_have_attribute("data-loaded", "true")
    expect(detail.get_by_test_id("session-parts")).to_have_count(0)
    assert watch.errors == []
