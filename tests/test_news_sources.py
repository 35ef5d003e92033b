"""News sources against a real aiohttp server on loopback: RSS 2.0, Atom and CryptoPanic's
documented answer, and the ways a source goes wrong (malformed, huge, slow, refused) — each a
clear error or warning, never a crash."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from pydantic import SecretStr, ValidationError

from phantomex.config import load_settings
from phantomex.domain.news import MAX_SUMMARY_CHARS, MAX_TITLE_CHARS
from phantomex.news.collect import collect, poll
from phantomex.news.records import item_json, read_records
from phantomex.news.settings import CryptoPanicSettings, FeedSettings, NewsSettings
from phantomex.news.sources import (
    CryptoPanicSource,
    FeedSource,
    NewsError,
    parse_feed,
    sources_from_settings,
)
from phantomex.store.memory import MemoryStore
from phantomex.store.repo import Store

FIXTURES = Path(__file__).parent / "fixtures" / "news"
NOW = datetime(2023, 4, 20, 0, 40, tzinfo=UTC)
Handler = Callable[[web.Request], Any]


class Server:
    """An aiohttp server whose routes the test sets; every request is recorded."""

    def __init__(self) -> None:
        self.routes: dict[str, Handler] = {}
        self.requests: list[web.Request] = []
        self.url = ""

    def serve(self, path: str, body: bytes | str, content_type: str, status: int = 200) -> None:
        data = body.encode() if isinstance(body, str) else body

        async def handler(request: web.Request) -> web.Response:
            return web.Response(body=data, status=status, content_type=content_type)

        self.routes[path] = handler

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request)
        handler = self.routes.get(request.path)
        if handler is None:
            return web.Response(status=404, text="no such route")
        response: web.StreamResponse = await handler(request)
        return response


@pytest_asyncio.fixture
async def server() -> AsyncIterator[Server]:
    srv = Server()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv.dispatch)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    srv.url = f"http://127.0.0.1:{port}"
    yield srv
    await runner.cleanup()


def feed(server: Server, name: str, path: str, **kw: Any) -> FeedSource:
    settings = NewsSettings(feeds=[FeedSettings(name=name, url=server.url + path, **kw)])
    source = sources_from_settings(settings)[0]
    assert isinstance(source, FeedSource)
    return source


@pytest.mark.asyncio
async def test_rss2_and_atom_items_are_stored_with_publish_and_first_seen_times(
    server: Server, tmp_path: Path
) -> None:
    server.serve("/rss.xml", (FIXTURES / "rss2.xml").read_bytes(), "application/rss+xml")
    server.serve("/atom.xml", (FIXTURES / "atom.xml").read_bytes(), "application/atom+xml")
    settings = NewsSettings(
        feeds=[
            FeedSettings(name="wire", url=server.url + "/rss.xml"),
            FeedSettings(name="chain", url=server.url + "/atom.xml", symbols=["sol"]),
        ],
        keywords={"BTC": ["bitcoin"], "ETH": ["ether"]},
    )
    store = Store(f"sqlite:///{tmp_path / 'news.db'}")
    reports = await collect(sources_from_settings(settings), store, NOW)
    assert [(r.source, r.read, r.new, r.error) for r in reports] == [
        ("wire", 3, 3, None),
        ("chain", 2, 2, None),
    ]
    items = {i.title: i for i in store.news(NOW, limit=50)}
    btc = items["Bitcoin slips below $28,000 as traders take profits"]
    assert btc.summary == "BTC fell 3% in early trading on Thursday ."  # HTML to text
    assert btc.guid == "wire-1001" and btc.symbols == ("BTC",) and btc.source == "wire"
    assert btc.published == datetime(2023, 4, 20, 0, 5, tzinfo=UTC) and btc.first_seen == NOW
    eth = items["Ether holds steady ahead of the Shanghai withdrawals"]
    assert eth.symbols == ("ETH",) and eth.published == datetime(2023, 4, 20, 0, 20, tzinfo=UTC)
    sol = items["Solana validators ship v1.14 & fix a stall"]
    assert sol.symbols == ("SOL",) and sol.key.startswith("urn:uuid:1225c695")
    hashrate = items["Bitcoin hash rate at a record"]
    assert hashrate.summary == "Miners keep adding machines."  # from <content>
    assert hashrate.symbols == ("BTC", "SOL")  # the feed says SOL; "bitcoin" is a keyword
    assert hashrate.published == datetime(2023, 4, 20, 0, 25, tzinfo=UTC)  # from <updated>
    assert items["Markets open quietly"].key == "https://news.example.org/2023/04/20/markets-open"

    # a second fetch, later: nothing new, the first sight stays
    again = await collect(sources_from_settings(settings), store, NOW.replace(hour=5))
    assert [r.new for r in again] == [0, 0]
    assert {i.first_seen for i in store.news(NOW.replace(hour=6), limit=50)} == {NOW}
    assert server.requests[0].headers["User-Agent"].startswith("PhantomEx")
    store.close()


@pytest.mark.asyncio
async def test_cryptopanic_documented_answer_with_its_token_and_filters(server: Server) -> None:
    body = (FIXTURES / "cryptopanic_posts.json").read_bytes()
    server.serve("/api/developer/v2/posts/", body, "application/json")
    settings = CryptoPanicSettings(
        token=SecretStr("s3cret"), base_url=server.url + "/api/developer/v2", currencies=["btc"]
    )
    store = MemoryStore()
    (report,) = await collect([CryptoPanicSource(settings)], store, NOW)
    assert (report.read, report.new, report.error) == (2, 2, None)
    query = server.requests[-1].query
    assert query["auth_token"] == "s3cret" and query["currencies"] == "BTC"
    assert query["kind"] == "news" and query["public"] == "true"
    newest, oldest = store.news(NOW)
    assert newest.key == "cryptopanic:17790002" and newest.symbols == ("ETH", "SOL")
    assert newest.published == datetime(2023, 4, 20, 0, 22, 30, tzinfo=UTC)
    assert oldest.title == "Bitcoin ETF decision delayed again" and oldest.symbols == ("BTC",)
    assert oldest.link == "https://cryptopanic.com/news/17790001/Bitcoin-ETF-decision-delayed-again"


@pytest.mark.asyncio
async def test_cryptopanic_refusals_and_odd_answers_are_clear_errors(server: Server) -> None:
    api = server.url + "/v2"
    source = CryptoPanicSource(CryptoPanicSettings(token=SecretStr("bad"), base_url=api))
    server.serve("/v2/posts/", json.dumps({"status": "Incomplete", "info": "Token not found"}),
                 "application/json", status=401)  # fmt: skip
    (report,) = await collect([source], MemoryStore(), NOW)
    assert report.error == "HTTP 401: Token not found"
    server.serve("/v2/posts/", "<html>rate limited</html>", "text/html", status=429)
    (report,) = await collect([source], MemoryStore(), NOW)
    assert report.error == "HTTP 429"
    server.serve("/v2/posts/", json.dumps({"count": 0}), "application/json")
    (report,) = await collect([source], MemoryStore(), NOW)
    assert report.error == "not a CryptoPanic posts answer (no results list)"
    server.serve("/v2/posts/", json.dumps({"results": [{"id": 1}, "junk", {"title": "ok",
                 "id": 2}]}), "application/json")  # fmt: skip
    (report,) = await collect([source], store := MemoryStore(), NOW)
    assert (report.new, report.warnings) == (1, ["2 posts without a title or link were skipped"])
    assert store.news(NOW)[0].key == "cryptopanic:2"
    no_token = CryptoPanicSource(CryptoPanicSettings(base_url=api))
    with pytest.raises(NewsError, match="no CryptoPanic token"):
        await no_token.fetch(None, NOW)  # type: ignore[arg-type]
    assert sources_from_settings(NewsSettings()) == []  # CryptoPanic is off without a token


@pytest.mark.asyncio
async def test_malformed_and_wrong_documents(server: Server) -> None:
    server.serve("/broken.xml", (FIXTURES / "malformed.xml").read_bytes(), "application/xml")
    store = MemoryStore()
    (report,) = await collect([feed(server, "broken", "/broken.xml")], store, NOW)
    assert report.error is None and report.new >= 1
    assert report.warnings and report.warnings[0].startswith("the feed is malformed")
    assert store.news(NOW)[-1].title == "First story still reads"

    server.serve("/page", "<html><body><p>Not a feed</p></body></html>", "text/html")
    server.serve("/bin", bytes(range(256)) * 4, "application/octet-stream")
    server.serve("/empty", "", "application/rss+xml")
    server.serve("/gone", "nope", "text/plain", status=503)
    sources = [feed(server, n, "/" + n) for n in ("page", "bin", "empty", "gone", "missing")]
    reports = await collect(sources, store, NOW)
    errors = {r.source: r.error for r in reports}
    assert errors["gone"] == "HTTP 503" and errors["missing"] == "HTTP 404"
    for name in ("page", "bin", "empty"):
        assert str(errors[name]).startswith(("not a readable feed", "not an RSS or Atom feed"))
    closed = feed(server, "closed", "/x")
    closed.feed = FeedSettings(name="closed", url="http://127.0.0.1:9/feed.xml")
    (report,) = await collect([closed], store, NOW)
    assert report.error is not None and report.error.startswith("request failed: ConnectError")


@pytest.mark.asyncio
async def test_huge_items_are_clipped_and_huge_answers_refused(server: Server) -> None:
    big = "<p>" + "x" * 1_000_000 + "</p>"
    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>{'Long title ' * 200}</title><link>https://h.example/1</link>"
        f"<description><![CDATA[{big}]]></description></item></channel></rss>"
    )
    server.serve("/huge.xml", rss, "application/rss+xml")
    store = MemoryStore()
    source = feed(server, "huge", "/huge.xml")
    (report,) = await collect([source], store, NOW)
    assert report.new == 1
    (item,) = store.news(NOW)
    assert len(item.title) <= MAX_TITLE_CHARS and len(item.summary) <= MAX_SUMMARY_CHARS
    assert item.summary.endswith("…")
    source.max_bytes = 100_000
    (report,) = await collect([source], store, NOW)
    assert report.error is not None and "than the 100,000 bytes allowed" in report.error

    async def endless(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
        await resp.prepare(request)
        for _ in range(200):
            await resp.write(b"<!-- padding -->" * 1000)
        return resp

    server.routes["/stream.xml"] = endless  # no content-length: counted while read
    source = feed(server, "stream", "/stream.xml")
    source.max_bytes = 100_000
    (report,) = await collect([source], store, NOW)
    assert report.error == "the answer is larger than the 100,000 bytes allowed"


@pytest.mark.asyncio
async def test_a_slow_source_times_out_without_holding_up_the_others(server: Server) -> None:
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        await asyncio.wait_for(release.wait(), 30)
        return web.Response(text="late")

    server.routes["/slow.xml"] = slow
    server.serve("/rss.xml", (FIXTURES / "rss2.xml").read_bytes(), "application/rss+xml")
    sources = [feed(server, "slow", "/slow.xml"), feed(server, "wire", "/rss.xml")]
    started = asyncio.get_running_loop().time()
    slow_report, ok = await collect(sources, MemoryStore(), NOW, timeout=0.5)
    assert asyncio.get_running_loop().time() - started < 20
    assert slow_report.error is not None and slow_report.error.startswith("timed out")
    assert ok.error is None and ok.new == 3
    release.set()  # the server can shut down now


def test_settings_refuse_bad_urls_and_tickers() -> None:
    with pytest.raises(ValidationError, match="scheme"):
        FeedSettings(name="f", url="ftp://example.org/feed")
    with pytest.raises(ValidationError, match="not a ticker"):
        FeedSettings(name="f", url="https://example.org/feed", symbols=["BTC/USD"])
    with pytest.raises(ValidationError):
        NewsSettings(keywords={"B T C": ["bitcoin"]})
    assert FeedSettings(name="f", url="https://example.org/f", symbols=[" eth "]).symbols == ["ETH"]


def test_feeds_come_from_the_settings_file_and_a_bad_one_is_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "phantomex.toml"
    config.write_text(
        '[news]\nkeywords = { BTC = ["bitcoin"] }\n'
        '[[news.feeds]]\nname = "wire"\nurl = "https://news.example.org/rss.xml"\n'
        '[[news.feeds]]\nname = "bad"\nurl = "not a url"\n'
        '[news.cryptopanic]\ntoken = "t0ken"\ncurrencies = ["btc"]\n'
    )
    monkeypatch.setenv("PHANTOMEX_CONFIG", str(config))
    settings = load_settings()
    assert [f.name for f in settings.news.feeds] == ["wire"]
    assert any(p.name.startswith("news.feeds[1]") for p in settings.skipped), settings.skipped
    sources = sources_from_settings(settings.news)
    assert [s.name for s in sources] == ["wire", "cryptopanic"]


@pytest.mark.asyncio
async def test_polling_stamps_each_round_with_its_time_and_survives_a_failing_source(
    server: Server,
) -> None:
    rounds = iter([NOW, NOW + timedelta(minutes=15)])
    server.serve("/rss.xml", (FIXTURES / "rss2.xml").read_bytes(), "application/rss+xml")
    server.serve("/gone", "down", "text/plain", status=500)
    sources = [feed(server, "gone", "/gone"), feed(server, "wire", "/rss.xml")]
    store = MemoryStore()

    async def serve_more_later() -> None:  # a new item appears after the first round
        while len([r for r in server.requests if r.path == "/rss.xml"]) < 1:
            await asyncio.sleep(0.01)
        text = (FIXTURES / "rss2.xml").read_text().replace("wire-1001", "wire-2002")
        text = text.replace("slips below", "climbs above").replace("-slips", "-climbs")
        server.serve("/rss.xml", text, "application/rss+xml")

    await asyncio.gather(
        poll(sources, store, every=0.05, clock=lambda: next(rounds), rounds=2),
        serve_more_later(),
    )
    assert store.count_news() == 4
    (late,) = store.news(NOW + timedelta(hours=1), query="climbs")
    assert late.first_seen == NOW + timedelta(minutes=15)
    assert all(i.first_seen == NOW for i in store.news(NOW, limit=10))


def test_recorded_news_files_are_seen_from_their_recorded_times(tmp_path: Path) -> None:
    saved = tmp_path / "wire.xml"
    saved.write_bytes((FIXTURES / "rss2.xml").read_bytes())
    recorded = read_records(saved, keywords={"BTC": ["bitcoin"]})
    assert [i.first_seen for i in recorded.items] == [i.published for i in recorded.items]
    assert recorded.items[0].source == "wire" and recorded.items[0].symbols == ("BTC",)
    lines = tmp_path / "n.jsonl"
    good = {"title": "t", "guid": "g", "published": "2023-04-20T00:00:00Z"}
    lines.write_text(
        "\n".join(
            [
                json.dumps(good),
                json.dumps({**good, "guid": "h", "first_seen": "2023-04-20T01:00:00"}),
                json.dumps({"title": "no time", "guid": "x"}),
                json.dumps({"title": "no id", "published": "2023-04-20T00:00:00Z"}),
                json.dumps({**good, "symbols": "BTC"}),
                "[1, 2]",
                "",
            ]
        )
    )
    recorded = read_records(lines, source="desk")
    assert [(i.key, i.first_seen.hour, i.source) for i in recorded.items] == [
        ("g", 0, "desk"),
        ("h", 1, "desk"),
    ]
    assert [r.split(":")[0] for r in recorded.refused] == ["line 3", "line 4", "line 5", "line 6"]
    assert "needs first_seen or published" in recorded.refused[0]
    assert [item_json(i)["first_seen"] for i in recorded.items][1] == "2023-04-20T01:00:00+00:00"


def test_an_entry_with_a_link_too_long_to_keep_is_skipped_not_fatal() -> None:
    long_link = "https://h.example/" + "a" * 3000
    rss = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        f"<item><title>kept</title><link>https://h.example/1</link></item>"
        f"<item><title>too long</title><link>{long_link}</link></item></channel></rss>"
    )
    fetched = parse_feed(rss, source="t", now=NOW)
    assert [i.title for i in fetched.items] == ["kept"]
    assert fetched.warnings == ["1 entries without a title or a usable link were skipped"]
