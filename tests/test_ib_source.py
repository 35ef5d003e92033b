"""The ``ib`` price source: ``sources = ["ib"]`` feeds US stocks from the IB Gateway stand-in over
the connection of the ``[exchange.ib]`` settings - the one the ib-paper venue trades on - with
delayed data marked (market data type 3, 4 when frozen) and stale prices left out."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from ib_helpers import CLOSED, OPEN, Clock, D, gateway, ib_settings

from phantomex.broker.ib_broker import IBBroker
from phantomex.broker.ib_feed import IBFeed
from phantomex.broker.paper import PaperBrokerConfig
from phantomex.broker.router import VenueRouter
from phantomex.broker.venues import ExchangeSettings, VenueBook
from phantomex.config import Settings
from phantomex.feeds import build_sources
from phantomex.kernel import exchange_setup
from phantomex.market.sources import SourceError, health_of, symbol_sources
from phantomex.secrets import SecretBox
from phantomex.store.repo import Store

REQ_MKT_DATA, REQ_MARKET_DATA_TYPE = 1, 59


@pytest.fixture
def clock() -> Clock:
    return Clock(OPEN)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'px.db'}")
    yield s
    s.close()


def server_settings(exchange: ExchangeSettings, *sources: str, **ib: object) -> Settings:
    """The server's settings: ``sources`` and the [exchange.ib] table (symbols, ticks on demand)."""
    table = exchange.ib.model_copy(update={"symbols": ["AAPL"], "poll_seconds": 0, **ib})
    return Settings.model_validate(
        {
            "demo": False,
            "sources": list(sources or ["ib"]),
            "exchange": exchange.model_copy(update={"ib": table}),
        }
    )


def ib_source(settings: Settings, store: Store, clock: Clock) -> IBFeed:
    feed = build_sources(settings.sources, settings, store)
    assert isinstance(feed, IBFeed)
    feed.clock = clock  # the test drives time
    return feed


def test_sources_ib_feeds_from_the_venues_connection(
    tmp_path: Path, clock: Clock, store: Store
) -> None:
    gw = gateway(tmp_path / "acct.json", clock)
    try:
        gw.set_price("AAPL", "187.25")
        settings = server_settings(ib_settings(gw))
        router = VenueRouter(PaperBrokerConfig(), VenueBook(), {})
        box = SecretBox(Fernet.generate_key())
        exchange_setup.open_venue(router, store, box, settings.exchange, "ib-paper")
        venue = router.brokers["ib-paper"]
        assert isinstance(venue, IBBroker)
        feed = ib_source(settings, store, clock)
        assert feed.link is venue.link and gw.connected_clients == [17]  # one connection
        assert symbol_sources(feed) == {"AAPL": "ib"}
        snap = feed.poll().snapshots["AAPL"]
        assert (snap.price, snap.time) == (D("187.25"), OPEN - timedelta(minutes=15))
        assert feed.market_data_type == {"AAPL": 3} and feed.delayed == {"AAPL": True}
        assert not health_of(feed)[0].stale(clock.now)
        venue.link.close()  # the venue lets go: the source keeps the connection
        gw.set_price("AAPL", "187.50")
        _eventually(lambda: feed.poll().snapshots["AAPL"].price == D("187.50"))
        feed.close()
        _eventually(lambda: gw.connected_clients == [])
    finally:
        gw.stop()


def test_a_stale_price_is_left_out(tmp_path: Path, clock: Clock, store: Store) -> None:
    gw = gateway(tmp_path / "acct.json", clock)
    feed = None
    try:
        gw.set_price("AAPL", "187.25")
        feed = ib_source(server_settings(ib_settings(gw), max_price_age_s=1200), store, clock)
        assert "AAPL" in feed.poll().snapshots  # 15 minutes old: within the 20 minute limit
        clock.now += timedelta(minutes=10)  # no trade since: the last price is 25 minutes old
        tick = feed.poll()
        assert tick.snapshots == {} and tick.time == clock.now
        (health,) = health_of(feed)
        assert health.stale(clock.now)
        assert health.last_error is not None and "stale prices left out: AAPL" in health.last_error
        gw.set_price("AAPL", "188.00")  # a new trade: fresh again
        _eventually(lambda: "AAPL" in feed.poll().snapshots)
        assert feed.poll().snapshots["AAPL"].price == D("188.00")
    finally:
        if feed is not None:
            feed.close()
        gw.stop()


@pytest.mark.parametrize(("realtime", "open_type", "closed_type"), [(False, 3, 4), (True, 1, 2)])
def test_market_data_type_follows_the_session(
    tmp_path: Path, clock: Clock, store: Store, realtime: bool, open_type: int, closed_type: int
) -> None:
    """In market hours IB serves delayed (3) or live (1) data; after the close the last price
    frozen (4 or 2) - delayed either way when the account has no subscription."""
    gw = gateway(tmp_path / "acct.json", clock, realtime_data=realtime)
    feed = None
    try:
        gw.set_price("AAPL", "187.25")
        market_data = "realtime" if realtime else "delayed"
        settings = server_settings(ib_settings(gw), market_data=market_data)
        feed = ib_source(settings, store, clock)
        feed.poll()
        assert feed.market_data_type == {"AAPL": open_type}
        clock.now = CLOSED
        gw.set_price("AAPL", "187.10")  # the closing trade, as IB shows it after the close
        _eventually(lambda: (feed.poll(), feed.market_data_type)[1] == {"AAPL": closed_type})
        assert feed.delayed == {"AAPL": not realtime}
        asked = {
            int(f[2]) for f in gw.requests(REQ_MARKET_DATA_TYPE)
        }  # reqMarketDataType: frozen when closed
        assert asked == {4 if not realtime else 2}
        assert len(gw.requests(REQ_MKT_DATA)) == 1  # one subscription, kept
    finally:
        if feed is not None:
            feed.close()
        gw.stop()


def test_the_ib_source_refuses_a_live_account(tmp_path: Path, clock: Clock, store: Store) -> None:
    live = gateway(tmp_path / "live.json", clock, account="U7654321")
    try:
        with pytest.raises(SourceError, match="not a paper account"):
            build_sources(["ib"], server_settings(ib_settings(live)), store)
        _eventually(lambda: live.connected_clients == [])
        assert live.requests(REQ_MKT_DATA) == []
    finally:
        live.stop()


def test_the_ib_source_needs_symbols(store: Store) -> None:
    settings = Settings.model_validate({"demo": False, "sources": ["ib"]})
    with pytest.raises(SourceError, match="no symbols"):
        build_sources(settings.sources, settings, store)


def _eventually(done: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until ``done()`` (polling; the gateway answers on its own thread)."""
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the gateway did not get there in time"
        time.sleep(0.05)
