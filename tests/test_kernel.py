"""The kernel over replayed real prices: determinism, restarts, approvals, risk actions."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from phantomex.broker.paper import PaperBroker
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import (
    Action,
    AgentStatus,
    Bar,
    Decision,
    DecisionStatus,
    Mode,
    OrderType,
    Snapshot,
    Tick,
)
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel, KernelConfig, KernelError
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.service import Queries
from phantomex.store.repo import Store

BARS = 400


@pytest.fixture(scope="module")
def dataset() -> dict[str, list[Bar]]:
    data = load_dataset("demo", ["BTC", "ETH", "SOL"])
    return {s: bars[:BARS] for s, bars in data.items()}


def make_kernel(db: Path, data: dict[str, list[Bar]], **feed_kw: object) -> Kernel:
    feed = ReplayFeed(data, speed=0, warmup_bars=30, **feed_kw)  # type: ignore[arg-type]
    store = Store(f"sqlite:///{db}")
    kernel = Kernel(store, feed, PaperBroker(), config=KernelConfig(persist_snapshots=False))
    kernel.load()
    kernel.warm_up()
    return kernel


def specs() -> list[AgentSpec]:
    fast = RiskProfile(cooldown_seconds=0, max_allocation_pct=Decimal(50))
    return [
        AgentSpec(
            name="rsi", brain="rsi", params={"period": 14}, symbols=["BTC", "ETH"], risk=fast
        ),
        AgentSpec(
            name="mom", brain="momentum", params={"fast": 5, "slow": 20}, symbols=["SOL"], risk=fast
        ),
    ]


def trade_log(kernel: Kernel) -> list[tuple[object, ...]]:
    rows, _ = kernel.store.trades(limit=1000)
    return [
        (r["agent_name"], r["symbol"], r["side"], r["quantity"], r["price"], r["fee"], r["time"])
        for r in rows
    ]


async def run_to_end(kernel: Kernel) -> None:
    await asyncio.wait_for(kernel.run(), timeout=60)


@pytest.mark.asyncio
async def test_replay_is_deterministic_and_reconciles(tmp_path: Path, dataset: dict) -> None:
    logs = []
    for i in range(2):
        kernel = make_kernel(tmp_path / f"run{i}.db", dataset)
        for spec in specs():
            kernel.create_agent(spec)
        await run_to_end(kernel)
        logs.append(trade_log(kernel))
        assert kernel.audit() == []
        kernel.store.close()
    assert len(logs[0]) >= 4, "the strategies should trade on 400 real 1-minute bars"
    assert logs[0] == logs[1]


@pytest.mark.asyncio
async def test_restart_restores_wallets_and_does_not_replay_ticks(
    tmp_path: Path, dataset: dict
) -> None:
    db = tmp_path / "k.db"
    half = {s: b[: BARS // 2] for s, b in dataset.items()}
    kernel = make_kernel(db, half)
    for spec in specs():
        kernel.create_agent(spec)
    await run_to_end(kernel)
    before = {a: Queries(kernel).agent(a).model_dump(mode="json") for a in kernel.agents}
    trades_before = trade_log(kernel)
    clock = kernel.now
    kernel.store.close()

    again = make_kernel(db, dataset, start_after=clock)
    assert {a: again.ledger.wallet(a) for a in again.agents} == {
        a: kernel.ledger.wallet(a) for a in kernel.agents
    }
    for agent_id, view in before.items():
        assert (
            Queries(again).agent(agent_id).model_dump(mode="json")["wallet"]["cash"]
            == view["wallet"]["cash"]
        )
        assert again.agents[agent_id].last_decided_at == kernel.agents[agent_id].last_decided_at
    await run_to_end(again)
    after = trade_log(again)
    assert after[-len(trades_before) :] == trades_before  # history kept, newest first
    assert all(t[-1] > clock for t in after[: len(after) - len(trades_before)])
    assert again.audit() == []


def tick_at(time: datetime, prices: dict[str, str], age: timedelta = timedelta(0)) -> Tick:
    snaps = {s: Snapshot(s, time - age, Decimal(p)) for s, p in prices.items()}
    return Tick(time=time, snapshots=snaps)


@pytest.mark.asyncio
async def test_no_trade_on_stale_or_invalid_price(tmp_path: Path, dataset: dict) -> None:
    kernel = make_kernel(tmp_path / "s.db", dataset)
    agent = kernel.create_agent(
        AgentSpec(name="t", brain="rsi", symbols=["BTC"], risk=RiskProfile(cooldown_seconds=0))
    )
    assert kernel.now is not None
    t = kernel.now + timedelta(minutes=1)
    bad_ticks = (  # an invalid price is a wait for a valid one (the price guard holds BTC)
        (tick_at(t, {"BTC": "0"}), "held", "price 0 is not a positive finite price"),
        (
            tick_at(t + timedelta(minutes=1), {"BTC": "27000"}, age=timedelta(hours=1)),
            "rejected",
            "stale",
        ),
    )
    for tick, status, why in bad_ticks:
        await kernel.step(tick)
        rec = kernel.place(agent.id, Decision(Action.BUY, "BTC"))
        assert rec.status == status and why in rec.reason
        brain_rec = await kernel.trade_now(agent.id)
        assert brain_rec.status in ("held", "rejected")
    assert kernel.store.trades()[1] == 0
    assert kernel.ledger.wallet(agent.id).cash == Decimal(10_000)


@pytest.mark.asyncio
async def test_advisory_approval_rechecks_and_executes(tmp_path: Path, dataset: dict) -> None:
    kernel = make_kernel(tmp_path / "a.db", dataset)
    spec = AgentSpec(
        name="adv",
        brain="train_of_trade",
        params={"entry_drop_pct": 0.01},
        symbols=["BTC"],
        mode=Mode.ADVISORY,
        risk=RiskProfile(cooldown_seconds=0),
    )
    agent = kernel.create_agent(spec)
    pending = None
    for _ in range(200):
        tick = await kernel.feed.next_tick()
        assert tick is not None
        await kernel.step(tick)
        if kernel.pending():
            pending = kernel.pending()[0]
            break
    assert pending is not None, "train of trade with a 0.01% drop should ask for a buy"
    assert pending.agent_id == agent.id and pending.action == "buy"
    assert kernel.store.trades()[1] == 0  # nothing executes before approval
    rec = kernel.approve(pending.id)
    assert rec.status == DecisionStatus.EXECUTED.value
    assert kernel.store.trades()[1] == 1
    with pytest.raises(KernelError):
        kernel.approve(pending.id)  # not pending any more
    assert kernel.audit() == []


@pytest.mark.asyncio
async def test_kill_switch_stops_everything_and_flattens(tmp_path: Path, dataset: dict) -> None:
    kernel = make_kernel(tmp_path / "kill.db", dataset)
    agent = kernel.create_agent(
        AgentSpec(name="k", brain="rsi", symbols=["BTC"], risk=RiskProfile(cooldown_seconds=0))
    )
    await kernel.step(await kernel.feed.next_tick())  # type: ignore[arg-type]
    rec = kernel.place(agent.id, Decision(Action.BUY, "BTC"))
    assert rec.status == "executed"
    assert kernel.ledger.wallet(agent.id).quantity("BTC") > 0
    kernel.kill(flatten=True)
    assert kernel.killed
    assert kernel.agents[agent.id].status is AgentStatus.STOPPED
    assert kernel.ledger.wallet(agent.id).quantity("BTC") == 0
    with pytest.raises(KernelError):
        await kernel.trade_now(agent.id)
    kernel.release_kill()
    assert not kernel.killed
    assert kernel.audit() == []


@pytest.mark.asyncio
async def test_stop_loss_forced_exit_runs_before_decisions(tmp_path: Path, dataset: dict) -> None:
    kernel = make_kernel(tmp_path / "sl.db", dataset)
    agent = kernel.create_agent(
        AgentSpec(
            name="sl",
            brain="rsi",
            params={"oversold": 1, "overbought": 99},
            symbols=["BTC"],
            risk=RiskProfile(cooldown_seconds=0, stop_loss_pct=Decimal(2)),
        )
    )
    assert kernel.now is not None
    t0 = kernel.now + timedelta(minutes=1)
    await kernel.step(tick_at(t0, {"BTC": "30000"}))
    kernel.place(agent.id, Decision(Action.BUY, "BTC"))
    held = kernel.ledger.wallet(agent.id).quantity("BTC")
    assert held > 0
    await kernel.step(tick_at(t0 + timedelta(minutes=1), {"BTC": "29000"}))  # -3.3%
    assert kernel.ledger.wallet(agent.id).quantity("BTC") == 0
    events = kernel.store.risk_events(agent.id)
    assert any(e["kind"] == "stop_loss" for e in events)
    rows, _ = kernel.store.trades(agent.id)
    assert rows[0]["side"] == "sell" and rows[0]["quantity"] == held
    assert kernel.audit() == []


def test_agent_spec_rejects_bad_input() -> None:
    from pydantic import ValidationError

    for bad in (
        {"name": "", "brain": "rsi", "symbols": ["BTC"]},
        {"name": "x", "brain": "rsi", "symbols": []},
        {"name": "x", "brain": "rsi", "symbols": ["BTC"], "allowance": "-5"},
        {"name": "x", "brain": "rsi", "symbols": ["BTC"], "allowance": "NaN"},
        {"name": "x", "brain": "rsi", "symbols": ["BTC"], "mode": "yolo"},
        {"name": "x", "brain": "rsi", "symbols": ["BTC"], "surprise": 1},
    ):
        with pytest.raises(ValidationError):
            AgentSpec.model_validate(bad)


def test_unknown_symbol_and_duplicate_name_are_refused(tmp_path: Path, dataset: dict) -> None:
    kernel = make_kernel(tmp_path / "u.db", dataset)
    with pytest.raises(KernelError) as err:
        kernel.create_agent(AgentSpec(name="u", brain="rsi", symbols=["NOPE"]))
    assert err.value.field == "symbols"
    kernel.create_agent(AgentSpec(name="u", brain="rsi", symbols=["BTC"]))
    with pytest.raises(KernelError) as err:
        kernel.create_agent(AgentSpec(name="U", brain="rsi", symbols=["BTC"]))
    assert err.value.field == "name"
    assert len(kernel.store.load_agents()) == 1
    assert kernel.now is not None and kernel.now.tzinfo is UTC


class ExplodingBrain:
    kind = "exploding"

    async def decide(self, ctx: object) -> Decision:
        raise RuntimeError("boom")

    def describe(self) -> str:
        return "always fails"


@pytest.mark.asyncio
async def test_failing_brain_holds_and_puts_agent_in_error(tmp_path: Path, dataset: dict) -> None:
    kernel = make_kernel(tmp_path / "e.db", dataset)
    agent = kernel.create_agent(AgentSpec(name="e", brain="rsi", symbols=["BTC"]))
    kernel.brains[agent.id] = ExplodingBrain()
    await kernel.step(await kernel.feed.next_tick())  # type: ignore[arg-type]
    assert kernel.agents[agent.id].status is AgentStatus.ERROR
    rec = kernel.store.decisions(agent.id)[0]
    assert rec.status == "held" and "boom" in rec.reasoning
    ticks_before = kernel.ticks
    await kernel.step(await kernel.feed.next_tick())  # type: ignore[arg-type]
    assert kernel.ticks == ticks_before + 1
    assert len(kernel.store.decisions(agent.id)) == 1  # an agent in error no longer decides
    assert kernel.resume(agent.id).status is AgentStatus.RUNNING


@pytest.mark.asyncio
async def test_limit_buy_rests_until_the_price_crosses(tmp_path: Path, dataset: dict) -> None:
    kernel = make_kernel(tmp_path / "lim.db", dataset)
    agent = kernel.create_agent(
        AgentSpec(
            name="l",
            brain="rsi",
            params={"oversold": 1, "overbought": 99},
            symbols=["BTC"],
            risk=RiskProfile(cooldown_seconds=0),
        )
    )
    assert kernel.now is not None
    t0 = kernel.now + timedelta(minutes=1)
    await kernel.step(tick_at(t0, {"BTC": "30000"}))
    rec = kernel.place(
        agent.id,
        Decision(
            Action.BUY,
            "BTC",
            quantity=Decimal("0.05"),
            order_type=OrderType.LIMIT,
            limit_price=Decimal("29500"),
        ),
    )
    assert rec.status == "approved" and [o.id for o in kernel.open_orders()] == [rec.id]
    await kernel.step(tick_at(t0 + timedelta(minutes=1), {"BTC": "29800"}))
    assert kernel.store.trades()[1] == 0
    await kernel.step(tick_at(t0 + timedelta(minutes=2), {"BTC": "29400"}))
    rows, total = kernel.store.trades()
    assert total == 1 and rows[0]["price"] == Decimal("29400") and rows[0]["decision_id"] == rec.id
    assert kernel.open_orders() == []
    assert kernel.store.get_decision(rec.id).status == "executed"  # type: ignore[union-attr]
    assert kernel.ledger.wallet(agent.id).quantity("BTC") == Decimal("0.05")
    assert kernel.audit() == []


@pytest.mark.asyncio
async def test_restart_warms_up_history_before_the_restored_clock(
    tmp_path: Path, dataset: dict
) -> None:
    db = tmp_path / "w.db"
    kernel = make_kernel(db, dataset)
    kernel.create_agent(AgentSpec(name="w", brain="rsi", symbols=["BTC"]))
    for _ in range(50):
        await kernel.step(await kernel.feed.next_tick())  # type: ignore[arg-type]
    clock = kernel.now
    kernel.store.close()
    again = make_kernel(db, dataset, start_after=clock)
    assert again.now == clock
    bars = again.history.view(clock).bars("BTC")  # type: ignore[arg-type]
    assert len(bars) == 30 and bars[-1].time < clock  # type: ignore[operator]
    assert all(b.time < clock for b in bars)  # type: ignore[operator]


@pytest.mark.asyncio
async def test_lean_mode_trades_the_same_and_counts_holds(tmp_path: Path, dataset: dict) -> None:
    full = make_kernel(tmp_path / "full.db", dataset)
    lean_feed = ReplayFeed(dataset, speed=0, warmup_bars=30)
    lean = Kernel(
        Store(f"sqlite:///{tmp_path / 'lean.db'}"),
        lean_feed,
        PaperBroker(),
        config=KernelConfig(persist_snapshots=False, lean=True),
    )
    lean.load()
    lean.warm_up()
    for kernel in (full, lean):
        for spec in specs():
            kernel.create_agent(spec)
        await run_to_end(kernel)
        assert kernel.audit() == []
    assert trade_log(lean) == trade_log(full)
    stored = lean.store.decisions(limit=10_000)
    assert stored and all(r.action != "hold" for r in stored)
    full_holds = [r for r in full.store.decisions(limit=10_000) if r.action == "hold"]
    assert sum(lean.holds.values()) == len(full_holds)
    # flushed at the end of the run: the clock and each agent's last decision time
    assert lean.store.get_state("clock") == {"time": lean.now.isoformat()}
    saved = {a.id: a.last_decided_at for a in lean.store.load_agents()}
    assert saved == {a: lean.agents[a].last_decided_at for a in lean.agents}
    full.store.close()
    lean.store.close()


class WaitingBrain:
    """A brain that is not slow (it decides inline) but awaits before answering."""

    kind = "waiting"

    def __init__(self, seconds: float, *, fail: bool = False) -> None:
        self.seconds, self.fail = seconds, fail
        self.deadline_seconds = 0.2

    async def decide(self, ctx: object) -> Decision:
        await asyncio.sleep(self.seconds)
        if self.fail:
            raise RuntimeError("failed after waiting")
        return Decision.hold("waited")

    def describe(self) -> str:
        return "waits"


@pytest.mark.asyncio
async def test_an_inline_brain_may_wait_within_its_deadline(tmp_path: Path, dataset: dict) -> None:
    kernel = make_kernel(tmp_path / "w.db", dataset)
    ok = kernel.create_agent(AgentSpec(name="ok", brain="rsi", symbols=["BTC"]))
    late = kernel.create_agent(AgentSpec(name="late", brain="rsi", symbols=["BTC"]))
    bad = kernel.create_agent(AgentSpec(name="bad", brain="rsi", symbols=["BTC"]))
    kernel.brains[ok.id] = WaitingBrain(0.01)  # type: ignore[assignment]
    kernel.brains[late.id] = WaitingBrain(30)  # type: ignore[assignment]
    kernel.brains[bad.id] = WaitingBrain(0.01, fail=True)  # type: ignore[assignment]
    started = time.monotonic()
    with kernel.unit():
        await kernel.step(await kernel.feed.next_tick())  # type: ignore[arg-type]
    assert time.monotonic() - started < 10  # the late brain was cut off at its deadline
    [rec] = kernel.store.decisions(agent_id=ok.id)
    assert (rec.status, rec.reason) == ("held", "waited")
    [rec] = kernel.store.decisions(agent_id=late.id)
    assert (rec.status, rec.reason) == ("held", "timeout: no decision within 0.2s")
    assert rec.meta == {"timeout": True}
    assert kernel.agents[late.id].status is AgentStatus.RUNNING
    [rec] = kernel.store.decisions(agent_id=bad.id)
    assert rec.status == "held" and "failed after waiting" in rec.reason
    assert kernel.agents[bad.id].status is AgentStatus.ERROR
