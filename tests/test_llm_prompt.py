"""The LLM prompt: exact line formats, the character budget, no look-ahead, determinism."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from phantomex.brains.base import BrainContext
from phantomex.brains.indicators import rsi, sma
from phantomex.brains.llm.profiles import COMPACT, FULL, model_size_billions, profile_for
from phantomex.brains.llm.prompt import build_messages, fmt_money, fmt_number, fmt_percent
from phantomex.domain.models import Bar, Position, Snapshot, Wallet
from phantomex.market.base import PriceHistory

T0 = datetime(2024, 1, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
NOW = T0 + 60 * MINUTE  # bars 0..59 have opened before now
FUTURE_PRICES = ("99999.25", "88888.75", "77777.5")
SOL_LINE = "SOL price=101.5 change_24h=n/a (no price history yet)"  # SOL has no bars


def bar(symbol: str, i: int, close: str) -> Bar:
    price = Decimal(close)
    return Bar(symbol, T0 + i * MINUTE, price, price, price, price, Decimal(1))


def btc_close(i: int) -> str:
    return str(Decimal(27000) + Decimal(i) * Decimal("3.5") - Decimal(i % 4) * Decimal("7.25"))


def eth_close(i: int) -> str:
    return str(Decimal(1800) - Decimal(i) * Decimal("0.75") + Decimal(i % 3))


def history(*, future: bool) -> PriceHistory:
    h = PriceHistory()
    h.append(bar("BTC", i, btc_close(i)) for i in range(60))
    h.append(bar("ETH", i, eth_close(i)) for i in range(60))
    if future:  # bars at and after the clock: must never reach the prompt
        h.append(bar("BTC", 60 + i, p) for i, p in enumerate(FUTURE_PRICES))
        h.append(bar("ETH", 60 + i, p) for i, p in enumerate(FUTURE_PRICES))
    return h


def wallet(order: tuple[str, ...] = ("BTC", "ETH")) -> Wallet:
    w = Wallet("a1", allowance=Decimal(20000), cash=Decimal("5000.126"))
    positions = {
        "BTC": Position("BTC", Decimal("0.5"), Decimal("13500.05"), T0),
        "ETH": Position("ETH", Decimal("2"), Decimal("3700"), T0),
    }
    for symbol in order:
        w.positions[symbol] = positions[symbol]
    return w


def make_ctx(*, future: bool = True, order: tuple[str, ...] = ("BTC", "ETH")) -> BrainContext:
    snaps = {
        "BTC": Snapshot("BTC", NOW, Decimal("27500"), Decimal("-2.314")),
        "ETH": Snapshot("ETH", NOW, Decimal("1800.25"), Decimal("1.2")),
        "SOL": Snapshot("SOL", NOW, Decimal("101.5"), None),
    }
    prices = {s: snaps[s] for s in (*order, "SOL")}
    return BrainContext(
        agent_id="a1",
        agent_name="tester",
        goal="ctx goal",
        now=NOW,
        symbols=["BTC", "ETH", "SOL"],
        prices=prices,
        history=history(future=future).view(NOW),
        wallet=wallet(order),
        max_buy_quantity={"BTC": Decimal("0.1812"), "ETH": Decimal("2.5")},
    )


def decisions(n: int = 3) -> list[dict[str, Any]]:
    return [
        {
            "time": T0 + (10 + i) * MINUTE,
            "action": "buy" if i % 2 == 0 else "sell",
            "symbol": "BTC",
            "status": "executed",
            "reason": f"reason number {i}\nsecond line",
            "price": Decimal("27000.5") + i,
        }
        for i in range(n)
    ]


def build(ctx: BrainContext | None = None, **kwargs: Any) -> list[dict[str, Any]]:
    args: dict[str, Any] = {
        "goal": "Grow the wallet carefully",
        "recent_decisions": decisions(),
        "notes": ["first note", "second note"],
        "mode_prompt_json": False,
    }
    args.update(kwargs)
    return build_messages(ctx or make_ctx(), **args)


def text_of(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m["content"] for m in messages)


def user_lines(messages: list[dict[str, Any]]) -> list[str]:
    return str(messages[1]["content"]).splitlines()


# --------------------------------------------------------------------------- formats


def test_messages_are_system_then_user() -> None:
    messages = build()
    assert [m["role"] for m in messages] == ["system", "user"]
    assert all(isinstance(m["content"], str) and m["content"] for m in messages)


def test_holding_lines_have_the_exact_form() -> None:
    lines = user_lines(build())
    assert "HOLDING BTC qty=0.5 avg_cost=27000.1 mark=27500 unrealized_pnl=249.95" in lines
    assert "HOLDING ETH qty=2 avg_cost=1850 mark=1800.25 unrealized_pnl=-99.5" in lines
    pattern = re.compile(
        r"HOLDING [A-Z0-9.\-]+ qty=\S+ avg_cost=\S+ mark=\S+ unrealized_pnl=-?\d+\.\d{1,2}"
    )
    holding = [line for line in lines if line.startswith("HOLDING ")]
    assert len(holding) == 2 and all(pattern.fullmatch(line) for line in holding)


def test_a_round_pnl_keeps_one_decimal() -> None:
    ctx = make_ctx()
    ctx.wallet.positions["BTC"] = Position("BTC", Decimal("0.5"), Decimal("13500"), T0)
    assert "HOLDING BTC qty=0.5 avg_cost=27000 mark=27500 unrealized_pnl=250.0" in user_lines(
        build(ctx)
    )


def test_no_holdings_is_said_explicitly() -> None:
    ctx = make_ctx()
    ctx.wallet.positions.clear()
    lines = user_lines(build(ctx))
    assert "HOLDING none" in lines
    assert not any(line.startswith("HOLDING ") and line != "HOLDING none" for line in lines)


def test_price_lines_have_the_exact_form() -> None:
    lines = user_lines(build())
    assert "BTC price=27500 change_24h=-2.31%" in lines
    assert "ETH price=1800.25 change_24h=+1.20%" in lines
    assert SOL_LINE in lines
    price_lines = [line for line in lines if " price=" in line and " change_24h=" in line]
    assert [line.split()[0] for line in price_lines] == ["BTC", "ETH", "SOL"]  # ctx.symbols order


def test_missing_price_is_na() -> None:
    ctx = make_ctx()
    del ctx.prices["SOL"]
    assert "SOL price=n/a change_24h=n/a" in user_lines(build(ctx))


def test_time_wallet_goal_and_rules() -> None:
    messages = build()
    lines = user_lines(messages)
    assert lines[0] == "GOAL: Grow the wallet carefully"
    assert f"TIME {NOW.isoformat()}" in lines
    # equity = cash + 0.5 * 27500 + 2 * 1800.25
    assert "WALLET cash=5000.13 equity=22350.63" in lines
    system = messages[0]["content"]
    assert "buy, sell, hold" in system
    assert "Allowed symbols: BTC, ETH, SOL." in system
    assert "only sell what you hold" in system
    assert "BTC 0.1812, ETH 2.5" in system
    assert '"notional"' in system and "null" in system


def test_history_is_the_last_closes_oldest_first() -> None:
    lines = user_lines(build())
    line = next(line for line in lines if line.startswith("HISTORY BTC "))
    closes = line.split(": ", 1)[1].split()
    assert closes == [fmt_number(Decimal(btc_close(i)), 7) for i in range(40, 60)]
    assert line.startswith("HISTORY BTC 1m closes (oldest first): ")


def test_indicators_come_from_past_bars_only() -> None:
    lines = user_lines(build())
    line = next(line for line in lines if line.startswith("INDICATORS BTC "))
    past = np.array([float(btc_close(i)) for i in range(60)])
    assert f"rsi14={rsi(past, 14)[-1]:.1f}" in line
    assert f"sma10={fmt_number(float(sma(past, 10)[-1]), 7)}" in line
    assert f"sma30={fmt_number(float(sma(past, 30)[-1]), 7)}" in line
    assert "INDICATORS SOL n/a (no bars yet)" in lines  # no bars of SOL: nothing computed


def test_short_history_gives_na_indicators() -> None:
    h = PriceHistory()
    h.append(bar("BTC", i, btc_close(i)) for i in range(5))
    ctx = make_ctx()
    ctx.history = h.view(NOW)
    line = next(li for li in user_lines(build(ctx)) if li.startswith("INDICATORS BTC "))
    assert line == (
        "INDICATORS BTC rsi14=n/a sma10=n/a sma30=n/a ema10=n/a "
        "(5 bars: rsi14 needs 15, sma10 needs 10, sma30 needs 30, ema10 needs 10)"
    )


def test_an_indicator_short_of_bars_says_how_many_it_needs() -> None:
    h = PriceHistory()
    h.append(bar("BTC", i, btc_close(i)) for i in range(20))
    ctx = make_ctx()
    ctx.history = h.view(NOW)
    lines = user_lines(build(ctx))
    line = next(li for li in lines if li.startswith("INDICATORS BTC "))
    assert line.endswith(" (20 bars: sma30 needs 30)") and "rsi14=n/a" not in line
    assert "INDICATORS ETH n/a (no bars yet)" in lines
    assert "INDICATORS SOL n/a (no bars yet)" in lines


def test_a_missing_24h_change_comes_from_the_history_or_says_what_is_missing() -> None:
    """A snapshot without a 24h change: computed from a history that reaches back a day;
    at the very start of the data the line says how much history there is instead."""
    day = [bar("SOL", i, str(100 + i % 7)) for i in range(25 * 60)]  # 25 hours of bars
    now = T0 + 25 * 60 * MINUTE
    h = PriceHistory()
    h.append(day)
    ctx = make_ctx()
    ctx.now = now
    ctx.history = h.view(now)
    ctx.prices["SOL"] = Snapshot("SOL", now, Decimal("101.5"), None)
    # the latest bar opened at 24:59; a day earlier the bar of 00:59 closed at 100 + 59 % 7 = 103
    assert "SOL price=101.5 change_24h=-1.46%" in user_lines(build(ctx))

    early = PriceHistory()
    early.append(day[:90])  # the data start 90 minutes before the clock
    ctx.now = T0 + 90 * MINUTE
    ctx.history = early.view(ctx.now)
    assert (
        f"SOL price=101.5 change_24h=n/a (only 1h 30m of price history, since {T0.isoformat()}; "
        "change over it +1.50%)"
    ) in user_lines(build(ctx))


def test_decision_and_note_lines() -> None:
    lines = user_lines(build())
    decision_lines = [line for line in lines if line.startswith("DECISION ")]
    assert decision_lines[0] == (
        f"DECISION {(T0 + 10 * MINUTE).isoformat()} buy BTC price=27000.5 status=executed "
        'reason="reason number 0 second line"'
    )
    assert len(decision_lines) == 3
    assert [line for line in lines if line.startswith("NOTE ")] == [
        "NOTE first note",
        "NOTE second note",
    ]


def test_decisions_are_shown_oldest_first_whatever_the_input_order() -> None:
    newest_first = list(reversed(decisions(4)))
    lines = user_lines(build(recent_decisions=newest_first))
    times = [line.split()[1] for line in lines if line.startswith("DECISION ")]
    assert times == sorted(times) and len(times) == 4


def test_schema_text_only_in_prompt_json_mode() -> None:
    plain = build(mode_prompt_json=False)[0]["content"]
    strict = build(mode_prompt_json=True)[0]["content"]
    assert '"additionalProperties":false' in strict
    assert '"additionalProperties"' not in plain
    for system in (plain, strict):
        assert "ONE JSON object" in system and '"action": "buy" | "sell" | "hold"' in system


# --------------------------------------------------------------------------- no look-ahead


def test_no_data_after_now_appears() -> None:
    late = {
        "time": NOW + 5 * MINUTE,
        "action": "sell",
        "symbol": "BTC",
        "status": "executed",
        "reason": "from the future",
        "price": Decimal("66666.5"),
    }
    with_future = build(make_ctx(future=True), recent_decisions=[*decisions(), late])
    text = text_of(with_future)
    for price in (*FUTURE_PRICES, "99999", "88888", "77777", "66666"):
        assert price not in text
    assert "from the future" not in text
    # identical to a history that never had those bars
    without_future = build(make_ctx(future=False))
    assert with_future == without_future


def test_a_view_for_a_later_clock_is_still_cut_at_ctx_now() -> None:
    ctx = make_ctx(future=True)
    ctx.history = history(future=True).view(NOW + 10 * MINUTE)  # a wrong, later view
    text = text_of(build(ctx))
    for price in FUTURE_PRICES:
        assert price not in text


# --------------------------------------------------------------------------- budget


def big_inputs() -> dict[str, Any]:
    many = [
        {
            "time": T0 + i * MINUTE,
            "action": "hold",
            "symbol": "ETH",
            "status": "held",
            "reason": f"decision {i:02d} " + "x" * 80,
            "price": None,
        }
        for i in range(40)
    ]
    return {
        "recent_decisions": many,
        "notes": [f"note {i:02d} " + "y" * 120 for i in range(40)],
    }


def test_budget_is_respected_by_dropping_the_oldest() -> None:
    unlimited = build(**big_inputs(), budget_chars=10**9)
    assert sum(len(m["content"]) for m in unlimited) > 9000
    messages = build(**big_inputs(), budget_chars=5000)
    assert sum(len(m["content"]) for m in messages) <= 5000
    text = text_of(messages)
    lines = user_lines(messages)
    # rules, wallet, holdings and prices always stay
    assert "HOLDING BTC qty=0.5 avg_cost=27000.1 mark=27500 unrealized_pnl=249.95" in lines
    assert "BTC price=27500 change_24h=-2.31%" in lines
    assert SOL_LINE in lines
    assert "Allowed symbols: BTC, ETH, SOL." in text
    # the newest of each kind survives, the oldest goes first
    assert "decision 39" in text and "decision 00" not in text
    assert "note 39" in text and "note 00" not in text
    assert 0 < sum(line.startswith("DECISION ") for line in lines) < 40
    assert any(line.startswith("HISTORY BTC ") for line in lines)


def test_tight_budget_trims_history_from_the_oldest_close() -> None:
    messages = build(**big_inputs(), budget_chars=2500)
    assert sum(len(m["content"]) for m in messages) <= 2500
    line = next(li for li in user_lines(messages) if li.startswith("HISTORY BTC "))
    closes = line.split(": ", 1)[1].split()
    assert 0 < len(closes) < 20
    assert closes == [fmt_number(Decimal(btc_close(i)), 7) for i in range(60 - len(closes), 60)]


def test_budget_smaller_than_the_essentials_keeps_them() -> None:
    messages = build(**big_inputs(), budget_chars=100)
    lines = user_lines(messages)
    assert "BTC price=27500 change_24h=-2.31%" in lines
    assert any(line.startswith("HOLDING ETH ") for line in lines)
    assert not any(line.startswith(("DECISION ", "NOTE ", "HISTORY ")) for line in lines)
    assert "buy, sell, hold" in messages[0]["content"]


def test_default_budget_holds_for_a_normal_context() -> None:
    messages = build(**big_inputs())
    assert sum(len(m["content"]) for m in messages) <= 12000


# --------------------------------------------------------------------------- determinism


def test_output_is_deterministic() -> None:
    first = build(mode_prompt_json=True)
    second = build(mode_prompt_json=True)
    assert first == second
    reordered = build(make_ctx(order=("ETH", "BTC")), mode_prompt_json=True)
    assert reordered == first


def test_number_formats() -> None:
    assert fmt_number(Decimal("27000.50")) == "27000.5"
    assert fmt_number(Decimal("2.7E+4")) == "27000"
    assert fmt_number(Decimal("0.00000012345")) == "0.00000012345"
    assert fmt_number(Decimal("123456.789"), 7) == "123456.8"
    assert fmt_number(0.1) == "0.1"
    assert fmt_number(None) == "n/a"
    assert fmt_number(Decimal("NaN")) == "n/a"
    assert fmt_money(Decimal(250)) == "250.0"
    assert fmt_money(Decimal("249.955")) == "249.96"
    assert fmt_money(Decimal("-0.001")) == "0.0"
    assert fmt_percent(Decimal("-2.314")) == "-2.31%"
    assert fmt_percent(Decimal("0")) == "+0.00%"
    assert fmt_percent(None) == "n/a"


# --------------------------------------------------------------------------- prompt profiles


@pytest.mark.parametrize(
    ("model", "size", "profile"),
    [
        ("smollm2-135m", 0.135, "compact"),
        ("qwen2.5:0.5b", 0.5, "compact"),
        ("gemma3:270m", 0.27, "compact"),
        ("llama3.2:3b", 3.0, "compact"),
        ("llama3.1:8b", 8.0, "full"),
        ("mixtral:8x7b", None, "full"),  # no plain size: presumably large
        ("gpt-4o-mini", None, "full"),
        ("deepseek-r1:14b", 14.0, "full"),
    ],
)
def test_auto_picks_the_compact_profile_for_small_models(
    model: str, size: float | None, profile: str
) -> None:
    assert model_size_billions(model) == size
    assert profile_for("auto", model).name == profile
    assert profile_for("full", "smollm2-135m") is FULL
    assert profile_for("compact", "llama3.1:8b") is COMPACT


def test_the_compact_profile_gives_fewer_rounder_numbers_and_an_example() -> None:
    """Issue 16, defect 9: a small model copies what it reads."""
    ctx = make_ctx()
    ctx.max_buy_quantity["BTC"] = Decimal("0.181234567891")
    system, user = (m["content"] for m in build(ctx, profile=COMPACT, mode_prompt_json=True))
    assert "Max buy quantity right now (larger buys are cut or rejected): BTC 0.181," in system
    assert "Example answer:\n{" in system
    assert "JSON schema" not in system and '"quantity": "<units>" or null' in system
    closes = re.search(r"HISTORY BTC 1m closes \(oldest first\): (.*)", user)
    assert closes is not None
    assert len(closes.group(1).split()) == COMPACT.history_bars
    assert all(len(c.replace(".", "")) <= 5 for c in closes.group(1).split())
    assert "OUTCOMES OF YOUR PAST DECISIONS (facts, oldest first)" in user
    assert "OUTCOME 2024" in user and "reason=" not in user and "reason number" not in user
    full_system, full_user = (m["content"] for m in build(ctx, mode_prompt_json=True))
    assert "BTC 0.181234567891" in full_system and "JSON schema of the answer" in full_system
    assert 'reason="reason number 0 second line"' in full_user
    assert len(system) + len(user) < len(full_system) + len(full_user) - 1000
