"""Replay, then live: recorded bars (downloaded through ccxt from a local server speaking
Binance's REST API) handed over to CoinGecko's live prices (a local server speaking CoinGecko's
API), on one kernel. Time is driven by the servers: every klines request moves the present on
30 seconds (it moves while the replay catches up), every price poll 60 seconds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from conftest import serve
from fakeapi import FakeAPI, Reply, Request
from test_data_download import exchange_info
from test_session_api import patient_start

from phantomex.broker.paper import PaperBroker
from phantomex.domain.agent import Agent, AgentSpec
from phantomex.domain.models import Action, Bar, Decision, Tick
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.market.coingecko import CoinGeckoConfig, CoinGeckoFeed
from phantomex.market.datastore import DataStore
from phantomex.market.download import make_exchange, point_at
from phantomex.market.handover import Gap, HandoverFeed
from phantomex.market.history import StoredHistory
from phantomex.market.replay import ReplayFeed
from phantomex.sessions.handover import LiveSources
from phantomex.sessions.manager import SessionManager
from phantomex.sessions.spec import SessionError, SessionSpec
from phantomex.store.repo import Store

PRESENT = datetime(2026, 11, 3, 12, 0, tzinfo=UTC)  # the test's "now" when it starts
BAR = timedelta(minutes=5)
START = PRESENT - timedelta(hours=3)


def price(when: datetime) -> Decimal:
    """A deterministic BTC price: a slow saw-tooth, one step per 5-minute bar."""
    step = int((when - datetime(2026, 1, 1, tzinfo=UTC)).total_seconds()) // 300
    return Decimal(30000 + (step % 40) * 5)


@dataclass
class Present:
    """The moving present: seconds after PRESENT (a monotonic clock and a wall clock)."""

    t: float = 0.0

    def monotonic(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return PRESENT + timedelta(seconds=self.t)


class WallClock(Present):
    """The real present, for a server in another process."""

    def wall(self) -> datetime:
        return datetime.now(UTC)


def klines(now: Present) -> Any:
    """``GET /api/v3/klines``: closed 5-minute BTCUSDT candles up to 20 minutes ago (the
    exchange's history lags: the live source's own history bridges the rest)."""

    def handle(request: Request) -> Reply:
        wall = now.wall() - timedelta(minutes=20)
        now.t += 30
        start = int(request.arg("startTime") or 0)
        limit = min(int(request.arg("limit") or 500), 1000)
        first = max(start, int((wall - timedelta(days=2)).timestamp() * 1000))
        ms = -(-first // 300_000) * 300_000
        rows: list[list[Any]] = []
        while len(rows) < limit and ms + 300_000 <= wall.timestamp() * 1000:
            p = str(price(datetime.fromtimestamp(ms / 1000, UTC)))
            rows.append([ms, p, p, p, p, "1.5", ms + 299_999, "0", 1, "0", "0", "0"])
            ms += 300_000
        return Reply(body=rows)

    return handle


def simple_price(now: Present) -> Any:
    def handle(request: Request) -> Reply:
        wall = now.wall()  # the price as of the request; the present moves on a poll
        now.t += 60
        body = {"usd": float(price(wall)), "usd_24h_change": 0.5}
        return Reply(body={"bitcoin": {**body, "last_updated_at": int(wall.timestamp())}})

    return handle


def market_chart(now: Present) -> Any:
    """``/coins/bitcoin/market_chart?days=1``: a price point a minute for the past day."""

    def handle(request: Request) -> Reply:
        wall = now.wall()
        points = []
        when = wall - timedelta(days=1)
        while when <= wall:
            points.append([int(when.timestamp() * 1000), float(price(when))])
            when += timedelta(minutes=1)
        return Reply(body={"prices": points, "market_caps": [], "total_volumes": []})

    return handle


@pytest.fixture
def present() -> Present:
    return Present()


@pytest.fixture
def binance(present: Present) -> Iterator[FakeAPI]:
    with FakeAPI() as api:
        api.route("GET", "/api/v3/exchangeInfo", Reply(body=exchange_info(("BTC", "USDT"))))
        api.route("GET", "/api/v3/klines", klines(present))
        yield api


@pytest.fixture
def coingecko(present: Present) -> Iterator[FakeAPI]:
    with FakeAPI() as api:
        api.route("GET", "/api/v3/simple/price", simple_price(present))
        api.route("GET", "/api/v3/coins/bitcoin/market_chart", market_chart(present))
        yield api


def sources(binance: FakeAPI, coingecko: FakeAPI, present: Present, root: Path) -> LiveSources:
    def live(spec: str, symbols: list[str]) -> CoinGeckoFeed:
        assert spec == "coingecko"
        config = CoinGeckoConfig(
            coins=symbols, base_url=coingecko.url + "/api/v3", poll_seconds=60, bar_seconds=300
        )
        return CoinGeckoFeed(config, clock=present.monotonic, wall=present.wall)

    def exchange(name: str) -> Any:
        ex = make_exchange(name)
        point_at(ex, binance.url)
        ex.rateLimit = 1  # the local server needs no throttling
        return ex

    return LiveSources(live, DataStore(root), exchange, wall=present.wall)


def handover_kernel(
    src: LiveSources,
    history: StoredHistory,
    recorded: dict[str, list[Bar]],
    live_name: str,
    start: datetime,
    present: Present,
) -> tuple[HandoverFeed, Kernel, Agent]:
    """One kernel on ``recorded`` BTC bars from ``start`` handing over to ``live_name``, with
    an RSI agent that decides at the first tick only (the test trades) and has no cooldown."""
    feed = HandoverFeed(
        recorded,
        src.live(live_name, ["BTC"]),
        live_name=live_name,
        start=start,
        period=BAR,
        warmup_bars=20,
        newer=lambda after: history.newer(["BTC"], after),
        live_for=timedelta(minutes=20),
        wall=present.wall,
    )
    kernel = Kernel(Store("sqlite://"), feed, PaperBroker(), config=KernelConfig())
    kernel.load()
    kernel.warm_up()
    kernel.begin_at(start)
    agent = kernel.create_agent(
        AgentSpec(
            name="keeper",
            brain="rsi",
            symbols=["BTC"],
            interval_seconds=7 * 86400,  # decides at the first tick only: the test trades
            risk=RiskProfile(cooldown_seconds=0),
        )
    )
    return feed, kernel, agent


@pytest.mark.asyncio
async def test_one_kernel_hands_over_without_gap_or_duplicate(
    binance: FakeAPI, coingecko: FakeAPI, present: Present, tmp_path: Path
) -> None:
    src = sources(binance, coingecko, present, tmp_path)
    history = StoredHistory(src.datasets, "binance", "5m", src.exchange("binance"))
    recorded = history.load(["BTC"], START - 20 * BAR)
    assert recorded["BTC"][-1].time < present.wall() - BAR  # history ends behind the present
    feed, kernel, agent = handover_kernel(src, history, recorded, "coingecko", START, present)
    replay_times, live_times, bought, held = [], [], None, Decimal(0)
    brain, state = kernel.brains[agent.id], kernel.agents[agent.id].risk_state
    handover: datetime | None = None
    while (tick := await feed.next_tick()) is not None:
        was_live = feed.clock.phase == "live"
        with kernel.unit():
            await kernel.step(tick)
            if bought is None:
                rec = kernel.place(agent.id, Decision(Action.BUY, "BTC", quantity=Decimal("0.1")))
                assert rec.status == "executed", rec.reason
                bought = rec
        if not was_live:
            assert feed.clock.now() == tick.time < present.wall()  # simulated time
            replay_times.append(tick.time)
            held = kernel.ledger.wallet(agent.id).quantity("BTC")
            assert kernel.audit() == []
        else:
            if handover is None:
                handover = tick.time
                assert feed.clock.handed_over_at == tick.time
                # the position opened in the replay is still open; the clock is wall time now
                assert kernel.ledger.wallet(agent.id).quantity("BTC") == held > 0
                # the same brain (its memory and notes) and risk state decide on live prices
                assert (
                    kernel.brains[agent.id] is brain and kernel.agents[agent.id].risk_state is state
                )
                assert kernel.now == tick.time == present.wall() - timedelta(seconds=60)
                assert kernel.audit() == []
            live_times.append(tick.time)

    assert feed.top_ups >= 1, "the newest candles were fetched on approach"
    assert feed.bridge_bars >= 1 and replay_times and len(live_times) >= 3
    assert handover is not None and handover > replay_times[-1]
    assert feed.gaps == [] and feed.parts["live"].bars >= 2
    bars = kernel.history.view(kernel.now + BAR).bars("BTC")
    opens = [b.time for b in bars]
    assert opens[0] <= START - 20 * BAR + BAR
    assert all(b - a == BAR for a, b in pairwise(opens)), "no gap, no dup"
    assert opens[-1] >= handover - 2 * BAR, "bars built from live prices joined the history"
    assert [b.close for b in bars] == [price(t) for t in opens]

    sold = kernel.place(agent.id, Decision(Action.SELL, "BTC", quantity=held))
    assert sold.status == "executed" and sold.price == price(kernel.now)
    assert kernel.audit() == []
    kernel.store.close()


@pytest.mark.asyncio
async def test_session_records_the_replay_and_the_live_part(
    binance: FakeAPI, coingecko: FakeAPI, present: Present, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'main.db'}")
    main_feed = ReplayFeed(_one_bar())
    kernel = Kernel(store, main_feed, PaperBroker(), config=KernelConfig(persist_snapshots=False))
    kernel.load()
    src = sources(binance, coingecko, present, tmp_path / "datasets")
    m = SessionManager(
        kernel, store, fee_bps=Decimal(10), slippage_bps=Decimal(0), live_sources=src
    )
    body = {
        "name": "handover",
        "symbols": ["BTC"],
        "agents": [{"name": "ruby", "brain": "rsi"}, {"name": "max", "brain": "sma_cross"}],
        "replay": {"dataset": "bn", "start": START.isoformat()},
        "then_live": {"source": "coingecko", "duration": "15m"},
        "warmup_bars": 30,
    }
    started = await m.start(SessionSpec.model_validate(body))
    run = m.runs[started["id"]]
    assert run.task is not None
    await asyncio.wait_for(run.task, timeout=120)
    got = m.get(started["id"])
    assert got["status"] == "finished", got.get("error")  # the ledger reconciled at the end
    window = got["window"]
    replay, live = window["parts"]
    assert window["source"] == "dataset:bn+live:coingecko"
    assert replay["ticks"] > 30 and live["ticks"] >= 15 and window["gaps"] == []
    handover = datetime.fromisoformat(window["handover_at"])
    assert datetime.fromisoformat(replay["end"]) < handover == datetime.fromisoformat(live["start"])
    assert datetime.fromisoformat(window["end"]) == handover + timedelta(minutes=15)
    assert got["times"][-1] >= window["end"]
    assert DataStore(tmp_path / "datasets").last_time("bn", "BTC", "5m") is not None

    final = m.summaries(started["id"])[-1]
    assert final["kind"] == "final"
    assert "Replay part (recorded bars" in final["text"] and "Live part (coingecko" in final["text"]
    parts = final["figures"]["parts"]
    assert set(parts[0]["returns"]) == set(parts[1]["returns"]) == {"ruby", "max"}
    kernel.stop()
    store.close()


def _one_bar() -> dict[str, list[Any]]:
    from phantomex.sessions.manager import _bars

    return {"BTC": _bars("demo", "BTC")[:100]}


def _bars(first: int, last: int, shift: int = 0) -> list[Bar]:
    """BTC 5-minute bars number ``first`` to ``last`` after START (closes shifted by ``shift``)."""
    out = []
    for i in range(first, last + 1):
        p = Decimal(30000 + i + shift)
        out.append(Bar("BTC", START + i * BAR, p, p, p, p, Decimal(1)))
    return out


async def _drain(feed: HandoverFeed) -> list[Tick]:
    ticks = []
    while (tick := await feed.next_tick()) is not None:
        ticks.append(tick)
    return ticks


@pytest.mark.asyncio
async def test_bars_the_replay_carried_are_not_sent_again_and_a_gap_is_recorded() -> None:
    live = ReplayFeed({"BTC": _bars(5, 14, shift=1000)}, period=BAR, warmup_bars=3)
    feed = HandoverFeed({"BTC": _bars(0, 9)}, live, live_name="x", start=START, period=BAR)
    ticks = await _drain(feed)
    carried = [t.bars["BTC"] for t in ticks if "BTC" in t.bars]
    assert [b.time for b in carried] == [START + i * BAR for i in range(15)]
    assert [b.close for b in carried[9:]] == [Decimal(30009)] + [
        Decimal(31000 + i) for i in range(10, 15)
    ]  # recorded bars up to 9, then the live source's from 10 on: 8 and 9 are not sent again
    assert feed.duplicates == 2 and feed.gaps == [] and feed.clock.phase == "live"
    assert all(a.time < b.time for a, b in pairwise(ticks))

    late = ReplayFeed({"BTC": _bars(8, 12)}, period=BAR)
    feed = HandoverFeed({"BTC": _bars(0, 4)}, late, live_name="x", start=START, period=BAR)
    await _drain(feed)
    assert feed.gaps == [Gap("BTC", START + 4 * BAR, START + 8 * BAR)]


@pytest.mark.asyncio
async def test_a_replay_that_goes_live_is_checked(tmp_path: Path) -> None:
    base = {
        "name": "h",
        "symbols": ["BTC"],
        "agents": [{"name": "a", "brain": "rsi"}],
        "replay": {"dataset": "bn", "start": START.isoformat()},
        "then_live": {"source": "coingecko", "duration": "1h"},
    }
    SessionSpec.model_validate(base)
    for changes in (
        {"replay": {**base["replay"], "end": PRESENT.isoformat()}},  # it runs until now
        {"then_live": {"source": "yahoo", "duration": "1h"}},
        {"then_live": {"source": "coingecko", "duration": "0s"}},
        {"replay": {**base["replay"], "speed": 60}},  # it catches up as fast as it can
        {"replay": {**base["replay"], "dataset": "demo"}},
        {"kind": "live", "duration": "1h"},
    ):
        with pytest.raises(ValueError):
            SessionSpec.model_validate({**base, **changes})
    with pytest.raises(ValueError):
        SessionSpec.model_validate({**base, "then_live": None})  # a replay needs an end
    store = Store(f"sqlite:///{tmp_path / 'main.db'}")
    kernel = Kernel(store, ReplayFeed(_one_bar()), PaperBroker())
    m = SessionManager(kernel, store, fee_bps=Decimal(10), slippage_bps=Decimal(0))
    with pytest.raises(SessionError, match="cannot start live sources"):
        await m.start(SessionSpec.model_validate(base))
    store.close()


def test_cli_starts_a_replay_that_goes_live_on_a_real_server(tmp_path: Path) -> None:
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
        since = (datetime.now(UTC) - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
        with patient_start(), serve(tmp_path / "data", **env) as server:
            rc, out, err = server.cli(
                *("session", "start", "went live", "--agent", "ruby=rsi", "--symbols", "BTC"),
                *("--from", since, "--then-live", "coingecko", "--duration", "3s"),
                *("--wait", "--json"),
                timeout=300,
            )
            assert rc == 0, err
            got = json.loads(out)
            assert got["status"] == "finished", got.get("error")
            replay, live = got["window"]["parts"]
            assert replay["ticks"] >= 20 and live["ticks"] >= 2
            assert got["window"]["gaps"] == [] and got["window"]["bridge_bars"] >= 3
            rc, out, err = server.cli("session", "show", "went live")
            assert rc == 0, err
            assert "Replay part (recorded bars" in out and "Live part (coingecko" in out
            assert (tmp_path / "data" / "datasets" / "binance" / "BTC_5m.parquet").exists()
