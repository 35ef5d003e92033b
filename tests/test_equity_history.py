"""Equity history (``GET /api/agents/{id}/equity``, ``GET /api/equity``): rebuilt from the stored
trades, deposits and prices, every point equals the equity the live kernel had at that moment,
the last one the agent's current equity; deposits are funding, not profit."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from phantomex.api import equity_routes, errors
from phantomex.broker.paper import PaperBroker
from phantomex.domain.agent import AgentSpec
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.ledger.equity_history import sample_times
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.service import Queries, Service
from phantomex.store.repo import Store

DEPOSIT = Decimal("2500")
BARS = 300


class Run:
    """A kernel replaying ``BARS`` minutes on a real SQLite store, with the equity each agent
    had after every tick (and after the deposit) as the live kernel computed it."""

    def __init__(self, db: Path) -> None:
        data = {s: bars[:BARS] for s, bars in load_dataset("demo", ["BTC", "ETH"]).items()}
        feed = ReplayFeed(data, speed=0, warmup_bars=30, loop=False)
        self.kernel = Kernel(Store(f"sqlite:///{db}"), feed, PaperBroker(), config=KernelConfig())
        self.kernel.load()
        self.kernel.warm_up()
        self.seen: dict[str, list[tuple[datetime, Decimal]]] = {}
        self.trade_events: list[dict[str, Any]] = []
        self.kernel.bus.subscribe(
            lambda e: self.trade_events.append(e.data["trade"]) if e.type == "trade" else None
        )

    def record(self) -> None:
        k = self.kernel
        assert k.now is not None
        for agent_id in k.agents:
            equity = k.ledger.wallet(agent_id).equity(k.marks)
            self.seen.setdefault(agent_id, []).append((k.now, equity))

    async def ticks(self, n: int | None) -> None:
        k = self.kernel
        done = 0
        while n is None or done < n:
            tick = await k.feed.next_tick()
            if tick is None:
                return
            async with k.lock:
                with k.unit():
                    await k.step(tick)
            self.record()
            done += 1

    def live_equity(self, agent_id: str, at: datetime) -> Decimal:
        """The kernel's equity at the latest recorded moment at or before ``at``."""
        seen = self.seen[agent_id]
        i = bisect.bisect_right([t for t, _ in seen], at) - 1
        assert i >= 0, f"nothing recorded before {at}"
        return seen[i][1]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    import asyncio

    r = Run(tmp_path_factory.mktemp("equity") / "phantomex.db")
    fast = RiskProfile(cooldown_seconds=0, max_allocation_pct=Decimal(50))
    k = r.kernel

    async def drive() -> None:
        await r.ticks(1)
        k.create_agent(
            AgentSpec(
                name="trader", brain="rsi", params={"period": 5}, symbols=["BTC", "ETH"], risk=fast
            )
        )
        k.create_agent(AgentSpec(name="saver", brain="rsi", symbols=["BTC"], allowance=500))
        r.record()
        await r.ticks(120)
        k.deposit(next(a for a in k.agents.values() if a.name == "trader").id, DEPOSIT)
        r.record()
        await r.ticks(None)

    asyncio.run(drive())
    yield r
    k.store.close()


@pytest.fixture(scope="module")
def client(run: Run) -> Iterator[TestClient]:
    app = FastAPI()
    errors.install(app)
    app.include_router(equity_routes.router)
    app.state.service = Service.of(run.kernel)
    with TestClient(app) as c:
        yield c


def agent_id(run: Run, name: str) -> str:
    return next(a.id for a in run.kernel.agents.values() if a.name == name)


def test_every_point_equals_the_live_equity_and_the_last_is_the_current_one(
    run: Run, client: TestClient
) -> None:
    k = run.kernel
    trader = agent_id(run, "trader")
    assert k.store.count_trades(trader) > 0, "no trade: the test proved nothing"
    body = client.get(f"/api/agents/{trader}/equity").json()
    points = body["points"]
    assert 10 < len(points) <= 300 + 2 + 2  # the grid, its ends, the two deposits
    for p in points:
        at = datetime.fromisoformat(p["time"])
        assert Decimal(p["equity"]) == run.live_equity(trader, at), p
    view = Queries(k).agent(trader).model_dump(mode="json")
    last = points[-1]
    assert datetime.fromisoformat(last["time"]) == k.now
    assert last["equity"] == view["wallet"]["equity"]
    assert last["funding"] == view["wallet"]["funding"] == format(Decimal(10_000) + DEPOSIT, "f")
    first = points[0]
    assert (first["equity"], first["funding"]) == ("10000", "10000")


def test_a_deposit_is_funding_with_its_own_point(run: Run, client: TestClient) -> None:
    trader = agent_id(run, "trader")
    body = client.get(f"/api/agents/{trader}/equity").json()
    deposits = [d for d in body["deposits"] if not d["initial"]]
    assert [Decimal(d["amount"]) for d in deposits] == [DEPOSIT]
    at = deposits[0]["time"]
    (point,) = [p for p in body["points"] if p["time"] == at]
    assert Decimal(point["funding"]) == 10_000 + DEPOSIT
    before = [p for p in body["points"] if p["time"] < at][-1]
    assert Decimal(before["funding"]) == 10_000
    # the return on funding does not jump with the deposit (the equity does)
    ret = [Decimal(p["equity"]) / Decimal(p["funding"]) - 1 for p in (before, point)]
    assert abs(ret[1] - ret[0]) < Decimal("0.01")
    assert Decimal(point["equity"]) - Decimal(before["equity"]) > DEPOSIT / 2


def test_trade_events_carry_the_realized_pnl_the_store_records(run: Run) -> None:
    """The dashboard's trade log shows realized P&L for live fills as for stored ones."""
    rows, _ = run.kernel.store.trades(limit=1000)
    stored = {r["idempotency_key"]: r["realized_pnl"] for r in rows}
    sells = [t for t in run.trade_events if t["side"] == "sell"]
    assert sells, "no sell: the test proved nothing"
    for t in run.trade_events:
        want = stored[t["idempotency_key"]]
        assert t["realized_pnl"] == (None if want is None else format(want, "f")), t


def test_all_agents_at_once_and_a_window(run: Run, client: TestClient) -> None:
    k = run.kernel
    body = client.get("/api/equity", params={"points": 50}).json()
    by_name = {a["name"]: a for a in body["agents"]}
    assert set(by_name) == {"trader", "saver"}
    saver = by_name["saver"]
    assert (
        saver["points"][-1]["equity"]
        == Queries(k).agent(saver["agent_id"]).model_dump(mode="json")["wallet"]["equity"]
    )
    assert all(len(a["points"]) <= 50 + 2 + 2 for a in body["agents"])
    assert k.now is not None
    since = k.now - timedelta(minutes=30)
    window = client.get(
        f"/api/agents/{saver['agent_id']}/equity",
        params={"since": since.isoformat(), "until": k.now.isoformat(), "points": 10},
    ).json()
    times = [datetime.fromisoformat(p["time"]) for p in window["points"]]
    assert times[0] >= since and times[-1] == k.now


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"points": 1}, "points"),
        ({"points": 5000}, "points"),
        ({"points": "9223372036854775808"}, "points"),
        ({"since": "2023-04-01T00:00:00"}, "since"),  # no zone: ambiguous
        ({"since": "2023-04-02T00:00:00Z", "until": "2023-04-01T00:00:00Z"}, "since"),
    ],
)
def test_bad_parameters_are_a_4xx_naming_them(
    run: Run, client: TestClient, params: dict[str, object], field: str
) -> None:
    resp = client.get(f"/api/agents/{agent_id(run, 'saver')}/equity", params=params)
    assert resp.status_code in (400, 422), resp.text
    assert field in resp.text


def test_an_unknown_agent_is_a_404(client: TestClient) -> None:
    assert client.get("/api/agents/nope/equity").status_code == 404
    assert client.get("/api/equity", params={"agent_id": "nope"}).status_code == 404


def test_sample_times_are_shared_lattice_points() -> None:
    t0 = datetime(2023, 4, 1, 12, 0, 7, tzinfo=UTC)
    later = t0 + timedelta(minutes=3, seconds=5)
    end = t0 + timedelta(hours=2)
    a = sample_times(t0, end, 100)
    b = sample_times(later, end, 100)
    assert a[0] == t0 and a[-1] == end and len(a) <= 100 + 2
    assert set(b) - {later} <= set(a)  # about the same history: the same lookups
    deposit = t0 + timedelta(minutes=17, seconds=3)
    assert deposit in sample_times(t0, end, 100, [deposit, end + timedelta(1)])
    assert sample_times(end, t0, 100) == []
