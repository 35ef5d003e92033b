"""Source specs -> feeds, and the composite feed merging several live sources."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakeapi import FakeAPI, Reply

from phantomex.api.sources import SourceWatch
from phantomex.broker.paper import PaperBroker
from phantomex.config import Settings
from phantomex.demo import seed_demo
from phantomex.domain.agent import AgentSpec
from phantomex.feeds import build_sources
from phantomex.kernel.bus import Event
from phantomex.kernel.runtime import Kernel, KernelError
from phantomex.market.coingecko import CoinGeckoConfig, CoinGeckoFeed
from phantomex.market.replay import ReplayFeed
from phantomex.market.sources import (
    CompositeFeed,
    SourceError,
    health_of,
    symbol_sources,
)
from phantomex.service import Service
from phantomex.store.repo import Store

PRICE = "/api/v3/simple/price"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield s
    s.close()


def settings(**values: object) -> Settings:
    return Settings.model_validate({"demo": False, **values})


def test_the_default_source_is_the_replay_and_it_reports_health(store: Store) -> None:
    feed = build_sources(settings().sources, settings(), store)
    assert isinstance(feed, ReplayFeed)
    [health] = health_of(feed)
    assert health.source == "replay" and health.last_update is None
    assert sorted(symbol_sources(feed)) == ["BTC", "DOGE", "ETH", "SOL", "XRP"]
    asyncio.run(feed.next_tick())
    assert health_of(feed)[0].last_update is not None


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["nasdaq"], "unknown source 'nasdaq'"),
        (["ccxt"], "name the exchange"),
        (["replay", "coingecko"], "cannot be combined"),
        (["coingecko", "CoinGecko"], "listed twice"),
        ([], "no market source"),
    ],
)
def test_bad_source_specs_are_refused_clearly(store: Store, specs: list[str], message: str) -> None:
    with pytest.raises(SourceError, match=message):
        build_sources(specs, settings(), store)


def test_coingecko_spec_builds_the_configured_feed(store: Store) -> None:
    cfg = settings(sources=["coingecko"], coingecko={"coins": ["BTC", "ETH"], "poll_seconds": 5})
    feed = build_sources(cfg.sources, cfg, store)
    assert isinstance(feed, CoinGeckoFeed)
    assert list(feed.instruments) == ["BTC", "ETH"]
    assert feed.config.poll_seconds == 5


def gecko(api: FakeAPI, coins: list[str]) -> CoinGeckoFeed:
    return CoinGeckoFeed(
        CoinGeckoConfig(coins=coins, base_url=api.url + "/api/v3", poll_seconds=0.01)
    )


@pytest.mark.asyncio
async def test_composite_merges_sources_and_qualifies_colliding_symbols() -> None:
    with FakeAPI() as one, FakeAPI() as two:
        one.route(
            "GET",
            PRICE,
            Reply(
                body={
                    "bitcoin": {"usd": 100, "last_updated_at": 1779092258},
                    "ethereum": {"usd": 10, "last_updated_at": 1779092258},
                }
            ),
        )
        two.route("GET", PRICE, Reply(500, {"error": "down"}))
        feed = CompositeFeed(
            [("coingecko", gecko(one, ["BTC", "ETH"])), ("mirror", gecko(two, ["BTC", "SOL"]))]
        )

        assert sorted(feed.instruments) == ["BTC", "BTC@MIRROR", "ETH", "SOL"]
        assert feed.instruments["BTC@MIRROR"].symbol == "BTC@MIRROR"
        assert symbol_sources(feed) == {
            "BTC": "coingecko",
            "ETH": "coingecko",
            "BTC@MIRROR": "mirror",
            "SOL": "mirror",
        }
        ticks = [await feed.next_tick() for _ in range(6)]
        times = [t.time for t in ticks if t is not None]
        assert len(times) == 6 and times == sorted(times) and len(set(times)) == 6
        prices = {s: snap for t in ticks if t for s, snap in t.snapshots.items()}
        assert set(prices) == {"BTC", "ETH"}  # the failing source sends nothing, never a guess
        health = {h.source: h for h in health_of(feed)}
        assert health["coingecko"].errors == 0 and health["mirror"].errors >= 1
        assert health["mirror"].symbols == ["BTC@MIRROR", "SOL"]
        feed.close()
        assert await feed.next_tick() is None


@pytest.mark.asyncio
async def test_composite_renames_warmup_bars() -> None:
    chart = {"prices": [[1779000000000 + i * 300_000, 100 + i] for i in range(4)]}
    with FakeAPI() as one, FakeAPI() as two:
        for api in (one, two):
            api.route("GET", "/api/v3/coins/bitcoin/market_chart", Reply(body=chart))
        feed = CompositeFeed([("coingecko", gecko(one, ["BTC"])), ("mirror", gecko(two, ["BTC"]))])
        ticks = feed.warmup()
        assert [sorted(t.bars) for t in ticks] == [["BTC", "BTC@MIRROR"]] * 3
        assert all(t.bars["BTC@MIRROR"].symbol == "BTC@MIRROR" for t in ticks)
        feed.close()


@pytest.mark.asyncio
async def test_an_agent_source_picks_that_sources_symbols(store: Store) -> None:
    with FakeAPI() as one, FakeAPI() as two:
        feed = CompositeFeed(
            [("coingecko", gecko(one, ["BTC", "ETH"])), ("mirror", gecko(two, ["BTC", "SOL"]))]
        )
        kernel = Kernel(store, feed, PaperBroker())
        mirror = kernel.create_agent(
            AgentSpec(name="Mirror", brain="rsi", symbols=["btc", "SOL"], source="Mirror")
        )
        assert mirror.spec.symbols == ["BTC@MIRROR", "SOL"]
        main = kernel.create_agent(
            AgentSpec(name="Main", brain="rsi", symbols=["BTC"], source="coingecko")
        )
        assert main.spec.symbols == ["BTC"]
        with pytest.raises(KernelError, match=r"SOL is not a symbol of source 'coingecko'") as err:
            kernel.create_agent(
                AgentSpec(name="Bad", brain="rsi", symbols=["SOL"], source="coingecko")
            )
        assert err.value.field == "source"
        with pytest.raises(KernelError, match="unknown source 'yahoo'"):
            kernel.create_agent(AgentSpec(name="Bad", brain="rsi", symbols=["BTC"], source="yahoo"))
        assert sorted(a.name for a in kernel.agents.values()) == ["Main", "Mirror"]
        feed.close()


def test_the_demo_trades_the_symbols_a_live_source_has(store: Store) -> None:
    with FakeAPI() as api:
        kernel = Kernel(store, gecko(api, ["BTC", "SOL", "ADA"]), PaperBroker())
        assert seed_demo(kernel) == 3
        symbols = {a.name: a.spec.symbols for a in kernel.agents.values()}
        assert symbols == {
            "Ruby RSI": ["BTC", "SOL"],
            "Max Momentum": ["BTC", "SOL"],
            "Sam Spike-Fade": ["SOL"],
        }


@pytest.mark.asyncio
async def test_a_sources_event_is_published_when_a_source_turns_stale(store: Store) -> None:
    with FakeAPI() as api:
        api.route(
            "GET",
            PRICE,
            Reply(body={"bitcoin": {"usd": 100, "last_updated_at": 1779092258}}),
            Reply(500, {"error": "down"}),
        )
        feed = CoinGeckoFeed(
            CoinGeckoConfig(coins=["BTC"], base_url=api.url + "/api/v3", stale_after_seconds=0.05)
        )
        kernel = Kernel(store, feed, PaperBroker())
        seen: list[Event] = []
        kernel.bus.subscribe(seen.append)
        kernel.bus.subscribe(SourceWatch(Service.of(kernel)).on_event)
        with kernel.unit():  # events go out when the tick's transaction commits
            await kernel.step(await feed.poll())  # fresh: the watch's starting point
        assert [e.type for e in seen] == ["price"]
        time.sleep(0.1)  # longer than stale_after: the next look finds it stale
        with kernel.unit():
            await kernel.step(await feed.poll())
        events = [e for e in seen if e.type == "sources"]
        assert len(events) == 1
        [row] = events[0].data["sources"]
        assert row["stale"] is True and row["last_error"] == "HTTP 500: down"
        assert row["prices"]["BTC"]["price"] == "100"
        feed.close()
