"""Replay, then live on a ccxt exchange (``--then-live ccxt:binance``): recorded bars downloaded
through ccxt from a local server speaking Binance's REST API, then that server's live tickers and
candles through the ccxt feed, on one kernel. Time is driven by the server as in
``test_handover``: every klines request moves the present on 30 seconds, every ticker poll 60.
The present starts at the real time (the download keeps candles closed by the real clock, so a
present in the past would let the still-forming candle through as closed).

Unlike the CoinGecko case, the exchange's candles are current (the still-forming one comes last,
as Binance sends it) and the live source's history is the same exchange's klines."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeAPI, Reply, Request
from test_data_download import exchange_info
from test_handover import BAR, _one_bar, handover_kernel, price

from phantomex.broker.paper import PaperBroker
from phantomex.domain.models import Action, Decision
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.market.ccxt_feed import CcxtFeed, ccxt_feed_from_spec
from phantomex.market.datastore import DataStore
from phantomex.market.download import make_exchange, point_at
from phantomex.market.history import StoredHistory
from phantomex.market.replay import ReplayFeed
from phantomex.sessions.handover import LiveSources
from phantomex.sessions.manager import SessionManager
from phantomex.sessions.spec import SessionSpec
from phantomex.store.repo import Store

BAR_MS = int(BAR.total_seconds() * 1000)


@dataclass
class Present:
    """The moving present: ``start`` (the real time when the test began), plus ``t`` seconds
    the server moved it on."""

    start: datetime
    t: float = 0.0

    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.t)


def klines(now: Present) -> Any:
    """``GET /api/v3/klines``: 5-minute BTCUSDT candles up to the one still forming (last).
    With ``startTime``: from there on; without: the latest ``limit`` (as Binance answers)."""

    def handle(request: Request) -> Reply:
        wall_ms = int(now.wall().timestamp() * 1000)
        now.t += 30
        limit = min(int(request.arg("limit") or 500), 1000)
        forming = wall_ms // BAR_MS * BAR_MS
        start = request.arg("startTime")
        if start is None:
            first = forming - (limit - 1) * BAR_MS
        else:
            first = max(-(-int(start) // BAR_MS) * BAR_MS, forming - 2 * 86_400_000)
        rows: list[list[Any]] = []
        for ms in range(first, min(forming, first + (limit - 1) * BAR_MS) + 1, BAR_MS):
            p = str(price(datetime.fromtimestamp(ms / 1000, UTC)))
            rows.append([ms, p, p, p, p, "1.5", ms + BAR_MS - 1, "0", 1, "0", "0", "0"])
        return Reply(body=rows)

    return handle


def tickers(now: Present) -> Any:
    """``GET /api/v3/ticker/24hr``: BTCUSDT's last price as of the request."""

    def handle(request: Request) -> Reply:
        wall = now.wall()
        now.t += 60
        ms = int(wall.timestamp() * 1000)
        last = str(price(wall))
        body = {
            "symbol": "BTCUSDT",
            "priceChange": "0",
            "priceChangePercent": "0.5",
            "weightedAvgPrice": last,
            "prevClosePrice": last,
            "lastPrice": last,
            "lastQty": "0.1",
            "bidPrice": last,
            "bidQty": "1",
            "askPrice": last,
            "askQty": "1",
            "openPrice": last,
            "highPrice": last,
            "lowPrice": last,
            "volume": "100",
            "quoteVolume": "3000000",
            "openTime": ms - 86_400_000,
            "closeTime": ms,
            "firstId": 1,
            "lastId": 2,
            "count": 2,
        }
        return Reply(body=[body])

    return handle


@pytest.fixture
def present() -> Present:
    return Present(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def binance(present: Present) -> Iterator[FakeAPI]:
    with FakeAPI() as api:
        api.route("GET", "/api/v3/exchangeInfo", Reply(body=exchange_info(("BTC", "USDT"))))
        api.route("GET", "/api/v3/klines", klines(present))
        api.route("GET", "/api/v3/ticker/24hr", tickers(present))
        yield api


def sources(binance: FakeAPI, present: Present, root: Path) -> LiveSources:
    def live(spec: str, symbols: list[str]) -> CcxtFeed:
        assert spec == "ccxt:binance"
        return ccxt_feed_from_spec(
            spec,
            symbols,
            timeframe="5m",
            poll_seconds=0.0,
            use_websocket=False,
            api_urls={"public": binance.url + "/api/v3", "private": binance.url + "/api/v3"},
            timeout_ms=10_000,
            clock=lambda: present.wall().timestamp(),
        )

    def exchange(name: str) -> Any:
        ex = make_exchange(name)
        point_at(ex, binance.url)
        ex.rateLimit = 1  # the local server needs no throttling
        return ex

    return LiveSources(live, DataStore(root), exchange, wall=present.wall)


@pytest.mark.asyncio
async def test_one_kernel_hands_over_to_ccxt_without_gap_or_duplicate(
    binance: FakeAPI, present: Present, tmp_path: Path
) -> None:
    src = sources(binance, present, tmp_path)
    start = present.start - timedelta(hours=3)
    history = StoredHistory(src.datasets, "binance", "5m", src.exchange("binance"))
    recorded = history.load(["BTC"], start - 20 * BAR)
    feed, kernel, agent = handover_kernel(src, history, recorded, "ccxt:binance", start, present)
    replay_times, live_times, bought, held = [], [], None, Decimal(0)
    brain, state = kernel.brains[agent.id], kernel.agents[agent.id].risk_state
    handover: datetime | None = None
    live_bars = 0
    while (tick := await feed.next_tick()) is not None:
        was_live = feed.clock.phase == "live"
        with kernel.unit():
            await kernel.step(tick)
            if bought is None:
                rec = kernel.place(agent.id, Decision(Action.BUY, "BTC", quantity=Decimal("0.1")))
                assert rec.status == "executed", rec.reason
                bought = rec
        assert kernel.audit() == []  # at every tick, on both sides of the hand-over
        if not was_live:
            assert feed.clock.now() == tick.time < present.wall()  # simulated time
            replay_times.append(tick.time)
            held = kernel.ledger.wallet(agent.id).quantity("BTC")
        else:
            if handover is None:
                handover = tick.time
                assert feed.clock.handed_over_at == tick.time
                assert kernel.ledger.wallet(agent.id).quantity("BTC") == held > 0
                assert (
                    kernel.brains[agent.id] is brain and kernel.agents[agent.id].risk_state is state
                )
            assert tick.snapshots["BTC"].price == price(tick.snapshots["BTC"].time)
            live_bars += len(tick.bars)
            live_times.append(tick.time)
    live = feed.live
    assert isinstance(live, CcxtFeed)
    await live.aclose()

    assert feed.top_ups >= 1, "the newest candles were fetched on approach"
    assert replay_times and len(live_times) >= 5 and live_bars >= 3
    assert handover is not None and handover > replay_times[-1]
    assert feed.gaps == [] and feed.duplicates == 0
    assert feed.parts["live"].bars == live_bars
    bars = kernel.history.view(kernel.now + BAR).bars("BTC")
    opens = [b.time for b in bars]
    assert opens[0] <= start - 20 * BAR + BAR
    assert all(b - a == BAR for a, b in pairwise(opens)), "no gap, no duplicate bar"
    assert opens[-1] >= handover, "closed candles of the live part joined the history"
    assert [b.close for b in bars] == [price(t) for t in opens]
    assert kernel.now is not None and kernel.now > present.start  # the live part's wall time

    sold = kernel.place(agent.id, Decision(Action.SELL, "BTC", quantity=held))
    assert sold.status == "executed", sold.reason
    assert kernel.audit() == []
    kernel.store.close()


@pytest.mark.asyncio
async def test_a_session_goes_live_on_ccxt_and_records_both_parts(
    binance: FakeAPI, present: Present, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'main.db'}")
    kernel = Kernel(
        store, ReplayFeed(_one_bar()), PaperBroker(), config=KernelConfig(persist_snapshots=False)
    )
    kernel.load()
    m = SessionManager(
        kernel,
        store,
        fee_bps=Decimal(10),
        slippage_bps=Decimal(0),
        live_sources=sources(binance, present, tmp_path / "datasets"),
    )
    body = {
        "name": "to binance",
        "symbols": ["BTC"],
        "agents": [{"name": "ruby", "brain": "rsi"}, {"name": "max", "brain": "sma_cross"}],
        "replay": {"dataset": "bn", "start": (present.start - timedelta(hours=3)).isoformat()},
        "then_live": {"source": "ccxt:binance", "duration": "15m"},
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
    assert window["source"] == "dataset:bn+live:ccxt:binance"
    assert replay["ticks"] > 30 and live["ticks"] >= 10 and live["bars"] >= 2
    assert window["gaps"] == [] and window["duplicates"] == 0
    handover = datetime.fromisoformat(window["handover_at"])
    assert datetime.fromisoformat(replay["end"]) < handover == datetime.fromisoformat(live["start"])
    assert datetime.fromisoformat(window["end"]) == handover + timedelta(minutes=15)
    final = m.summaries(started["id"])[-1]
    assert "Live part (ccxt:binance" in final["text"]
    kernel.stop()
    store.close()
