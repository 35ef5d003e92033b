"""Garbage from a feed never reaches a wallet: hypothesis drives the real kernel (real SQLite,
rule agents and manual orders) with ticks holding NaN, infinite, negative, zero, huge and tiny
prices, missing symbols and bars, and out-of-order timestamps."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phantomex.broker.paper import PaperBroker
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Action, Bar, Decision, Instrument, Snapshot, Tick
from phantomex.domain.money import is_valid_price
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel, KernelConfig, KernelError
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.store.repo import Store

SYMBOLS = ["BTC", "ETH"]
DATA = {s: bars[:80] for s, bars in load_dataset("demo", SYMBOLS).items()}
GARBAGE = [
    Decimal("NaN"),
    Decimal("sNaN"),
    Decimal("Infinity"),
    Decimal("-Infinity"),
    Decimal(-1),
    Decimal(0),
    Decimal("1e30"),
    Decimal("1e-30"),
]


class ScriptedFeed:
    """The demo's warm-up, then the given ticks (the MarketFeed port)."""

    def __init__(self, ticks: list[Tick]) -> None:
        self._replay = ReplayFeed(DATA, speed=0, warmup_bars=60)
        self._ticks = list(ticks)

    @property
    def instruments(self) -> dict[str, Instrument]:
        return self._replay.instruments

    def warmup(self) -> list[Tick]:
        return self._replay.warmup()

    async def next_tick(self) -> Tick | None:
        return self._ticks.pop(0) if self._ticks else None

    def close(self) -> None:
        self._ticks.clear()


prices = st.one_of(
    st.sampled_from(GARBAGE),
    st.decimals(min_value=Decimal(1), max_value=Decimal(100_000), places=2),
)


@st.composite
def ticks(draw: st.DrawFn) -> list[Tick]:
    start = DATA["BTC"][60].time
    out = []
    for _ in range(draw(st.integers(1, 12))):
        when = start + timedelta(minutes=draw(st.integers(-30, 90)))  # may go back in time
        snapshots, bars = {}, {}
        for sym in draw(st.lists(st.sampled_from(SYMBOLS), unique=True)):  # missing symbols
            price = draw(prices)
            snapshots[sym] = Snapshot(sym, when, price, draw(st.one_of(st.none(), prices)))
            if draw(st.booleans()):  # a bar may be missing, or as broken as the price
                low, high = draw(prices), draw(prices)
                bars[sym] = Bar(sym, when, price, high, low, price, draw(prices))
        out.append(Tick(when, snapshots, bars))
    return out


def _check_wallets(kernel: Kernel) -> None:
    rows, _ = kernel.store.trades(limit=1000)
    for row in rows:
        assert is_valid_price(row["price"]) and row["price"] < Decimal("1e12"), row
        assert row["quantity"].is_finite() and row["quantity"] > 0, row
        assert row["fee"].is_finite() and row["fee"] >= 0, row
    for agent_id in kernel.agents:
        wallet = kernel.ledger.wallet(agent_id)
        assert wallet.cash.is_finite() and wallet.cash >= 0
        for position in wallet.positions.values():
            assert position.quantity.is_finite() and position.cost.is_finite()
    assert kernel.audit() == []


async def _drive(db: Path, script: list[Tick], orders: list[str]) -> None:
    store = Store(f"sqlite:///{db}")
    feed = ScriptedFeed(script)
    kernel = Kernel(store, feed, PaperBroker(), config=KernelConfig(persist_snapshots=False))
    kernel.load()
    kernel.warm_up()
    fast = RiskProfile(cooldown_seconds=0, max_allocation_pct=Decimal(50))
    agent = kernel.create_agent(
        AgentSpec(name="rsi", brain="rsi", symbols=SYMBOLS, interval_seconds=60, risk=fast)
    )
    kernel.create_agent(
        AgentSpec(
            name="mom", brain="momentum", params={"fast": 3, "slow": 8}, symbols=SYMBOLS, risk=fast
        )
    )
    await asyncio.wait_for(kernel.run(), timeout=60)
    for i, action in enumerate(orders):
        sym = SYMBOLS[i % len(SYMBOLS)]
        decision = Decision(Action(action), sym, notional=Decimal(500), reasoning="garbage test")
        with contextlib.suppress(KernelError):  # no valid price: refused, which is the point
            kernel.place(agent.id, decision)
    _check_wallets(kernel)
    store.close()


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(script=ticks(), orders=st.lists(st.sampled_from(["buy", "sell"]), max_size=4))
def test_garbage_ticks_never_reach_a_wallet(script: list[Tick], orders: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(_drive(Path(tmp) / "garbage.db", script, orders))
