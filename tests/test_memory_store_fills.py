"""The in-memory store's fills of an agent (what a backtest's trade records are made of) are
the trades :meth:`Kernel.trades` lists, in the same order, for each of two agents."""

from __future__ import annotations

from decimal import Decimal

import pytest

from phantomex.broker.paper import PaperBroker
from phantomex.domain.agent import AgentSpec
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.store.memory import MemoryStore


@pytest.mark.asyncio
async def test_fills_are_the_kernels_trades_in_order() -> None:
    data = {s: bars[:600] for s, bars in load_dataset("demo", ["BTC", "ETH"]).items()}
    store = MemoryStore()
    kernel = Kernel(store, ReplayFeed(data, speed=0), PaperBroker(), config=KernelConfig())
    kernel.load()
    fast = RiskProfile(cooldown_seconds=0, max_allocation_pct=Decimal(50))
    ids = [
        kernel.create_agent(
            AgentSpec(name=name, brain="rsi", params={"period": 5}, symbols=symbols, risk=fast)
        ).id
        for name, symbols in (("one", ["BTC"]), ("two", ["BTC", "ETH"]))
    ]
    await kernel.run()
    for agent_id in ids:
        rows = kernel.trades(agent_id)
        assert len(rows) > 2, "too few trades: the test proved nothing"
        fills = store.fills(agent_id)
        assert [(f.time, f.side.value, f.symbol, f.quantity, f.price, f.fee) for f in fills] == [
            (r["time"], r["side"], r["symbol"], r["quantity"], r["price"], r["fee"]) for r in rows
        ]
