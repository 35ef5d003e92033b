"""One absurd bar must not liquidate a position: bar files are validated when they are loaded, and
every price that reaches the kernel passes the price guard (phantomex.market.guard), which holds
trading on a symbol whose price jumps implausibly until the prices confirm a new level; forced
exits never execute at a price that failed validation or is suspect."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from conftest import serve
from hypothesis import given, settings
from hypothesis import strategies as st

from phantomex.brains.base import BrainContext
from phantomex.broker.paper import PaperBroker
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import (
    Action,
    AgentStatus,
    AssetClass,
    Bar,
    Decision,
    Instrument,
    Snapshot,
    Tick,
)
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.market.columns import BarColumns
from phantomex.market.loaders import load_dataset, read_ohlcv
from phantomex.market.replay import ReplayFeed, replay_from_files
from phantomex.research.backtest import run_backtest
from phantomex.research.spec import BacktestConfig, strategy_agent
from phantomex.service import Queries
from phantomex.store.repo import Store

D = Decimal
ABSURD = D("1E-30")
SOL = load_dataset("demo", ["SOL"])["SOL"][:200]  # real Binance 1-minute bars, about $20.9
HEADER = "timestamp,open,high,low,close,volume\n"
#: Every forced exit on: stop-loss 5 %, take-profit 10 %, drawdown 20 %, daily loss 5 %.
RISK = RiskProfile(cooldown_seconds=0, max_allocation_pct=D(100), max_position_pct=D(100))


class HoldBrain:
    """Never trades by itself: the tests place the orders."""

    kind: ClassVar[str] = "test_hold"

    async def decide(self, ctx: BrainContext) -> Decision:
        return Decision.hold("test: hold")

    def describe(self) -> str:
        return "hold"


class BuyOnceBrain(HoldBrain):
    """Buys 50 units of its first symbol once, then holds."""

    async def decide(self, ctx: BrainContext) -> Decision:
        if ctx.state.get("bought"):
            return Decision.hold("test: holding")
        ctx.state["bought"] = True
        return Decision(Action.BUY, ctx.symbols[0], quantity=D(50), reasoning="test: buy 50")


def csv_row(bar: Bar) -> str:
    return f"{bar.time.isoformat()},{bar.open},{bar.high},{bar.low},{bar.close},{bar.volume}"


def write_sol(path: Path, bars: list[Bar], absurd_at: int | None = None) -> Path:
    """The SOL bars as a CSV replay file; the bar at ``absurd_at`` is an OHLC-consistent 1E-30."""
    rows = []
    for i, bar in enumerate(bars):
        if i == absurd_at:
            bar = Bar("SOL", bar.time, ABSURD, ABSURD, ABSURD, ABSURD, bar.volume)
        rows.append(csv_row(bar))
    path.write_text(HEADER + "\n".join(rows) + "\n")
    return path


def new_kernel(tmp_path: Path, feed: ReplayFeed, config: KernelConfig | None = None) -> Kernel:
    store = Store(f"sqlite:///{tmp_path / 'guard.db'}")
    kernel = Kernel(
        store, feed, PaperBroker(), config=config or KernelConfig(persist_snapshots=False)
    )
    kernel.load()
    kernel.warm_up()
    return kernel


def holder(kernel: Kernel, allowance: Decimal = D(2000)) -> str:
    """An agent holding 50 SOL (about $1,045 of its $2,000), every forced exit on."""
    agent = kernel.create_agent(
        AgentSpec(name="holder", brain="rsi", symbols=["SOL"], allowance=allowance, risk=RISK)
    )
    kernel.brains[agent.id] = HoldBrain()
    rec = kernel.place(agent.id, Decision(Action.BUY, "SOL", quantity=D(50)))
    assert rec.status == "executed", rec.reason
    return agent.id


def sol_tick(kernel: Kernel, price: str, minutes: int = 1) -> Tick:
    """A tick ``minutes`` after the kernel's clock with a one-price SOL bar."""
    assert kernel.now is not None
    when = kernel.now + timedelta(minutes=minutes)
    p = D(price)
    bar = Bar("SOL", when - timedelta(minutes=1), p, p, p, p, D(1))
    return Tick(when, {"SOL": Snapshot("SOL", when, p)}, {"SOL": bar})


def kinds(kernel: Kernel) -> list[str]:
    return [e["kind"] for e in reversed(kernel.store.risk_events(limit=1000))]


# ----------------------------------------------------------------------------- the case


@pytest.mark.asyncio
async def test_one_absurd_bar_in_a_replay_file_does_not_liquidate(tmp_path: Path) -> None:
    path = write_sol(tmp_path / "SOL_1m.csv", SOL, absurd_at=120)
    kernel = new_kernel(tmp_path, replay_from_files({"SOL": path}, speed=0, warmup_bars=30))
    agent_id = holder(kernel)

    await asyncio.wait_for(kernel.run(), timeout=60)

    rows, _ = kernel.store.trades(limit=100)
    assert [(r["side"], r["quantity"]) for r in rows] == [("buy", D(50))]  # no sell at 1E-30
    assert kernel.ledger.wallet(agent_id).quantity("SOL") == D(50)
    assert kernel.agents[agent_id].status is AgentStatus.RUNNING  # not stopped by a drawdown
    assert "drawdown" not in kinds(kernel) and "stop_loss" not in kinds(kernel)
    assert kinds(kernel).count("price_suspect") == 1
    assert kinds(kernel).count("price_restored") == 1
    assert all(bar.close > 1 for bar in kernel.history.view(kernel.now).bars("SOL"))
    assert kernel.audit() == []


def test_a_backtest_over_an_absurd_bar_does_not_sell_at_it(tmp_path: Path) -> None:
    data = {"SOL": read_ohlcv(write_sol(tmp_path / "SOL.csv", SOL, absurd_at=120))[0]}
    spec = strategy_agent(
        "rsi",
        symbols=["SOL"],
        name="buyer",
        cash=D(2000),
        risk={"max_drawdown_pct": 20, "stop_loss_pct": 5},
    )
    result = run_backtest(
        BacktestConfig(data=data, agents=[spec]), brains={"buyer": BuyOnceBrain()}
    )
    (agent,) = result.agents
    assert [(t.side, t.quantity) for t in agent.trades] == [("buy", D(50))]
    assert agent.status == "running"
    assert min(agent.equity) > D(1500)  # the position was never marked at 1E-30


# ----------------------------------------------------------------------------- load time


def test_a_close_of_1e400_or_outside_low_high_is_refused_at_load(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    good = [csv_row(b) for b in SOL[:4]]
    t = SOL[4].time
    bad = [
        f"{(t + timedelta(minutes=0)).isoformat()},20.9,20.95,20.85,1E+400,5",
        f"{(t + timedelta(minutes=1)).isoformat()},20.9,20.95,20.85,1E-30,5",
        f"{(t + timedelta(minutes=2)).isoformat()},20.8,20.95,20.85,20.9,5",
        f"{(t + timedelta(minutes=3)).isoformat()},2E+12,3E+12,1E+12,2E+12,5",
    ]
    path = tmp_path / "SOL_1m.csv"
    path.write_text(HEADER + "\n".join([*good, *bad]) + "\n")
    bars, report = read_ohlcv(path)
    assert [b.close for b in bars] == [b.close for b in SOL[:4]]
    assert report.skipped == 4
    assert report.problems == (
        "line 6: close 1E+400 is not below the price ceiling 1E+12",
        "line 7: close 1E-30 is outside [low 20.85, high 20.95]",
        "line 8: open 20.8 is outside [low 20.85, high 20.95]",
        "line 9: open 2E+12 is not below the price ceiling 1E+12",
    )
    with caplog.at_level(logging.WARNING):
        feed = replay_from_files({"SOL": path}, speed=0)
    assert feed.bar_count == 4  # the replay never sees those rows
    assert f"{path}: skipped 4 bad row(s)" in caplog.text
    assert "line 7: close 1E-30 is outside [low 20.85, high 20.95]" in caplog.text
    json_path = tmp_path / "SOL_1m.json"
    ms = int(t.timestamp() * 1000)
    json_path.write_text(json.dumps([[ms, "20.9", "20.95", "20.85", "1E+400", "5"]]))
    with pytest.raises(ValueError, match=r"row 1: close 1E\+400 is not below the price ceiling"):
        read_ohlcv(json_path)
    _, capped = read_ohlcv(path, max_price=D("21.06"))  # the ceiling is configurable
    assert capped.rows_loaded == 1
    assert capped.problems[0] == "line 3: high 21.08 is not below the price ceiling 21.06"


# ----------------------------------------------------------------------------- the guard


@pytest.mark.asyncio
async def test_a_jump_that_persists_is_accepted_after_confirmation(tmp_path: Path) -> None:
    feed = ReplayFeed({"SOL": SOL[:40]}, speed=0, warmup_bars=40)
    kernel = new_kernel(tmp_path, feed)
    agent_id = holder(kernel)
    before = kernel.marks["SOL"]

    await kernel.step(sol_tick(kernel, "1.5"))  # a crash of 93 %: 14 times below
    assert kernel.marks["SOL"] == before  # equity, drawdown and stops never see the suspect price
    (row,) = [p.model_dump(mode="json") for p in Queries(kernel).prices()]
    assert row["suspect"] is True and row["price"] == str(before)
    assert row["suspect_detail"]["price"] == "1.5"
    manual = kernel.place(agent_id, Decision(Action.SELL, "SOL", quantity=D(1)))
    assert manual.status == "held"
    assert manual.reason.startswith("SOL price suspect: price 1.5 is 10 or more times below")
    await kernel.step(sol_tick(kernel, "1.52"))
    assert kernel.ledger.wallet(agent_id).quantity("SOL") == D(50)  # the stop-loss waits

    await kernel.step(sol_tick(kernel, "1.49"))  # the third price at the new level
    assert kernel.marks["SOL"] == D("1.49")
    assert Queries(kernel).prices()[0].suspect is False
    assert kinds(kernel)[-3:-1] == ["price_suspect", "price_confirmed"]
    assert kinds(kernel)[-1] == "drawdown"  # the exits act on the confirmed price
    rows, _ = kernel.store.trades(limit=10)
    assert rows[0]["side"] == "sell" and rows[0]["price"] == D("1.49")
    closes = [b.close for b in kernel.history.view(kernel.now + timedelta(1)).bars("SOL")]
    assert closes[-3:] == [D("1.5"), D("1.52"), D("1.49")]  # withheld bars joined the history


@pytest.mark.asyncio
async def test_a_forced_exit_waits_for_a_trusted_price(tmp_path: Path) -> None:
    kernel = new_kernel(tmp_path, ReplayFeed({"SOL": SOL[:40]}, speed=0, warmup_bars=40))
    agent_id = holder(kernel)
    await kernel.step(sol_tick(kernel, "250"))  # 12 times above: suspect
    kernel.kill(agent_id, flatten=True)
    assert kernel.ledger.wallet(agent_id).quantity("SOL") == D(50)
    (event,) = [
        e for e in kernel.store.risk_events(agent_id) if e["kind"] == "kill" and e["symbol"]
    ]
    assert event["detail"].startswith("cannot close SOL now: SOL price suspect: price 250 is 10")
    assert event["detail"].endswith("; the exit waits")

    await kernel.step(sol_tick(kernel, "251"))  # still suspect: the exit still waits
    assert kernel.ledger.wallet(agent_id).quantity("SOL") == D(50)
    await kernel.step(sol_tick(kernel, "20.95"))  # a plausible price: the blip is over
    assert kernel.ledger.wallet(agent_id).quantity("SOL") == 0
    rows, _ = kernel.store.trades(limit=10)
    assert (rows[0]["side"], rows[0]["price"]) == ("sell", D("20.95"))
    assert kernel.agents[agent_id].risk_state.pending_exits == {}
    assert kernel.agents[agent_id].status is AgentStatus.STOPPED
    assert kernel.audit() == []


@pytest.mark.asyncio
async def test_the_guard_is_configurable_and_can_be_off(tmp_path: Path) -> None:
    from phantomex.config import Settings
    from phantomex.market.guard import PriceGuardConfig

    off = KernelConfig(persist_snapshots=False, price_guard=PriceGuardConfig(enabled=False))
    kernel = new_kernel(tmp_path, ReplayFeed({"SOL": SOL[:40]}, speed=0, warmup_bars=40), off)
    await kernel.step(sol_tick(kernel, "1E-30"))
    assert kernel.marks["SOL"] == ABSURD  # off: prices are taken as they come
    assert kernel.guard.suspects() == {}

    tight = PriceGuardConfig(max_jump={AssetClass.CRYPTO: D(2)}, confirmations=2)
    config = KernelConfig(persist_snapshots=False, price_guard=tight)
    (tmp_path / "tight").mkdir()
    feed = ReplayFeed({"SOL": SOL[:40]}, speed=0, warmup_bars=40)
    kernel = new_kernel(tmp_path / "tight", feed, config)
    await kernel.step(sol_tick(kernel, "10.4"))  # halved: suspect with a factor of 2
    assert set(kernel.guard.suspects()) == {"SOL"}
    await kernel.step(sol_tick(kernel, "10.3"))  # two prices confirm
    assert kernel.guard.suspects() == {} and kernel.marks["SOL"] == D("10.3")

    configured = Settings(price_guard={"max_jump": {"crypto": "5"}, "confirmations": 4})
    assert configured.price_guard.max_jump == {AssetClass.CRYPTO: D(5)}
    assert configured.price_guard.confirmations == 4
    for bad in ({"max_jump": {"crypto": "1"}}, {"confirmations": 1}, {"max_price": "1e13"}):
        with pytest.raises(ValueError):
            PriceGuardConfig.model_validate(bad)


def test_the_guard_screens_every_source_the_same_way() -> None:
    from phantomex.market.guard import PriceGuard

    guard = PriceGuard()
    t0 = datetime(2023, 4, 1, tzinfo=UTC)
    instruments = {"X": Instrument("X"), "YES": Instrument("YES", AssetClass.PREDICTION)}

    def tick(minute: int, **prices: str) -> Tick:
        when = t0 + timedelta(minutes=minute)
        return Tick(when, {s: Snapshot(s, when, D(p)) for s, p in prices.items()})

    screened = [
        guard.screen(tick(i, X=p), lambda: instruments)
        for i, p in enumerate(["100", "0.001", "NaN", "101"])
    ]
    assert [bool(s.tick.snapshots) for s in screened] == [True, False, False, True]
    events = [e.kind for s in screened for e in s.events]
    assert events == ["price_suspect", "price_restored"]
    repeat = tick(9, X="5")  # a suspect snapshot polled again does not confirm itself
    for _ in range(3):
        guard.screen(repeat, lambda: instruments)
    assert guard.suspects()["X"].agreeing == 1
    # prediction markets: no jump rule (0.03 -> 0.30 is news), but a price above 1 is invalid
    assert guard.screen(tick(20, YES="0.03"), lambda: instruments).tick.snapshots
    assert guard.screen(tick(21, YES="0.30"), lambda: instruments).tick.snapshots
    assert not guard.screen(tick(22, YES="1.5"), lambda: instruments).tick.snapshots
    assert "the most a share here pays" in guard.suspects()["YES"].reason


def test_the_guard_never_fires_on_the_shipped_data() -> None:
    from phantomex.market.guard import PriceGuard

    data = load_dataset("demo")
    assert PriceGuard().quiet(data, {s: Instrument(s) for s in data})
    lean = KernelConfig(lean=True)
    kernel = Kernel(Store("sqlite://"), ReplayFeed(data, speed=0), PaperBroker(), config=lean)
    assert kernel.plan_decisions() is not None  # event skipping stays on for clean data
    absurd = Bar("SOL", SOL[9].time, ABSURD, ABSURD, ABSURD, ABSURD, D(1))
    feed = ReplayFeed({"SOL": [*SOL[:9], absurd, *SOL[10:]]}, speed=0)
    kernel = Kernel(Store("sqlite://"), feed, PaperBroker(), config=lean)
    assert kernel.plan_decisions() is None  # the guard holds a symbol: every tick is visited


# ----------------------------------------------------------------------------- visible in the API


def test_a_suspect_symbol_is_flagged_in_the_api(tmp_path: Path) -> None:
    """A real server replays a file whose last bar is absurd (the replay then ends, so the
    symbol stays suspect): /api/sources, /api/market/prices and /api/risk/events show it."""
    path = write_sol(tmp_path / "SOL_1m.csv", SOL[:90], absurd_at=89)
    env = {
        "PHANTOMEX_REPLAY_FILES": json.dumps([str(path)]),
        "PHANTOMEX_REPLAY_LOOP": "false",
        "PHANTOMEX_DEMO": "false",
    }
    with serve(tmp_path / "data", **env) as server:
        deadline = time.monotonic() + 60
        flag: dict = {}
        while time.monotonic() < deadline and not flag.get("suspect"):
            (source,) = server.get("/api/sources")["sources"]
            flag = source["prices"]["SOL"]
            time.sleep(0.2)
        assert flag["suspect"] is True, flag
        assert flag["price"] == str(SOL[88].close)  # the last accepted price
        assert flag["suspect_detail"]["price"] == "1E-30"
        (price,) = server.get("/api/market/prices")
        assert price["suspect"] is True and price["price"] == str(SOL[88].close)
        events = httpx.get(f"{server.url}/api/risk/events", timeout=30).json()
        assert any(e["kind"] == "price_suspect" and e["symbol"] == "SOL" for e in events)
        code, out, err = server.cli("prices")  # the CLI says trading is held, and why
        assert code == 0, err
        assert "held:" in out and "confirmations" in out, out


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.sampled_from(["1", "1.01", "0.5", "2.6", "9.99", "10", "10.01", "0.1", "0.1001"]),
        min_size=1,
        max_size=30,
    ),
    gap=st.sampled_from(["1", "0.999", "1.001", "10", "0.1"]),
)
def test_quiet_agrees_with_screening_bar_by_bar(steps: list[str], gap: str) -> None:
    """A backtest skips ticks only when the guard would accept every bar: the fast check
    decides exactly as screening does, also at the jump threshold."""
    from phantomex.market.guard import PriceGuard

    t0 = datetime(2023, 4, 1, tzinfo=UTC)
    instruments = {"X": Instrument("X")}
    bars, close = [], D("21.07")
    for i, step in enumerate(steps):
        opening = close * D(gap)  # the open may gap away from the previous close
        close = close * D(step)
        low, high = min(opening, close), max(opening, close)
        bars.append(Bar("X", t0 + timedelta(minutes=i), opening, high, low, close, D(1)))
    guard = PriceGuard()
    events = []
    for bar in bars:
        when = bar.time + timedelta(minutes=1)
        tick = Tick(when, {"X": Snapshot("X", when, bar.close)}, {"X": bar})
        events += guard.screen(tick, lambda: instruments).events
    assert PriceGuard().quiet({"X": bars}, instruments) == (events == [])
    columns = BarColumns.from_bars("X", bars)  # decided on the floats, exactly near a bound
    assert PriceGuard().quiet({"X": columns}, instruments) == (events == [])


@pytest.mark.parametrize(
    ("field", "value", "accepted"),
    [
        (None, None, True),
        ("low", "0", False),
        ("low", "21.08", False),  # above the open
        ("high", "21.06", False),  # below the close
        ("close", "NaN", False),
        ("volume", "NaN", False),
        ("volume", "-1", False),
        ("volume", "0", True),
        ("open", "21.070", True),  # the low's value in other text
        ("high", "1E+20", False),  # at the price ceiling
        ("close", "2.1071", True),  # just inside the jump rule's tenth of the previous close
        ("close", "2.107", False),  # a tenth: a jump
    ],
)
def test_quiet_on_columns_judges_every_bar_as_on_a_list(
    field: str | None, value: str | None, accepted: bool
) -> None:
    """The price guard's check of bars as columns (floats where they decide, exact elsewhere)
    gives the list's answer on invalid candles and at the jump threshold."""
    from phantomex.market.guard import PriceGuard

    t0 = datetime(2023, 4, 1, tzinfo=UTC)
    p = D("21.07")
    bars = [Bar("X", t0 + timedelta(minutes=i), p, p, p, p, D(1)) for i in range(5)]
    if field is not None:
        b = bars[2]
        raw = {k: getattr(b, k) for k in ("open", "high", "low", "close", "volume")}
        raw[field] = D(value)
        if field == "close" and raw["close"].is_finite():  # keep the candle valid
            raw["low"] = min(raw["low"], raw["close"])
            bars[3] = Bar("X", bars[3].time, *(raw["close"],) * 4, D(1))
            bars[4] = Bar("X", bars[4].time, *(raw["close"],) * 4, D(1))
        bars[2] = Bar("X", b.time, **raw)  # type: ignore[arg-type]
    instruments = {"X": Instrument("X")}
    columns = BarColumns.from_bars("X", bars)
    assert PriceGuard().quiet({"X": bars}, instruments) is accepted
    assert PriceGuard().quiet({"X": columns}, instruments) is accepted
