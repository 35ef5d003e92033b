"""No look-ahead, provably: replace every bar after time t with a random walk and check that no
decision at or before t changes, for every shipped rule strategy and for the LLM brain's prompt
builder, on the live kernel through ``run_backtest``.

t is the close of bar k (the kernel's tick time for that bar); bars k+1.. are replaced (BTC and
ETH both). With next-open fills the order decided at t fills at bar k+1's open, which is changed
data, so fills are compared strictly before t; with close fills, at or before t."""

from __future__ import annotations

import hashlib
import math
import random
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar

import numpy as np
import pytest

from phantomex.brains.base import BrainContext
from phantomex.brains.llm.prompt import build_messages
from phantomex.brains.registry import create_brain
from phantomex.domain.models import Action, Bar, Decision
from phantomex.market.loaders import load_dataset
from phantomex.research.backtest import run_backtest
from phantomex.research.spec import OUTCOME, BacktestConfig, BacktestResult, strategy_agent

N_BARS = 260
SYMBOLS = ["BTC", "ETH"]
STRATEGIES: dict[str, tuple[str, dict[str, Any]]] = {
    "rsi": ("rsi", {"period": 14, "oversold": 40, "overbought": 60}),
    "sma_cross": ("sma_cross", {"fast": 5, "slow": 20}),
    "ema_cross": ("ema_cross", {"fast": 5, "slow": 20}),
    "spike_fade": ("spike_fade", {"windows": [10, 30], "spike_threshold_pct": 0.2}),
    "train_of_trade": (
        "train_of_trade",
        {"entry_drop_pct": 0.1, "take_profit_pct": 0.1, "reset_pct": 0.3},
    ),
}
PROBE = "llm_prompt"


class PromptProbe:
    """Stands in for the LLM brain: builds its prompt exactly as it does (goal, recent
    decisions, notes, JSON mode) and records it, then trades on a hash of the prompt so that
    decisions, trades and notes feed back into later prompts."""

    kind: ClassVar[str] = "probe"
    slow: ClassVar[bool] = True  # the kernel fills recent decisions and trades in the context

    def __init__(self) -> None:
        self.prompts: list[tuple[datetime, list[dict[str, Any]]]] = []

    def describe(self) -> str:
        return "prompt probe"

    async def decide(self, ctx: BrainContext) -> Decision:
        messages = build_messages(
            ctx,
            goal=ctx.goal,
            recent_decisions=ctx.recent_decisions,
            notes=list(ctx.state.get("notes", [])),
            mode_prompt_json=True,
        )
        self.prompts.append((ctx.now, messages))
        digest = hashlib.sha256(messages[-1]["content"].encode()).digest()
        symbol = SYMBOLS[digest[1] % len(SYMBOLS)]
        if digest[2] < 24:
            ctx.state["notes"] = [*ctx.state.get("notes", []), f"note {digest.hex()[:8]}"][-5:]
        if digest[0] < 20:
            return Decision(Action.BUY, symbol, reasoning=f"probe {digest.hex()[:12]}")
        if digest[0] < 40:
            return Decision(Action.SELL, symbol, reasoning=f"probe {digest.hex()[:12]}")
        return Decision.hold(f"probe {digest.hex()[:12]}")


@pytest.fixture(scope="module")
def real() -> dict[str, list[Bar]]:
    data = load_dataset("demo", SYMBOLS)
    return {s: bars[:N_BARS] for s, bars in data.items()}


def random_walk_after(bars: list[Bar], k: int, seed: int) -> list[Bar]:
    """``bars`` with every bar after index k replaced by a random walk (same times)."""
    rng = random.Random(seed)
    out = list(bars[: k + 1])
    price = float(bars[k].close)
    for bar in bars[k + 1 :]:
        opening = price * math.exp(rng.gauss(0, 0.001))
        price = opening * math.exp(rng.gauss(0, 0.004))
        high = max(opening, price) * (1 + abs(rng.gauss(0, 0.001)))
        low = min(opening, price) * (1 - abs(rng.gauss(0, 0.001)))

        def dec(x: float) -> Decimal:
            return Decimal(f"{x:.4f}")

        out.append(
            Bar(
                bar.symbol,
                bar.time,
                dec(opening),
                dec(high),
                dec(low),
                dec(price),
                Decimal(rng.randint(1, 500)),
            )
        )
    return out


def backtest(data: dict[str, list[Bar]], fill: Any) -> tuple[BacktestResult, PromptProbe]:
    specs = [
        strategy_agent(strategy, params, symbols=SYMBOLS, name=name, interval_seconds=60)
        for name, (strategy, params) in STRATEGIES.items()
    ]
    specs.append(strategy_agent("rsi", symbols=SYMBOLS, name=PROBE, interval_seconds=60))
    probe = PromptProbe()
    config = BacktestConfig(data=data, agents=specs, fill=fill, record_decisions=True)
    return run_backtest(config, brains={PROBE: probe}), probe


def _made(decision: dict[str, Any]) -> dict[str, Any]:
    """What was decided, without its outcome (a next-open fill comes one bar later)."""
    return {k: v for k, v in decision.items() if k not in OUTCOME}


def _by_agent(result: BacktestResult) -> dict[str, Any]:
    return {a.name: a for a in result.agents}


def check_no_lookahead(
    base: tuple[BacktestResult, PromptProbe],
    changed: tuple[BacktestResult, PromptProbe],
    t: datetime,
    *,
    next_open: bool,
) -> dict[str, int]:
    """Everything decided at or before t is identical; returns each agent's trades before t."""
    (a, probe_a), (b, probe_b) = base, changed
    before_t = a.times.index(t) + 1
    assert a.times[:before_t] == b.times[:before_t]
    trades_before: dict[str, int] = {}
    for name, ra in _by_agent(a).items():
        rb = _by_agent(b)[name]
        da = [_made(d) for d in ra.decisions if d["time"] <= t]
        db = [_made(d) for d in rb.decisions if d["time"] <= t]
        assert len(da) > 100
        assert da == db, f"{name}: a decision at or before {t} changed"
        # outcomes (fills) of decisions before t used bars up to t only
        oa = [d for d in ra.decisions if d["time"] < t or (not next_open and d["time"] == t)]
        ob = [d for d in rb.decisions if d["time"] < t or (not next_open and d["time"] == t)]
        assert oa == ob, f"{name}: the outcome of a decision before {t} changed"
        ta = [x for x in ra.trades if x.time < t or (not next_open and x.time == t)]
        tb = [x for x in rb.trades if x.time < t or (not next_open and x.time == t)]
        assert ta == tb, f"{name}: a trade at or before {t} changed"
        assert ra.equity[:before_t] == rb.equity[:before_t], f"{name}: equity before {t} changed"
        # the test has teeth: what comes after t does change
        after_a = [d for d in ra.decisions if d["time"] > t]
        after_b = [d for d in rb.decisions if d["time"] > t]
        assert after_a != after_b, f"{name}: the changed bars changed nothing"
        trades_before[name] = len(ta)
    pa = [p for p in probe_a.prompts if p[0] <= t]
    pb = [p for p in probe_b.prompts if p[0] <= t]
    assert len(pa) > 100 and pa == pb, "an LLM prompt at or before t changed"
    assert [p for p in probe_a.prompts if p[0] > t] != [p for p in probe_b.prompts if p[0] > t]
    return trades_before


def _changed(real: dict[str, list[Bar]], k: int) -> dict[str, list[Bar]]:
    return {
        s: random_walk_after(bars, k, seed=k * 31 + i) for i, (s, bars) in enumerate(real.items())
    }


def _tick_time(real: dict[str, list[Bar]], k: int) -> datetime:
    bars = real["BTC"]
    return bars[k].time + (bars[1].time - bars[0].time)


def test_no_decision_before_t_sees_the_bars_after_t(real: dict[str, list[Bar]]) -> None:
    base = backtest(real, "next_open")
    traded: dict[str, int] = dict.fromkeys([*STRATEGIES, PROBE], 0)
    for k in (130, 210):
        counts = check_no_lookahead(
            base, backtest(_changed(real, k), "next_open"), _tick_time(real, k), next_open=True
        )
        for name, n in counts.items():
            traded[name] = max(traded[name], n)
    assert all(n >= 2 for n in traded.values()), traded  # every agent traded before some t


def test_no_lookahead_with_fills_at_the_close(real: dict[str, list[Bar]]) -> None:
    k = 150
    short = {s: bars[:200] for s, bars in real.items()}
    base = backtest(short, "close")
    counts = check_no_lookahead(
        base, backtest(_changed(short, k), "close"), _tick_time(short, k), next_open=False
    )
    assert sum(counts.values()) > 10


def test_the_prompt_only_shows_the_past(real: dict[str, list[Bar]]) -> None:
    """The prompt's history and time never pass the kernel's clock."""
    _, probe = backtest({s: bars[:120] for s, bars in real.items()}, "next_open")
    period = real["BTC"][1].time - real["BTC"][0].time
    closes = {b.time + period: b for b in real["BTC"][:120]}
    for now, messages in probe.prompts[-20:]:
        user = messages[-1]["content"]
        assert f"TIME {now.isoformat()}" in user
        last_close = closes[now].close  # the bar that closed at `now` is the newest shown
        history = next(line for line in user.splitlines() if line.startswith("HISTORY BTC"))
        assert history.split()[-1] == format(last_close.normalize(), "f") or math.isclose(
            float(history.split()[-1]), float(last_close), rel_tol=1e-6
        )


class Peeker:
    """A cheating brain that reads the next bar: the check above must catch it."""

    kind: ClassVar[str] = "peeker"

    def __init__(self, data: dict[str, list[Bar]]) -> None:
        self.next_close = {b.time: b.close for b in data["BTC"]}  # keyed by open time

    def describe(self) -> str:
        return "peeker"

    async def decide(self, ctx: BrainContext) -> Decision:
        future = self.next_close.get(ctx.now)  # the bar opening at now has not happened yet
        if future is None:
            return Decision.hold("no future")
        return Decision.hold(f"next close {future}")


def test_the_check_catches_a_brain_that_peeks(real: dict[str, list[Bar]]) -> None:
    short = {"BTC": real["BTC"][:120]}
    k = 80
    t = _tick_time(short, k)
    changed = {"BTC": random_walk_after(short["BTC"], k, seed=1)}
    spec = strategy_agent("rsi", symbols=["BTC"], name="peeker", interval_seconds=60)
    runs = [
        run_backtest(
            BacktestConfig(data=data, agents=[spec], record_decisions=True),
            brains={"peeker": Peeker(data)},
        )
        for data in (short, changed)
    ]
    made = [[_made(d) for d in r.agents[0].decisions if d["time"] <= t] for r in runs]
    assert made[0][:-1] == made[1][:-1]  # before t the peeked bars are the same...
    assert made[0][-1] != made[1][-1]  # ...at t it saw bar k+1, which changed: caught


@pytest.mark.parametrize("held", [False, True])
@pytest.mark.parametrize("name", ["rsi", "sma_cross", "ema_cross"])
def test_vectorised_signals_only_see_the_past(
    real: dict[str, list[Bar]], name: str, held: bool
) -> None:
    """A rule brain's ``may_act`` over a whole series, flat or holding: each bar's flag
    depends on that bar and earlier ones only (replacing the bars after k changes no flag up to
    k)."""
    strategy, params = STRATEGIES[name]
    spec = strategy_agent(strategy, params, symbols=["BTC"])
    brain = create_brain(spec.brain, spec.params)
    k = 150
    base = np.array([float(b.close) for b in real["BTC"]])
    changed = np.array([float(b.close) for b in random_walk_after(real["BTC"], k, seed=7)])
    flags, flags_changed = brain.may_act(base, held=held), brain.may_act(changed, held=held)
    assert flags.shape == base.shape
    assert (flags[: k + 1] == flags_changed[: k + 1]).all()
    assert (flags[k + 1 :] != flags_changed[k + 1 :]).any(), "the changed bars changed nothing"
    assert 0 < flags.sum() < flags.size / 2, "the flags must skip most bars"
