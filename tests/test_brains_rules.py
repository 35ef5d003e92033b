"""Rule brains on crafted price series where the right answer is known."""

from __future__ import annotations

import dataclasses
import json
import random
from decimal import Decimal
from typing import Any

import pytest
from brain_helpers import MINUTE, T0, make_bars, make_ctx, make_history
from pydantic import ValidationError

from phantomex.brains.rules import (
    MomentumBrain,
    MomentumParams,
    RsiBrain,
    RsiParams,
    SpikeFadeBrain,
    SpikeFadeParams,
    TrainOfTradeBrain,
    TrainOfTradeParams,
)
from phantomex.brains.rules._common import RuleBrain
from phantomex.domain.models import Action, Decision


def zigzag(start: float, steps: int, down: float, up: float) -> list[float]:
    closes = [start]
    for i in range(steps):
        closes.append(round(closes[-1] + (down if i % 2 == 0 else up), 6))
    return closes


DECLINE = zigzag(100.0, 30, -1.0, 0.3)  # RSI(14) ~ 24 at the end
RALLY = zigzag(100.0, 30, 1.0, -0.3)  # RSI(14) ~ 76 at the end
CHOP = zigzag(100.0, 30, 0.5, -0.5)  # RSI(14) ~ 50
HELD = {"BTC": ("1", "100")}


def rsi_brain(**params: Any) -> RsiBrain:
    return RsiBrain(RsiParams(**params))


# --------------------------------------------------------------------------- RSI


@pytest.mark.asyncio
async def test_rsi_buys_after_a_steady_decline() -> None:
    decision = await rsi_brain().decide(make_ctx({"BTC": DECLINE}))
    assert decision.action is Action.BUY
    assert decision.symbol == "BTC"
    assert decision.quantity is None and decision.notional is None
    assert decision.meta["rsi"] < 30
    assert "RSI(14)" in decision.reasoning and "BTC" in decision.reasoning
    assert "oversold" in decision.reasoning


@pytest.mark.asyncio
async def test_rsi_sells_after_a_rally_when_holding() -> None:
    decision = await rsi_brain().decide(make_ctx({"BTC": RALLY}, holdings=HELD))
    assert decision.action is Action.SELL
    assert decision.symbol == "BTC"
    assert decision.quantity is None
    assert decision.meta["rsi"] > 70
    assert "overbought" in decision.reasoning


@pytest.mark.asyncio
async def test_rsi_does_not_short_an_overbought_market_when_flat() -> None:
    decision = await rsi_brain().decide(make_ctx({"BTC": RALLY}))
    assert decision.action is Action.HOLD
    assert decision.symbol is None
    assert "no shorting" in decision.reasoning
    assert decision.meta["rsi"] > 70


@pytest.mark.asyncio
async def test_rsi_does_not_buy_more_when_already_long() -> None:
    decision = await rsi_brain().decide(make_ctx({"BTC": DECLINE}, holdings=HELD))
    assert decision.action is Action.HOLD


@pytest.mark.asyncio
async def test_rsi_holds_in_the_neutral_band() -> None:
    decision = await rsi_brain().decide(make_ctx({"BTC": CHOP}))
    assert decision.action is Action.HOLD
    assert 30 <= decision.meta["rsi"] <= 70
    assert "no signal" in decision.reasoning


@pytest.mark.asyncio
async def test_rsi_levels_are_configurable() -> None:
    ctx = make_ctx({"BTC": DECLINE})
    assert (await rsi_brain(oversold=20).decide(ctx)).action is Action.HOLD
    assert (await rsi_brain(oversold=25).decide(ctx)).action is Action.BUY


@pytest.mark.asyncio
async def test_rsi_needs_period_plus_one_bars() -> None:
    falling = [float(100 - i) for i in range(20)]
    short = await rsi_brain().decide(make_ctx({"BTC": falling}, bars=14))
    assert short.action is Action.HOLD
    assert "not enough history (14/15 bars)" in short.reasoning
    enough = await rsi_brain().decide(make_ctx({"BTC": falling}, bars=15))
    assert enough.action is Action.BUY


@pytest.mark.asyncio
async def test_rsi_holds_on_a_perfectly_flat_market() -> None:
    decision = await rsi_brain().decide(make_ctx({"BTC": [100.0] * 30}))
    assert decision.action is Action.HOLD
    assert "not moved" in decision.reasoning


@pytest.mark.asyncio
async def test_rsi_respects_no_buying_power() -> None:
    ctx = make_ctx({"BTC": DECLINE})
    ctx.max_buy_quantity["BTC"] = Decimal(0)
    decision = await rsi_brain().decide(ctx)
    assert decision.action is Action.HOLD
    assert "buying power" in decision.reasoning


# --------------------------------------------------------------------------- bad data


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "brain",
    [
        RsiBrain(RsiParams()),
        MomentumBrain(MomentumParams(fast=3, slow=5)),
        SpikeFadeBrain(SpikeFadeParams(windows=[10])),
        TrainOfTradeBrain(TrainOfTradeParams()),
    ],
    ids=lambda b: b.kind,
)
@pytest.mark.parametrize("price", [None, Decimal(0), Decimal(-5), Decimal("NaN")])
async def test_missing_or_invalid_price_holds(brain: RuleBrain, price: Decimal | None) -> None:
    ctx = make_ctx({"BTC": DECLINE}, prices={"BTC": price})
    decision = await brain.decide(ctx)
    assert decision.action is Action.HOLD
    assert "no valid price" in decision.reasoning
    assert ctx.state == {}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "brain",
    [
        RsiBrain(RsiParams()),
        MomentumBrain(MomentumParams(fast=3, slow=5)),
        SpikeFadeBrain(SpikeFadeParams(windows=[10])),
    ],
    ids=lambda b: b.kind,
)
@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "0", "-1", "1e400"])
async def test_nan_in_history_holds_instead_of_trading(brain: RuleBrain, bad: str) -> None:
    """A close in the window that is not finite and positive: a hold, never a trade."""
    closes: list[float | str] = [*DECLINE[:-3], bad, *DECLINE[-2:]]
    decision = await brain.decide(make_ctx({"BTC": closes}, prices={"BTC": Decimal("70")}))
    assert decision.action is Action.HOLD
    assert "invalid prices" in decision.reasoning
    json.dumps(decision.meta, allow_nan=False)  # meta stays strict-JSON


@pytest.mark.asyncio
async def test_no_symbols_holds() -> None:
    ctx = make_ctx({"BTC": DECLINE})
    ctx.symbols = []
    decision = await rsi_brain().decide(ctx)
    assert decision == Decision.hold("no symbols to trade")


# --------------------------------------------------------------------------- several symbols


@pytest.mark.asyncio
async def test_exit_beats_entry_across_symbols() -> None:
    ctx = make_ctx({"BTC": DECLINE, "ETH": RALLY}, holdings={"ETH": ("2", "200")})
    decision = await rsi_brain().decide(ctx)
    assert decision.action is Action.SELL
    assert decision.symbol == "ETH"
    assert decision.meta["signals"] == {"BTC": "buy", "ETH": "sell"}


@pytest.mark.asyncio
async def test_strongest_entry_wins_and_ties_follow_symbol_order() -> None:
    deeper = zigzag(100.0, 30, -1.0, 0.1)
    assert (await rsi_brain().decide(make_ctx({"BTC": DECLINE, "ETH": deeper}))).symbol == "ETH"
    assert (await rsi_brain().decide(make_ctx({"ETH": deeper, "BTC": DECLINE}))).symbol == "ETH"
    # Equal signals: the first symbol wins, every time.
    tie = make_ctx({"SOL": DECLINE, "BTC": DECLINE})
    assert (await rsi_brain().decide(tie)).symbol == "SOL"


@pytest.mark.asyncio
async def test_hold_over_several_symbols_explains_each() -> None:
    decision = await rsi_brain().decide(make_ctx({"BTC": CHOP, "ETH": CHOP[:5]}))
    assert decision.action is Action.HOLD
    assert "BTC" in decision.reasoning and "ETH: not enough history" in decision.reasoning
    assert set(decision.meta["symbols"]) == {"BTC", "ETH"}


# --------------------------------------------------------------------------- momentum

# SMA(3) vs SMA(5) crosses up on index 10: fast 15 > slow 14.4, and at 9 fast 14 <= slow 14.2.
V_SHAPE = [20.0, 19, 18, 17, 16, 15, 14, 13, 14, 15, 16, 17, 18, 19, 20]
# The mirror image crosses down on index 10.
A_SHAPE = [30.0 - c for c in V_SHAPE]


def momentum_brain(**params: Any) -> MomentumBrain:
    return MomentumBrain(MomentumParams(**params))


async def actions_per_bar(
    brain: RuleBrain, closes: list[float], holdings: dict[str, tuple[str, str]] | None = None
) -> dict[int, Action]:
    """The decision after each bar index has closed."""
    out: dict[int, Action] = {}
    for i in range(len(closes)):
        ctx = make_ctx({"BTC": closes}, bars=i + 1, holdings=holdings)
        out[i] = (await brain.decide(ctx)).action
    return out


@pytest.mark.asyncio
async def test_momentum_buys_exactly_on_the_cross_up_bar() -> None:
    actions = await actions_per_bar(momentum_brain(fast=3, slow=5), V_SHAPE)
    buys = [i for i, a in actions.items() if a is Action.BUY]
    assert buys == [10]
    assert actions[9] is Action.HOLD and actions[11] is Action.HOLD


@pytest.mark.asyncio
async def test_momentum_buy_reasoning_and_meta() -> None:
    decision = await momentum_brain(fast=3, slow=5).decide(make_ctx({"BTC": V_SHAPE}, bars=11))
    assert decision.action is Action.BUY and decision.symbol == "BTC"
    assert decision.meta["fast"] == pytest.approx(15.0)
    assert decision.meta["slow"] == pytest.approx(14.4)
    assert decision.meta["cross"] == "up"
    assert "SMA(3)" in decision.reasoning and "crossed above" in decision.reasoning


@pytest.mark.asyncio
async def test_momentum_without_explaining_decides_the_same_without_its_figures() -> None:
    brain = momentum_brain(fast=3, slow=5)
    for series, holdings in ((V_SHAPE, None), (A_SHAPE, HELD), (V_SHAPE, HELD)):
        for bars in range(1, len(series) + 1):
            ctx = make_ctx({"BTC": series}, bars=bars, holdings=holdings)
            explained = await brain.decide(ctx)
            ctx.explain = False  # what a lean backtest asks: nobody reads the meta
            bare = await brain.decide(ctx)
            assert bare == dataclasses.replace(explained, meta=bare.meta)
            assert bare.meta.items() <= explained.meta.items()
            assert len(bare.meta) < len(explained.meta) or bars <= 5  # none while warming up


@pytest.mark.asyncio
async def test_momentum_sells_on_the_cross_down_when_long() -> None:
    actions = await actions_per_bar(momentum_brain(fast=3, slow=5), A_SHAPE, holdings=HELD)
    assert [i for i, a in actions.items() if a is Action.SELL] == [10]
    assert Action.BUY not in actions.values()


@pytest.mark.asyncio
async def test_momentum_ignores_cross_down_when_flat_and_cross_up_when_long() -> None:
    flat = await actions_per_bar(momentum_brain(fast=3, slow=5), A_SHAPE)
    assert set(flat.values()) == {Action.HOLD}
    long = await actions_per_bar(momentum_brain(fast=3, slow=5), V_SHAPE, holdings=HELD)
    assert set(long.values()) == {Action.HOLD}


@pytest.mark.asyncio
async def test_momentum_needs_both_averages_at_the_previous_bar() -> None:
    # Index 5 is the first bar with SMA(5) at t-1; before that there is not enough history.
    for i in range(5):
        decision = await momentum_brain(fast=3, slow=5).decide(
            make_ctx({"BTC": V_SHAPE}, bars=i + 1)
        )
        assert "not enough history" in decision.reasoning
    decision = await momentum_brain(fast=3, slow=5).decide(make_ctx({"BTC": V_SHAPE}, bars=6))
    assert "not enough history" not in decision.reasoning


def plain_ema(closes: list[float], period: int) -> list[float | None]:
    out: list[float | None] = [None] * len(closes)
    k = 2.0 / (period + 1)
    value = sum(closes[:period]) / period
    out[period - 1] = value
    for i in range(period, len(closes)):
        value = closes[i] * k + value * (1 - k)
        out[i] = value
    return out


# A slow bottom: SMA(3)/SMA(5) cross up on index 11, EMA(3)/EMA(5) only on index 12.
SLOW_BOTTOM = [20.0, 19, 18, 17, 16, 15, 14, 13, 13, 13.5, 14, 14.5, 15, 16, 17]


@pytest.mark.asyncio
async def test_momentum_ema_cross_matches_hand_computation() -> None:
    fast, slow = plain_ema(SLOW_BOTTOM, 3), plain_ema(SLOW_BOTTOM, 5)
    expected = [
        i
        for i in range(5, len(SLOW_BOTTOM))
        if fast[i] > slow[i] and fast[i - 1] <= slow[i - 1]  # type: ignore[operator]
    ]
    assert expected == [12]
    ema_actions = await actions_per_bar(momentum_brain(fast=3, slow=5, ma="ema"), SLOW_BOTTOM)
    assert [i for i, a in ema_actions.items() if a is Action.BUY] == expected
    sma_actions = await actions_per_bar(momentum_brain(fast=3, slow=5), SLOW_BOTTOM)
    assert [i for i, a in sma_actions.items() if a is Action.BUY] == [11]


@pytest.mark.asyncio
async def test_momentum_touch_then_cross_counts_as_a_cross() -> None:
    # SMA(2) vs SMA(4): at index 4 fast == slow (both 10), at index 5 fast > slow.
    closes = [10.0, 10, 10, 10, 10, 12]
    actions = await actions_per_bar(momentum_brain(fast=2, slow=4), closes)
    assert [i for i, a in actions.items() if a is Action.BUY] == [5]


# --------------------------------------------------------------------------- spike fade


def spike_brain(**params: Any) -> SpikeFadeBrain:
    return SpikeFadeBrain(SpikeFadeParams(**params))


CALM_DROP = [100.0] * 9 + [97.0]  # -3 % over 10 bars, CV ~ 0.009
CALM_RISE = [100.0] * 9 + [103.0]
CHOPPY_DROP = [100.0, 120.0] * 4 + [100.0, 97.0]  # same -3 %, CV ~ 0.09


@pytest.mark.asyncio
async def test_spike_fade_buys_a_sharp_drop() -> None:
    decision = await spike_brain(windows=[10]).decide(make_ctx({"BTC": CALM_DROP}))
    assert decision.action is Action.BUY and decision.symbol == "BTC"
    assert decision.meta["spike_pct"] == pytest.approx(-3.0)
    assert decision.meta["spike_window"] == 10
    assert "buy the dip" in decision.reasoning and "-3.00%" in decision.reasoning


@pytest.mark.asyncio
async def test_spike_fade_ignores_a_small_drop() -> None:
    decision = await spike_brain(windows=[10]).decide(make_ctx({"BTC": [100.0] * 9 + [98.5]}))
    assert decision.action is Action.HOLD
    assert "no spike" in decision.reasoning


@pytest.mark.asyncio
async def test_spike_fade_skips_a_too_volatile_window() -> None:
    ctx = make_ctx({"BTC": CHOPPY_DROP})
    decision = await spike_brain(windows=[10]).decide(ctx)
    assert decision.action is Action.HOLD
    assert "too volatile" in decision.reasoning
    [window] = decision.meta["windows"]
    assert window["eligible"] is False and window["cv"] > 0.05
    assert window["spike_pct"] == pytest.approx(-3.0)
    # Same series, looser filter: the drop is traded, so the CV filter is what held it back.
    assert (await spike_brain(windows=[10], cv_threshold=0.2).decide(ctx)).action is Action.BUY


@pytest.mark.asyncio
async def test_spike_fade_uses_a_calm_window_when_another_is_too_volatile() -> None:
    # 20 choppy bars, then 10 calm bars ending in a -3 % drop: the 30-bar window is skipped.
    closes = [100.0, 130.0] * 10 + CALM_DROP
    decision = await spike_brain(windows=[10, 30]).decide(make_ctx({"BTC": closes}))
    assert decision.action is Action.BUY
    assert decision.meta["spike_window"] == 10
    by_window = {w["window"]: w for w in decision.meta["windows"]}
    assert by_window[30]["eligible"] is False and by_window[10]["eligible"] is True


@pytest.mark.asyncio
async def test_spike_fade_takes_the_largest_spike_over_windows() -> None:
    # -1 % over the last 5 bars, -4 % over the last 10.
    closes = [100.0] * 5 + [98.0] * 4 + [97.0]
    decision = await spike_brain(windows=[5, 10]).decide(make_ctx({"BTC": closes}))
    assert decision.action is Action.BUY
    assert decision.meta["spike_window"] == 10
    assert decision.meta["spike_pct"] == pytest.approx(-3.0)
    by_window = {w["window"]: w for w in decision.meta["windows"]}
    assert by_window[5]["spike_pct"] == pytest.approx((97 - 98) / 98 * 100, abs=1e-4)


@pytest.mark.asyncio
async def test_spike_fade_sells_a_spike_up_only_when_holding() -> None:
    flat = await spike_brain(windows=[10]).decide(make_ctx({"BTC": CALM_RISE}))
    assert flat.action is Action.HOLD
    assert "no shorting" in flat.reasoning
    held = await spike_brain(windows=[10]).decide(make_ctx({"BTC": CALM_RISE}, holdings=HELD))
    assert held.action is Action.SELL and held.symbol == "BTC"
    assert held.meta["spike_pct"] == pytest.approx(3.0)


@pytest.mark.asyncio
async def test_spike_fade_does_not_add_to_a_position_on_a_drop() -> None:
    decision = await spike_brain(windows=[10]).decide(make_ctx({"BTC": CALM_DROP}, holdings=HELD))
    assert decision.action is Action.HOLD


@pytest.mark.asyncio
async def test_spike_fade_min_bars() -> None:
    short = make_ctx({"BTC": [100.0, 100.0, 100.0, 95.0]})
    decision = await spike_brain(windows=[10], min_bars=5).decide(short)
    assert decision.action is Action.HOLD
    assert "not enough history (4/5 bars)" in decision.reasoning
    # A window shorter than the full size is used once it has min_bars.
    decision = await spike_brain(windows=[10], min_bars=4).decide(short)
    assert decision.action is Action.BUY
    assert decision.meta["windows"][0]["bars"] == 4


@pytest.mark.asyncio
async def test_spike_fade_uses_the_live_price_as_current() -> None:
    ctx = make_ctx({"BTC": [100.0] * 10}, prices={"BTC": Decimal("97.5")})
    decision = await spike_brain(windows=[10]).decide(ctx)
    assert decision.action is Action.BUY
    assert decision.meta["spike_pct"] == pytest.approx(-2.5)


# --------------------------------------------------------------------------- train of trade


def train_brain(**params: Any) -> TrainOfTradeBrain:
    return TrainOfTradeBrain(TrainOfTradeParams(**params))


async def train_step(
    brain: TrainOfTradeBrain,
    price: str,
    state: dict[str, Any],
    holdings: dict[str, tuple[str, str]] | None = None,
) -> tuple[Decision, dict[str, Any]]:
    """One decision at ``price``; the state goes through JSON like the kernel stores it."""
    ctx = make_ctx({"BTC": [float(price)]}, prices={"BTC": Decimal(price)}, holdings=holdings)
    ctx.state = json.loads(json.dumps(state))
    decision = await brain.decide(ctx)
    return decision, json.loads(json.dumps(ctx.state))


@pytest.mark.asyncio
async def test_train_of_trade_full_cycle() -> None:
    brain = train_brain()  # drop 1 %, take profit 1.5 %, reset 2 %
    decision, state = await train_step(brain, "100", {})
    assert decision.action is Action.HOLD
    btc = state["symbols"]["BTC"]
    assert btc["phase"] == "want_to_buy"
    assert Decimal(btc["reference"]) == Decimal(100)
    assert Decimal(btc["buy_target"]) == Decimal(99)
    assert "buy target 99" in decision.reasoning

    decision, state = await train_step(brain, "99.5", state)
    assert decision.action is Action.HOLD
    assert Decimal(state["symbols"]["BTC"]["buy_target"]) == Decimal(99)

    decision, state = await train_step(brain, "99", state)
    assert decision.action is Action.BUY and decision.symbol == "BTC"
    assert decision.quantity is None and decision.notional is None
    assert decision.meta["buy_target"] == pytest.approx(99.0)

    # The buy filled: 1 BTC at 99 plus a 0.1 fee -> average cost 99.1.
    position = {"BTC": ("1", "99.1")}
    decision, state = await train_step(brain, "100", state, position)
    assert decision.action is Action.HOLD
    assert state["symbols"]["BTC"]["phase"] == "having_bought"
    assert Decimal(state["symbols"]["BTC"]["sell_target"]) == Decimal("99.1") * Decimal("1.015")

    decision, state = await train_step(brain, "100.58", state, position)
    assert decision.action is Action.HOLD  # 100.58 < 100.5865

    decision, state = await train_step(brain, "100.59", state, position)
    assert decision.action is Action.SELL and decision.symbol == "BTC"
    assert decision.quantity is None
    assert "take-profit" in decision.reasoning

    # The sell filled: a new cycle starts from the current price.
    decision, state = await train_step(brain, "100.59", state)
    assert decision.action is Action.HOLD
    assert state["symbols"]["BTC"]["phase"] == "want_to_buy"
    assert Decimal(state["symbols"]["BTC"]["reference"]) == Decimal("100.59")
    assert "new cycle" in decision.reasoning


@pytest.mark.asyncio
async def test_train_of_trade_resets_the_target_when_price_runs_away() -> None:
    brain = train_brain()
    _, state = await train_step(brain, "100", {})
    decision, state = await train_step(brain, "101.9", state)  # +1.9 %: no reset
    assert state["symbols"]["BTC"]["reference"] == "100"
    decision, state = await train_step(brain, "102.5", state)  # +2.5 %: reset
    assert Decimal(state["symbols"]["BTC"]["reference"]) == Decimal("102.5")
    assert Decimal(state["symbols"]["BTC"]["buy_target"]) == Decimal("101.475")
    assert "reset" in decision.reasoning
    # The old target (99) no longer applies; the new one does.
    decision, state = await train_step(brain, "101.5", state)
    assert decision.action is Action.HOLD
    decision, state = await train_step(brain, "101.4", state)
    assert decision.action is Action.BUY


@pytest.mark.asyncio
async def test_train_of_trade_returns_to_want_to_buy_after_a_risk_exit() -> None:
    brain = train_brain()
    state = {"symbols": {"BTC": {"phase": "having_bought", "entry": "100", "sell_target": "101.5"}}}
    decision, state = await train_step(brain, "95", state)  # stop-loss closed the position
    assert decision.action is Action.HOLD
    btc = state["symbols"]["BTC"]
    assert btc["phase"] == "want_to_buy"
    assert Decimal(btc["reference"]) == Decimal(95)
    assert Decimal(btc["buy_target"]) == Decimal("94.05")


@pytest.mark.asyncio
async def test_train_of_trade_adopts_a_position_it_did_not_buy() -> None:
    decision, state = await train_step(train_brain(), "103", {}, {"BTC": ("2", "200")})
    assert decision.action is Action.SELL  # 103 >= 100 * 1.015
    assert state["symbols"]["BTC"]["phase"] == "having_bought"


@pytest.mark.asyncio
async def test_train_of_trade_recovers_from_corrupt_state() -> None:
    brain = train_brain()
    for bad in (
        {"symbols": "x"},
        {"symbols": {"BTC": 3}},
        {"symbols": {"BTC": {"reference": "?"}}},
    ):
        decision, state = await train_step(brain, "100", bad)
        assert decision.action is Action.HOLD
        assert state["symbols"]["BTC"]["reference"] == "100"


@pytest.mark.asyncio
async def test_train_of_trade_keeps_one_machine_per_symbol() -> None:
    brain = train_brain()
    ctx = make_ctx({"BTC": [100.0], "ETH": [10.0]})
    await brain.decide(ctx)
    assert set(ctx.state["symbols"]) == {"BTC", "ETH"}
    assert Decimal(ctx.state["symbols"]["ETH"]["buy_target"]) == Decimal("9.9")


# --------------------------------------------------------------------------- no look-ahead


def random_walk(n: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    closes = [100.0]
    for _ in range(n - 1):
        closes.append(round(closes[-1] * (1 + rng.gauss(0, 0.015)), 4))
    return closes


LOOKAHEAD_BRAINS = [
    RsiBrain(RsiParams(period=7)),
    MomentumBrain(MomentumParams(fast=3, slow=8)),
    MomentumBrain(MomentumParams(fast=3, slow=8, ma="ema")),
    SpikeFadeBrain(SpikeFadeParams(windows=[5, 10, 20], spike_threshold_pct=1.5)),
    TrainOfTradeBrain(TrainOfTradeParams(entry_drop_pct=0.5, take_profit_pct=0.5)),
]


@pytest.mark.asyncio
@pytest.mark.parametrize("brain", LOOKAHEAD_BRAINS, ids=lambda b: b.describe())
async def test_no_look_ahead(brain: RuleBrain) -> None:
    closes = random_walk(120, seed=7)
    changed = [c * 1.5 if i % 2 else c * 0.6 for i, c in enumerate(closes)]
    actions: set[Action] = set()
    state_past: dict[str, Any] = {}
    state_full: dict[str, Any] = {}
    for t in range(1, len(closes)):
        # Long on every third bar, bought 1 % below the last close.
        holdings = {"BTC": ("1", str(closes[t - 1] * 0.99))} if t % 3 == 0 else None
        past = make_ctx({"BTC": closes[:t]}, holdings=holdings, state=state_past)
        # Every bar from t on is different in the "full" history; the view ends at t.
        future = closes[:t] + changed[t:]
        full = make_ctx(
            {"BTC": closes[:t]},
            holdings=holdings,
            state=state_full,
            history=make_history({"BTC": future}),
        )
        assert past.now == full.now
        a, b = await brain.decide(past), await brain.decide(full)
        assert a == b, f"decision at bar {t} depends on later bars"
        assert state_past == state_full
        actions.add(a.action)
    # The series is eventful enough that the comparison covered real signals, not only holds.
    assert {Action.BUY, Action.SELL} <= actions


def test_no_look_ahead_harness_would_catch_a_peek() -> None:
    """The full history really holds different later bars (so the test above can fail)."""
    closes = random_walk(30, seed=7)
    changed = [c * 1.5 if i % 2 else c * 0.6 for i, c in enumerate(closes)]
    full = make_history({"BTC": closes[:10] + changed[10:]})
    assert full.view(T0 + 30 * MINUTE).closes("BTC")[-1] != closes[-1]
    assert list(full.view(T0 + 10 * MINUTE).closes("BTC")) == closes[:10]


# --------------------------------------------------------------------------- params


@pytest.mark.parametrize(
    ("model", "params", "message"),
    [
        (RsiParams, {"oversold": 70, "overbought": 30}, "oversold (70.0) must be below overbought"),
        (RsiParams, {"oversold": 50, "overbought": 50}, "must be below overbought"),
        (RsiParams, {"period": 1}, "greater than or equal to 2"),
        (RsiParams, {"oversold": 0}, "greater than 0"),
        (RsiParams, {"overbought": 100}, "less than 100"),
        (RsiParams, {"period": "fourteen"}, "valid integer"),
        (RsiParams, {"lenght": 14}, "Extra inputs are not permitted"),
        (MomentumParams, {"fast": 30, "slow": 10}, "fast (30) must be below slow (10)"),
        (MomentumParams, {"fast": 10, "slow": 10}, "must be below slow"),
        (MomentumParams, {"ma": "wma"}, "'sma' or 'ema'"),
        (MomentumParams, {"fast": 1}, "greater than or equal to 2"),
        (SpikeFadeParams, {"windows": []}, "at least 1 item"),
        (SpikeFadeParams, {"windows": [1, 10]}, "greater than or equal to 2"),
        (SpikeFadeParams, {"spike_threshold_pct": 0}, "greater than 0"),
        (SpikeFadeParams, {"cv_threshold": -0.1}, "greater than 0"),
        (SpikeFadeParams, {"windows": [5], "min_bars": 6}, "min_bars (6) exceeds"),
        (TrainOfTradeParams, {"entry_drop_pct": 0}, "greater than 0"),
        (TrainOfTradeParams, {"entry_drop_pct": 100}, "less than 100"),
        (TrainOfTradeParams, {"take_profit_pct": -1}, "greater than 0"),
        (TrainOfTradeParams, {"reset_pct": 0}, "greater than 0"),
    ],
)
def test_bad_params_are_rejected_clearly(model: type, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        model(**params)
    assert message in str(info.value)


def test_default_params() -> None:
    assert RsiParams().model_dump() == {"period": 14, "oversold": 30.0, "overbought": 70.0}
    assert MomentumParams().model_dump() == {"fast": 10, "slow": 30, "ma": "sma"}
    assert SpikeFadeParams().model_dump() == {
        "windows": [10, 30, 60],
        "spike_threshold_pct": 2.0,
        "cv_threshold": 0.05,
        "min_bars": 5,
    }
    assert TrainOfTradeParams().model_dump() == {
        "entry_drop_pct": 1.0,
        "take_profit_pct": 1.5,
        "reset_pct": 2.0,
    }


def test_spike_windows_are_sorted_and_deduplicated() -> None:
    assert SpikeFadeParams(windows=[60, 10, 10, 30]).windows == [10, 30, 60]


def test_describe_names_the_key_parameters() -> None:
    assert RsiBrain(RsiParams()).describe() == "RSI(14) mean reversion: buy < 30, sell > 70"
    assert MomentumBrain(MomentumParams(ma="ema")).describe() == "EMA(10/30) crossover momentum"
    assert "10/30/60" in SpikeFadeBrain(SpikeFadeParams()).describe()
    assert "take profit 1.5%" in TrainOfTradeBrain(TrainOfTradeParams()).describe()


def test_closes_are_fresh_after_each_bar_and_private_to_each_caller() -> None:
    history = make_history({"BTC": [100, 101, 102]})
    now = T0 + 3 * MINUTE
    first = history.view(now).closes("BTC", 2)
    assert first.tolist() == [101.0, 102.0]
    first[:] = 0.0  # one brain scribbling on its array leaves the next brain's alone
    assert history.view(now).closes("BTC", 2).tolist() == [101.0, 102.0]
    history.append(make_bars([100, 101, 102, 107]))  # a new bar at 3 minutes: a new window
    later = T0 + 4 * MINUTE
    assert history.view(later).closes("BTC", 2).tolist() == [102.0, 107.0]
    assert history.view(now).closes("BTC", 2).tolist() == [101.0, 102.0]  # no peek at 3 min
    assert history.view(later).closes("BTC").tolist() == [100.0, 101.0, 102.0, 107.0]
