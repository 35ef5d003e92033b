"""The exact kernel's decision path, made cheaper without changing what it computes: the
brain context's buy limits computed when read, the rule brains' window check and single-symbol
choice, and the SMA that divides only for the values it returns."""

from __future__ import annotations

import hashlib
import math
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phantomex.brains.base import LazyValues
from phantomex.brains.indicators import sma
from phantomex.brains.rules._common import Signal, _all_positive_finite, choose
from phantomex.brains.rules.momentum import sma_last_two
from phantomex.broker.paper import PaperBroker
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Action, Decision, OrderType
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.store.repo import Store

# -- the lazy mapping ---------------------------------------------------------------------------


def test_lazy_values_compute_each_value_once_and_only_when_read() -> None:
    calls: list[str] = []

    def compute(key: str) -> int:
        calls.append(key)
        return len(key)

    values = LazyValues(["BTC", "DOGE", "BTC"], compute)
    assert list(values) == ["BTC", "DOGE"] and len(values) == 2
    assert "DOGE" in values and "ETH" not in values and calls == []
    assert values.get("ETH") is None and values.get("ETH", -1) == -1 and calls == []
    assert values.get("BTC") == 3 and values.get("BTC", -1) == 3 and calls == ["BTC"]
    assert values["DOGE"] == 4 and values["DOGE"] == 4 and calls == ["BTC", "DOGE"]
    assert values == {"BTC": 3, "DOGE": 4} and calls == ["BTC", "DOGE"]
    with pytest.raises(KeyError):
        values["ETH"]
    values["ETH"] = 0  # a person's (or a test's) override
    del values["BTC"]
    assert dict(values) == {"DOGE": 4, "ETH": 0} and calls == ["BTC", "DOGE"]
    assert repr(values) == "{'DOGE': 4, 'ETH': 0}"


# -- the kernel's context -----------------------------------------------------------------------


def _kernel(db: Path, *, lean: bool = False) -> Kernel:
    data = {s: bars[:120] for s, bars in load_dataset("demo", ["BTC", "ETH", "SOL"]).items()}
    data["SOL"] = data["SOL"][100:]  # no SOL price before its 100th bar
    feed = ReplayFeed(data, speed=0, warmup_bars=30)
    config = KernelConfig(persist_snapshots=False, lean=lean)
    kernel = Kernel(Store(f"sqlite:///{db}"), feed, PaperBroker(), config=config)
    kernel.load()
    kernel.warm_up()
    return kernel


@pytest.mark.asyncio
async def test_a_contexts_buy_limits_are_the_risk_engines_at_the_marks_of_its_time(
    tmp_path: Path,
) -> None:
    kernel = _kernel(tmp_path / "k.db")
    risk = RiskProfile(max_allocation_pct=Decimal(30), max_position_pct=Decimal(40))
    agent = kernel.create_agent(
        AgentSpec(name="m", brain="rsi", symbols=["ETH", "BTC", "SOL"], risk=risk)
    )
    for _ in range(3):
        await kernel.step(await kernel.feed.next_tick())  # type: ignore[arg-type]
    kernel.place(agent.id, Decision(Action.BUY, "BTC", notional=Decimal(2000)))
    ctx = kernel._pipeline.context(agent)
    wallet, marks = kernel.ledger.wallet(agent.id), dict(kernel.marks)
    assert wallet.positions  # the limits depend on a holding, not only on the cash
    expected = {
        s: kernel.risk.max_buy_quantity(risk, wallet, s, marks[s], wallet.equity(marks))
        for s in ("ETH", "BTC")  # SOL has no mark: no limit
    }
    for _ in range(5):  # the market moves on before anything reads the limits
        await kernel.step(await kernel.feed.next_tick())  # type: ignore[arg-type]
    assert dict(kernel.marks) != marks
    assert list(ctx.max_buy_quantity) == ["ETH", "BTC"]
    assert dict(ctx.max_buy_quantity) == expected


# -- rule brains ----------------------------------------------------------------------------------

closes = st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [1e308, 1.7e308, 0.0, -0.0, 5e-324, math.nan, math.inf, -math.inf]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(closes, max_size=40))
def test_the_window_check_is_every_close_finite_and_positive(values: list[float]) -> None:
    """Including sums that overflow from finite closes (1e308 twice)."""
    assert _all_positive_finite(values) == all(0 < v < math.inf for v in values)


def test_the_window_check_of_huge_finite_closes_passes() -> None:
    assert _all_positive_finite([1e308, 1e308, 1.0])
    assert not _all_positive_finite([1e308, 1e308, math.nan])


@settings(max_examples=300, deadline=None)
@given(period=st.integers(2, 40), short=st.integers(0, 2), data=st.data())
def test_sma_last_two_of_short_windows_is_talib(
    period: int, short: int, data: st.DataObject
) -> None:
    """``period + 1`` closes or fewer: NaN where TA-Lib has no value."""
    size = max(period + 1 - short, 0)
    values = data.draw(st.lists(st.floats(1e-6, 1e9), min_size=size, max_size=size))
    expected = sma(np.array(values, dtype=np.float64), period)
    tail = [float(expected[-1]), float(expected[-2])] if size >= 2 else [math.nan, math.nan]
    got = sma_last_two(values, period)
    for a, b in zip(got, tail, strict=True):
        assert (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("action", [Action.BUY, Action.SELL, Action.HOLD])
def test_one_symbols_signal_is_the_decision(action: Action) -> None:
    meta = {"price": 1.5, "cross": None}
    decision = choose([Signal("BTC", action, "why", strength=2.0, meta=meta)])
    assert decision.action is action and decision.reasoning == "why"
    assert decision.meta == {"price": 1.5, "cross": None, "symbol": "BTC"} or (
        action is Action.HOLD and decision.meta == meta
    )
    assert decision.symbol == (None if action is Action.HOLD else "BTC")
    assert decision.meta is not meta  # the signal's own meta is left as it was
    assert meta == {"price": 1.5, "cross": None}


@pytest.mark.asyncio
async def test_brain_decision_ids_and_a_sells_realized_pnl(tmp_path: Path) -> None:
    """A brain's record id is SHA-256 of agent, time, source and symbol (its order key after a
    crash); a sell's trade event carries the P&L the wallet booked for it."""
    kernel = _kernel(tmp_path / "k.db")
    agent = kernel.create_agent(AgentSpec(name="m", brain="rsi", symbols=["BTC"]))
    trades: list[dict[str, object]] = []
    kernel.bus.subscribe(lambda e: trades.append(e.data["trade"]), types=["trade"])
    for _ in range(3):
        await kernel.step(await kernel.feed.next_tick())  # type: ignore[arg-type]
    kernel.place(agent.id, Decision(Action.BUY, "BTC", notional=Decimal(2000)))
    for _ in range(3):
        await kernel.step(await kernel.feed.next_tick())  # type: ignore[arg-type]
    booked = kernel.ledger.wallet(agent.id).realized_pnl
    kernel.place(agent.id, Decision(Action.SELL, "BTC"))
    gained = kernel.ledger.wallet(agent.id).realized_pnl - booked
    assert [t["side"] for t in trades] == ["buy", "sell"]
    assert trades[0]["realized_pnl"] is None
    assert trades[1]["realized_pnl"] == format(gained, "f") and gained != 0
    brain = [r for r in kernel.decisions(agent.id, limit=100) if r.source == "brain"]
    assert brain
    for rec in brain:
        seed = f"{agent.id}|{rec.time.isoformat()}|brain|{rec.symbol}"
        assert rec.id == hashlib.sha256(seed.encode()).hexdigest()[:32]


@pytest.mark.asyncio
async def test_a_lean_kernel_leaves_out_of_a_record_only_what_nobody_reads(tmp_path: Path) -> None:
    """A lean kernel (a backtest recording no decisions) leaves out a record's check lines and
    meta; the order shape that execution reads stays: a limit order rests as in a full kernel,
    and the orders fill alike."""
    seen = []
    for lean in (False, True):
        kernel = _kernel(tmp_path / f"{lean}.db", lean=lean)
        agent = kernel.create_agent(AgentSpec(name="m", brain="rsi", symbols=["BTC"]))
        await kernel.step(await kernel.feed.next_tick())  # type: ignore[arg-type]
        price = kernel.prices["BTC"].price
        limit = Decimal(price * Decimal("0.5")).quantize(Decimal("0.01"))  # far below: it rests
        rests = Decision(
            Action.BUY,
            "BTC",
            quantity=Decimal("0.01"),
            order_type=OrderType.LIMIT,
            limit_price=limit,
            meta={"note": "a person's"},
        )
        resting = kernel.place(agent.id, rests)
        market = kernel.place(agent.id, Decision(Action.BUY, "BTC", notional=Decimal(500)))
        [order] = kernel.open_orders(agent.id)
        assert (order.id, order.type, order.limit_price) == (resting.id, OrderType.LIMIT, limit)
        checks = [r.checks for r in (resting, market)]
        metas = [r.meta for r in (resting, market)]
        shape = {"order": {"type": "limit", "limit_price": format(limit, "f"), "stop_price": None}}
        if lean:
            assert checks == [[], []] and metas == [shape, {}]
        else:
            assert all(c and all(line["passed"] for line in c) for c in checks)
            assert metas == [{"note": "a person's", **shape}, {}]
        seen.append([(t["side"], t["price"], t["quantity"]) for t in kernel.trades(agent.id)])
        kernel.store.close()
    assert seen[0] == seen[1] and len(seen[0]) == 1
