"""The exact kernel's lean path: rule brains decided at once, one ledger rebuild per audit, the
garbage collector during a backtest."""

from __future__ import annotations

import asyncio
import gc
import math
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from phantomex.brains.base import BrainContext, InstantBrain, capable, instant_brain
from phantomex.brains.registry import create_brain
from phantomex.brains.rules.momentum import MomentumBrain
from phantomex.domain.models import (
    Bar,
    Decision,
    Deposit,
    Fill,
    Position,
    Side,
    Snapshot,
    Wallet,
)
from phantomex.ledger.reconcile import reconcile
from phantomex.market.base import PriceHistory
from phantomex.research.backtest import run_backtest
from phantomex.research.spec import BacktestConfig, strategy_agent

D = Decimal
T0 = datetime(2024, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def wave(n: int = 400) -> list[Bar]:
    """Closes on a sine wave: SMA 5/15 crosses up and down many times."""
    bars = []
    for i in range(n):
        close = D(str(round(100 + 10 * math.sin(i / 12), 4)))
        bars.append(Bar("BTC", T0 + i * MINUTE, close, close + 1, close - 1, close, D(1)))
    return bars


class PatientMomentum(MomentumBrain):
    """A rule brain with a ``decide`` of its own that waits, then always holds."""

    async def decide(self, ctx: BrainContext) -> Decision:
        await asyncio.sleep(0)
        return Decision.hold("patient: never trades")


def test_a_rule_brain_is_instant_unless_it_decides_on_its_own() -> None:
    plain = create_brain("sma_cross", {"fast": 5, "slow": 15})
    patient = PatientMomentum(MomentumBrain.Params(fast=5, slow=15))
    assert capable(plain, InstantBrain) and isinstance(plain, MomentumBrain) and plain.instant
    assert not patient.instant
    # what the kernel asks, once per class
    assert instant_brain(plain) is plain and instant_brain(patient) is None
    assert instant_brain(create_brain("rsi", {})) is not None
    assert instant_brain(object()) is None  # not an InstantBrain at all


def test_the_kernel_asks_a_subclass_decide_not_the_rule_it_inherits() -> None:
    spec = strategy_agent("sma_cross", {"fast": 5, "slow": 15}, symbols=["BTC"])
    config = BacktestConfig(data={"BTC": wave()}, agents=[spec])
    assert run_backtest(config).trades  # the plain rule trades on this wave
    patient = PatientMomentum(MomentumBrain.Params(fast=5, slow=15))
    assert run_backtest(config, brains={spec.name: patient}).trades == []


def test_decide_and_decide_now_give_the_same_decision() -> None:
    history = PriceHistory()
    bars = wave(60)
    history.append(bars)
    now = bars[-1].time + MINUTE
    for name, params in (("sma_cross", {"fast": 5, "slow": 15}), ("rsi", {})):
        brain = create_brain(name, params)
        for held in (False, True):
            wallet = Wallet(agent_id="a1", allowance=D(1000), cash=D(1000))
            if held:
                wallet.positions["BTC"] = Position("BTC", D(1), D(100), T0)
            ctx = BrainContext(
                agent_id="a1",
                agent_name="t",
                goal="",
                now=now,
                symbols=["BTC"],
                prices={"BTC": Snapshot("BTC", now, bars[-1].close)},
                history=history.view(now),
                wallet=wallet,
            )
            assert asyncio.run(brain.decide(ctx)) == brain.decide_now(ctx)  # type: ignore[attr-defined]


def _entries(agent: str) -> list[Fill | Deposit]:
    return [
        Deposit(agent, D(1000), T0, f"{agent}-d", True),
        Fill(agent, "BTC", Side.BUY, D(2), D(100), D("0.2"), T0, f"{agent}-f"),
    ]


def test_reconcile_checks_each_set_of_wallets_against_one_rebuild() -> None:
    entries = {"a": _entries("a")}
    good = Wallet("a", allowance=D(1000), cash=D("799.8"), fees_paid=D("0.2"), version=2)
    good.positions["BTC"] = Position("BTC", D(2), D("200.2"), T0)
    bad = good.copy()
    bad.cash += D("0.01")
    assert reconcile({"a": good}, entries, {"a": good}) == []
    found = reconcile({"a": good}, entries, {"a": bad}, {})
    assert [(m.agent_id, m.field, m.actual) for m in found] == [
        ("a", "cash", "799.81"),  # the second set's
        ("a", "wallet", "missing"),  # the third's: no wallet for a history
    ]
    assert found == reconcile({"a": bad}, entries) + reconcile({}, entries)


def test_reconcile_reports_an_invalid_history_for_every_set() -> None:
    broken: dict[str, list[Fill | Deposit]] = {
        "b": [Fill("b", "BTC", Side.SELL, D(1), D(1), D(0), T0, "b-f")]
    }
    wallet = Wallet("b")
    found = reconcile({"b": wallet}, broken, {"b": wallet})
    assert [m.field for m in found] == ["history", "history"]


@pytest.mark.parametrize("frozen_before", [False, True])
def test_a_backtest_leaves_the_garbage_collector_as_it_found_it(frozen_before: bool) -> None:
    spec = strategy_agent("sma_cross", {"fast": 5, "slow": 15}, symbols=["BTC"])
    config = BacktestConfig(data={"BTC": wave(200)}, agents=[spec])
    gc.unfreeze()  # an earlier test's CLI run may have left its heap frozen
    if frozen_before:
        gc.freeze()
    try:
        before = gc.get_freeze_count()
        result = run_backtest(config)
        after = gc.get_freeze_count()
        # nobody else's frozen objects released (unfreeze: 0) and none of the run's left frozen;
        # a frozen object that dies meanwhile leaves the count, so it may only shrink
        assert (before > 0) == frozen_before
        assert after <= before and (after > 0) == frozen_before
    finally:
        gc.unfreeze()
    assert result.trades and result.trades[0].side == "buy"


def test_event_skipping_is_only_for_a_replay_that_raises_from_its_start() -> None:
    """The driver passes over ticks and visits the next event under one lock and one unit:
    live driving (errors reported, ticks resumed after a restart) never skips."""
    from phantomex.broker.paper import PaperBroker
    from phantomex.kernel.driver import TickDriver
    from phantomex.kernel.runtime import Kernel, KernelConfig
    from phantomex.market.replay import ReplayFeed
    from phantomex.store.memory import MemoryStore

    kernel = Kernel(
        MemoryStore(), ReplayFeed({"BTC": wave()}), PaperBroker(), config=KernelConfig(lean=True)
    )
    for live in ({"report_errors": True}, {"resume": True}):
        with pytest.raises(ValueError, match="event skipping"):
            TickDriver(kernel, skipping=True, **live)  # type: ignore[arg-type]
    assert TickDriver(kernel, skipping=True).plan is not None
