"""The dashboard's news panel in a real browser against a real server: recorded news imported
through the CLI and a local server's RSS 2.0 and Atom feeds fetched through "Fetch now"; the
panel lists the newest items, filters them by symbol, and shows a headline that carries markup
as text (nothing of it runs or renders as HTML)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import run_cli, server_env
from e2e_helpers import (
    ConsoleWatch,
    RestartableServer,
    browser_or_skip,
    expect,
    live_page,
    shot,
)
from fakeapi import FakeAPI, Reply
from test_news_sources import FIXTURES
from test_session_api import live_files, patient_start

TIMEOUT = 60_000  # ms
MARKUP = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2"> BTC alert'
RECORDED = [
    {
        "title": MARKUP,
        "link": "javascript:window.__pwned = 3",
        "guid": "rec-1",
        "source": "recorded",
        "symbols": ["BTC"],
        "published": "2026-01-02T09:00:00Z",
        "first_seen": "2026-01-02T09:05:00Z",
    },
    {
        "title": "Ether ETF flows turn positive",
        "link": "https://news.example.org/ether-etf",
        "source": "recorded",
        "symbols": ["ETH"],
        "published": "2026-01-02T08:00:00Z",
    },
]


@pytest.fixture(scope="module")
def feeds() -> Iterator[FakeAPI]:
    with FakeAPI() as api:
        api.route("GET", "/rss.xml", Reply(body=(FIXTURES / "rss2.xml").read_bytes()))
        api.route("GET", "/atom.xml", Reply(body=(FIXTURES / "atom.xml").read_bytes()))
        yield api


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, feeds: FakeAPI) -> Iterator[RestartableServer]:
    browser_or_skip()
    folder = tmp_path_factory.mktemp("news-dashboard")
    news = {
        "feeds": [
            {"name": "wire", "url": feeds.url + "/rss.xml"},
            {"name": "chain", "url": feeds.url + "/atom.xml", "symbols": ["SOL"]},
            {"name": "gone", "url": feeds.url + "/missing.xml"},
        ],
        "keywords": {"BTC": ["bitcoin"], "ETH": ["ether"]},
        "poll_seconds": 0,
    }
    env = {
        "PHANTOMEX_DEMO": "false",
        "PHANTOMEX_REPLAY_FILES": live_files(folder),
        "PHANTOMEX_NEWS": json.dumps(news),
    }
    srv = RestartableServer(folder, env)
    recorded = folder / "recorded.jsonl"
    recorded.write_text("".join(json.dumps(r) + "\n" for r in RECORDED))
    rc, out, err = run_cli("news", "import", str(recorded), env=server_env(srv.port, folder, **env))
    assert rc == 0, err
    assert "2 items read, 2 new" in out
    with patient_start():
        srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def page(server: RestartableServer) -> Iterator[tuple[Any, ConsoleWatch]]:
    watch = ConsoleWatch()
    with live_page(server.url, watch, TIMEOUT) as pg:
        yield pg, watch


def test_recorded_news_is_listed_and_a_headline_with_markup_shows_as_text(
    page: tuple[Any, ConsoleWatch],
) -> None:
    pg, watch = page
    panel = pg.get_by_test_id("news-panel")
    expect(panel).to_have_attribute("data-loaded", "true")
    items = panel.get_by_test_id("news-item")
    expect(items).to_have_count(2)
    marked = panel.locator('[data-testid=news-item][data-key="rec-1"]')
    expect(marked.get_by_test_id("news-title")).to_have_text(MARKUP)
    assert panel.locator("script, img").count() == 0  # nothing of the headline became markup
    assert marked.locator("a").count() == 0  # a javascript: link is not a link
    ether = panel.locator('[data-testid=news-item][data-symbols="ETH"]')
    expect(ether.locator("a")).to_have_attribute("href", "https://news.example.org/ether-etf")
    expect(ether).to_contain_text("published 2026-01-02 08:00:00")
    expect(marked).to_contain_text("seen 2026-01-02 09:05:00")
    assert pg.evaluate("typeof window.__pwned") == "undefined"

    panel.get_by_test_id("news-symbol").select_option("ETH")
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("Ether ETF flows turn positive")
    panel.get_by_test_id("news-symbol").select_option("")
    expect(items).to_have_count(2)
    assert watch.errors == []


def test_fetch_now_reads_the_feeds_and_the_filter_finds_their_symbols(
    page: tuple[Any, ConsoleWatch], server: RestartableServer
) -> None:
    pg, watch = page
    panel = pg.get_by_test_id("news-panel")
    panel.get_by_test_id("news-fetch").click()
    note = panel.get_by_test_id("news-note")
    expect(note).to_contain_text("wire: 3 read, 3 new")
    expect(note).to_contain_text("chain: 2 read, 2 new")
    expect(note).to_contain_text("gone: HTTP 404")
    items = panel.get_by_test_id("news-item")
    expect(items).to_have_count(7)
    expect(items.first.get_by_test_id("news-source")).not_to_have_text("recorded")  # newest first

    panel.get_by_test_id("news-symbol").select_option("SOL")
    expect(items).to_have_count(2)
    for n in range(2):
        assert "SOL" in (items.nth(n).get_attribute("data-symbols") or "").split(",")
    expect(panel).to_contain_text("Solana validators ship v1.14 & fix a stall")
    panel.scroll_into_view_if_needed()
    shot(pg, "news-panel", full_page=False)
    panel.get_by_test_id("news-symbol").select_option("")
    expect(items).to_have_count(7)
    sources = server.get("/api/news/sources")["sources"]
    assert [s["last_report"]["new"] for s in sources] == [3, 2, 0]
    assert watch.errors == []
