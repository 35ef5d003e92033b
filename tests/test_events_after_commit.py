"""Events leave the kernel only once their transaction is committed, and never after a rollback.

A follower (the WebSocket hub) told of a trade that a crash then undoes would have reported a
trade that never happened. Each check reads the database through its own sqlite3 connection at
the moment the event is delivered."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from phantomex.broker.paper import PaperBroker, PaperBrokerConfig
from phantomex.domain.agent import AgentSpec
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.bus import Event
from phantomex.kernel.driver import TickDriver
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.store.port import DuplicateEntry
from phantomex.store.repo import Store


def kernel_on(db: Path) -> Kernel:
    data = {s: bars[:400] for s, bars in load_dataset("demo", ["BTC", "ETH"]).items()}
    feed = ReplayFeed(data, speed=0, warmup_bars=30, loop=False)
    kernel = Kernel(Store(f"sqlite:///{db}"), feed, PaperBroker(), config=KernelConfig())
    kernel.load()
    kernel.warm_up()
    return kernel


#: trades at once: no cooldown, half the cash per buy
FAST = RiskProfile(cooldown_seconds=0, max_allocation_pct=Decimal(50))


def trades_told(kernel: Kernel, db: Path) -> tuple[list[tuple[str, bool]], sqlite3.Connection]:
    """Follow the kernel's trade events: each trade's key and whether its row was already
    stored when the event arrived (read through the returned connection of its own)."""
    reader = sqlite3.connect(db)
    seen: list[tuple[str, bool]] = []

    def follower(event: Event) -> None:
        key = event.data["trade"]["idempotency_key"]
        row = reader.execute("SELECT 1 FROM trades WHERE idempotency_key = ?", (key,))
        seen.append((key, row.fetchone() is not None))

    kernel.bus.subscribe(follower, types=("trade",))
    return seen, reader


@pytest.mark.asyncio
async def test_trade_events_follow_the_commit(tmp_path: Path) -> None:
    db = tmp_path / "phantomex.db"
    kernel = kernel_on(db)
    kernel.create_agent(
        AgentSpec(name="rsi", brain="rsi", params={"period": 5}, symbols=["BTC"], risk=FAST)
    )
    seen, reader = trades_told(kernel, db)
    await kernel.run()
    reader.close()
    kernel.store.close()
    assert seen, "no trade: the test proved nothing"
    assert all(committed for _, committed in seen), seen


@pytest.mark.asyncio
async def test_a_planned_replay_publishes_each_batch_after_its_commit(tmp_path: Path) -> None:
    """A backtest's driver (lean, event skipping) takes a batch of ticks in one unit: the
    trades of the batch are told once the batch is stored, never before."""
    db = tmp_path / "phantomex.db"
    bars = load_dataset("demo", ["BTC"])["BTC"][:1500]
    kernel = Kernel(
        Store(f"sqlite:///{db}"),
        ReplayFeed({"BTC": bars}, speed=0),
        PaperBroker(PaperBrokerConfig(fill_timing="next_open")),
        config=KernelConfig(lean=True, persist_snapshots=False),
    )
    kernel.load()
    spec = AgentSpec(
        name="sma", brain="sma_cross", params={"fast": 5, "slow": 20}, symbols=["BTC"], risk=FAST
    )
    kernel.create_agent(spec)
    seen, reader = trades_told(kernel, db)
    driver = TickDriver(kernel, batch=100, skipping=True)
    assert driver.plan is not None
    await driver.run()
    reader.close()
    kernel.store.close()
    assert kernel.ticks == len(bars)
    assert len(seen) >= 4, "too few trades: the test proved nothing"
    assert all(committed for _, committed in seen), seen


@pytest.mark.asyncio
async def test_a_batched_replay_publishes_each_batch_after_its_commit(tmp_path: Path) -> None:
    """A session's driver (every tick visited, a batch of ticks per store transaction, each
    tick in its own unit): the trades of a batch are told once the batch is stored."""
    db = tmp_path / "phantomex.db"
    kernel = kernel_on(db)
    kernel.create_agent(
        AgentSpec(name="rsi", brain="rsi", params={"period": 5}, symbols=["BTC"], risk=FAST)
    )
    seen, reader = trades_told(kernel, db)
    driver = TickDriver(kernel, batch=50)
    assert driver.plan is None
    await driver.run()
    reader.close()
    kernel.store.close()
    assert len(seen) >= 4, "too few trades: the test proved nothing"
    assert all(committed for _, committed in seen), seen


def test_a_rolled_back_unit_publishes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "phantomex.db"
    kernel = kernel_on(db)
    spec = AgentSpec(name="rsi", brain="rsi", symbols=["BTC"])
    agent = kernel.create_agent(spec)
    reader = sqlite3.connect(db)
    delivered: list[tuple[str, str]] = []

    def follower(event: Event) -> None:
        row = reader.execute("SELECT status FROM agents WHERE id = ?", (agent.id,)).fetchone()
        delivered.append((event.type, row[0]))

    kernel.bus.subscribe(follower)
    with pytest.raises(DuplicateEntry), kernel.unit():  # a pause, then a write that fails
        kernel.pause(agent.id)
        kernel.deposit(agent.id, Decimal(5), key=f"deposit:{agent.id}:initial")
    assert delivered == []
    kernel.resume(agent.id)
    kernel.pause(agent.id)  # committed: its event comes after the row is stored
    assert delivered[-1] == ("agent", "paused")
    reader.close()
    kernel.store.close()
