"""Crypto and equities in one kernel: a crypto agent on replayed Binance bars and an equity agent
on Yahoo (a local server answering in the chart API's shape). Across the NYSE close the crypto
agent keeps trading while the equity agent's orders are held until the next open."""

from __future__ import annotations

import asyncio
import copy
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import uvicorn
from fakeapi import FakeAPI, Reply, fixture

from phantomex.api.app import create_app
from phantomex.brains.base import BrainContext
from phantomex.brains.registry import STRATEGIES
from phantomex.brains.rules._common import RuleBrain, RuleParams, holding
from phantomex.broker.paper import PaperBroker
from phantomex.config import Settings
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Action, Decision, Instrument, Tick
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.market.yahoo import YahooFeed, yahoo_feed_from_settings
from phantomex.store.repo import Store

D = Decimal
SESSION_OPEN = datetime(2023, 4, 5, 13, 30, tzinfo=UTC)  # a Wednesday, 09:30 New York (EDT)
SESSION_CLOSE = datetime(2023, 4, 5, 20, 0, tzinfo=UTC)
START, END = datetime(2023, 4, 5, 19, 30, tzinfo=UTC), datetime(2023, 4, 5, 20, 30, tzinfo=UTC)


class FlipBrain(RuleBrain):
    """Test strategy: buys a fixed quantity when flat, sells it when holding."""

    kind: ClassVar[str] = "test_flip"
    title: ClassVar[str] = "Flip (test)"
    description: ClassVar[str] = "Buys when flat, sells when holding."

    class Params(RuleParams):
        quantity: Decimal = D(1)

    Params: ClassVar[type[RuleParams]]

    def __init__(self, params: Params) -> None:
        self.params = params

    async def decide(self, ctx: BrainContext) -> Decision:
        symbol = ctx.symbols[0]
        if holding(ctx, symbol) > 0:
            return Decision(Action.SELL, symbol, reasoning="flip: sell")
        return Decision(Action.BUY, symbol, quantity=self.params.quantity, reasoning="flip: buy")

    def describe(self) -> str:
        return "flip"


@dataclass
class SimClock:
    now: datetime = START


def chart_answer(stamps: list[int], closes: list[float], market_time: int) -> dict[str, Any]:
    """Yahoo's 1m chart answer for AAPL (the recorded answer's shape and meta) with these bars."""
    body = copy.deepcopy(fixture("yahoo/chart_AAPL_1m_weekend_empty.json"))
    result = body["chart"]["result"][0]
    result["timestamp"] = stamps
    result["indicators"]["quote"] = [
        {
            "open": closes,
            "high": [c + 0.05 for c in closes],
            "low": [c - 0.05 for c in closes],
            "close": closes,
            "volume": [1000] * len(closes),
        }
    ]
    result["meta"].update(regularMarketTime=market_time, regularMarketPrice=closes[-1])
    return body


def aapl_chart(now: datetime) -> dict[str, Any]:
    """The answer up to ``now``, with made-up prices from the session open; the bar in progress
    is included, like Yahoo."""
    end = min(now, SESSION_CLOSE)
    stamps: list[int] = []
    closes: list[float] = []
    t = SESSION_OPEN
    while t < end:
        stamps.append(int(t.timestamp()))
        closes.append(round(165 + 0.01 * len(closes), 2))
        t += timedelta(minutes=1)
    return chart_answer(stamps, closes, int(end.timestamp()))


class TwoSources:
    """A test-local merge of two feeds on the replay's clock (the production CompositeFeed
    lives in market/sources.py). Ticks start once ``go`` is set; ``done`` is set at the end."""

    def __init__(self, crypto: ReplayFeed, equity: YahooFeed, clock: SimClock) -> None:
        self.crypto, self.equity, self.clock = crypto, equity, clock
        self.go, self.done = threading.Event(), threading.Event()
        self.go.set()

    @property
    def instruments(self) -> dict[str, Instrument]:
        return {**self.crypto.instruments, **self.equity.instruments}

    def warmup(self) -> list[Tick]:
        return self.crypto.warmup()

    async def next_tick(self) -> Tick | None:
        await asyncio.to_thread(self.go.wait)
        tick = await self.crypto.next_tick()
        if tick is None:
            self.done.set()
            return None
        self.clock.now = tick.time
        stocks = await asyncio.to_thread(self.equity.poll)
        return Tick(tick.time, {**tick.snapshots, **stocks.snapshots}, {**tick.bars, **stocks.bars})

    def close(self) -> None:
        self.crypto.close()
        self.equity.close()


def two_sources(api: FakeAPI, clock: SimClock) -> TwoSources:
    """BTC replayed from the shipped Binance data, AAPL from Yahoo (the local server)."""
    btc = load_dataset("demo", ["BTC"])["BTC"]
    window = [b for b in btc if START - timedelta(minutes=5) <= b.time < END]
    crypto = ReplayFeed({"BTC": window}, speed=0, warmup_bars=5)
    equity = yahoo_feed_from_settings(
        {"tickers": ["AAPL:NASDAQ"], "base_url": api.url, "cache": False, "warmup_bars": 0},
        clock=lambda: clock.now,
    )
    return TwoSources(crypto, equity, clock)


RISK: dict[str, Any] = {
    "cooldown_seconds": 0,
    "stop_loss_pct": None,
    "take_profit_pct": None,
    "daily_loss_limit_pct": None,
}


@pytest.fixture
def yahoo() -> Iterator[tuple[FakeAPI, SimClock]]:
    clock = SimClock()
    with FakeAPI() as api:
        api.route("GET", "/v8/finance/chart/AAPL", lambda _req: Reply(body=aapl_chart(clock.now)))
        yield api, clock


@pytest.mark.asyncio
async def test_equity_agent_is_held_outside_the_session_while_crypto_trades(
    yahoo: tuple[FakeAPI, SimClock], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api, clock = yahoo
    monkeypatch.setitem(STRATEGIES, FlipBrain.kind, FlipBrain)
    feed = two_sources(api, clock)
    equity = feed.equity
    store = Store(f"sqlite:///{tmp_path / 'phantomex.db'}")
    kernel = Kernel(store, feed, PaperBroker(), config=KernelConfig(persist_snapshots=False))
    kernel.load()
    kernel.warm_up()
    risk = RiskProfile(**RISK)
    flip = {"brain": "test_flip", "risk": risk}
    coin = kernel.create_agent(
        AgentSpec(name="coin", params={"quantity": "0.01"}, symbols=["BTC"], **flip)
    )
    stock = kernel.create_agent(
        AgentSpec(name="stock", params={"quantity": "2"}, symbols=["AAPL"], **flip)
    )

    await asyncio.wait_for(kernel.run(), timeout=60)

    decisions = {
        agent.id: sorted(store.decisions(agent.id, limit=500), key=lambda r: r.time)
        for agent in (coin, stock)
    }
    before = [r for r in decisions[stock.id] if r.time < SESSION_CLOSE]
    after = [r for r in decisions[stock.id] if r.time >= SESSION_CLOSE]
    assert len(before) >= 25 and len(after) >= 25
    assert {r.status for r in before} == {"executed"}  # AAPL trades during the session
    assert {r.status for r in after} == {"held"}
    assert {r.reason for r in after} == {"market closed: next open 2023-04-06 13:30 UTC (XNAS)"}
    assert {r.status for r in decisions[coin.id]} == {"executed"}  # BTC trades around the clock
    assert any(r.time >= SESSION_CLOSE for r in decisions[coin.id])

    rows, _ = store.trades(limit=500)
    aapl = [r for r in rows if r["symbol"] == "AAPL"]
    assert aapl and all(r["time"] < SESSION_CLOSE for r in aapl)
    assert {r["quantity"] for r in aapl} == {D(2)}  # whole shares
    assert store.risk_events(stock.id, limit=500) == []  # a wait, not a risk rejection
    assert kernel.audit() == []  # both wallets rebuild exactly from their trades
    assert equity.health()[0].errors == 0

    # the kill switch cannot close the equity after hours either: the exit waits, and says why
    assert kernel.ledger.wallet(stock.id).quantity("AAPL") == 2  # bought at 19:59
    kernel.kill(stock.id, flatten=True)
    assert kernel.ledger.wallet(stock.id).quantity("AAPL") == 2
    (event,) = [e for e in store.risk_events(stock.id) if e["kind"] == "kill" and e["symbol"]]
    assert event["detail"] == (
        "cannot close AAPL now: market closed: next open 2023-04-06 13:30 UTC (XNAS); "
        "the exit waits"
    )
    assert kernel.agents[stock.id].risk_state.pending_exits == {"AAPL": ("kill", D(2))}


def test_server_runs_agents_on_two_sources(
    yahoo: tuple[FakeAPI, SimClock], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same over the real API: a uvicorn server whose kernel reads both sources."""
    api, clock = yahoo
    monkeypatch.setitem(STRATEGIES, FlipBrain.kind, FlipBrain)
    feed = two_sources(api, clock)
    feed.go.clear()  # the market waits until the agents exist
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    settings = Settings(data_dir=tmp_path, port=port, demo=False)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, feed), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if client.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            ids = {}
            for name, symbol, qty in (("coin", "BTC", "0.01"), ("stock", "AAPL", "2")):
                body = {
                    "name": name,
                    "brain": FlipBrain.kind,
                    "params": {"quantity": qty},
                    "symbols": [symbol],
                    "risk": RISK,
                }
                resp = client.post("/api/agents", json=body)
                assert resp.status_code in (200, 201), resp.text
                ids[name] = resp.json()["id"]
            feed.go.set()
            assert feed.done.wait(60), "the replay did not finish"

            def decisions(name: str) -> list[dict[str, Any]]:
                got = client.get(f"/api/agents/{ids[name]}/decisions", params={"limit": 500})
                return list(got.json())

            stock = decisions("stock")
            after = [d for d in stock if datetime.fromisoformat(d["time"]) >= SESSION_CLOSE]
            before = [d for d in stock if d not in after]
            assert before and {d["status"] for d in before} == {"executed"}
            assert len(after) >= 25 and {d["status"] for d in after} == {"held"}
            assert {d["reason"] for d in after} == {
                "market closed: next open 2023-04-06 13:30 UTC (XNAS)"
            }
            coin = decisions("coin")
            assert {d["status"] for d in coin} == {"executed"} and len(coin) > len(before)
            assert client.get("/api/audit").json()["ok"] is True
    finally:
        feed.go.set()  # never leave the feed's thread waiting
        server.should_exit = True
        thread.join(timeout=15)
