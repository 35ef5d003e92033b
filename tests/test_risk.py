"""Risk engine: price checks, pre-trade checks and sizing, forced exits, daily loss, drawdown."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from phantomex.domain.models import Action, Decision, Position, Side, Snapshot, Wallet
from phantomex.domain.risk import RiskProfile, RiskState
from phantomex.risk.engine import RiskEngine, Verdict, price_problem

D = Decimal
NOW = datetime(2024, 3, 10, 12, 0, tzinfo=UTC)
SYMBOLS = ["BTC", "ETH"]


def snap(price: Decimal | str, symbol: str = "BTC", age: float = 0) -> Snapshot:
    return Snapshot(symbol, NOW - timedelta(seconds=age), D(price))


def make_wallet(cash: str = "10000", **positions: tuple[str, str]) -> Wallet:
    """``positions``: symbol -> (quantity, cost)."""
    w = Wallet("a1", allowance=D(cash), cash=D(cash))
    for sym, (qty, cost) in positions.items():
        w.positions[sym] = Position(sym, D(qty), D(cost), NOW - timedelta(hours=1))
    return w


def profile(**kw: Any) -> RiskProfile:
    base: dict[str, Any] = {"cooldown_seconds": 0}
    base.update(kw)
    return RiskProfile(**base)


def check(
    decision: Decision,
    *,
    prof: RiskProfile | None = None,
    state: RiskState | None = None,
    wallet: Wallet | None = None,
    prices: dict[str, Snapshot] | None = None,
    halted: str | None = None,
    engine: RiskEngine | None = None,
) -> Verdict:
    verdict = (engine or RiskEngine()).check(
        decision,
        profile=prof or profile(),
        state=state or RiskState(),
        wallet=wallet or make_wallet(),
        prices={"BTC": snap("100"), "ETH": snap("10", "ETH")} if prices is None else prices,
        allowed_symbols=SYMBOLS,
        now=NOW,
        halted=halted,
    )
    if not verdict.approved:
        assert verdict.reason, "every rejection says why"
        assert verdict.checks, "every rejection lists its checks"
    return verdict


def buy(symbol: str = "BTC", **kw: Any) -> Decision:
    return Decision(Action.BUY, symbol, **kw)


def sell(symbol: str = "BTC", **kw: Any) -> Decision:
    return Decision(Action.SELL, symbol, **kw)


# ----------------------------------------------------------------------------- price_problem


def test_price_problem_missing() -> None:
    assert price_problem(None, NOW, 300) == "no price"


@pytest.mark.parametrize("price", ["0", "-1", "NaN", "Infinity", "sNaN"])
def test_price_problem_invalid(price: str) -> None:
    problem = price_problem(snap(price), NOW, 300)
    assert problem is not None and "invalid" in problem


def test_price_problem_stale_only_beyond_max_age() -> None:
    assert price_problem(snap("100", age=300), NOW, 300) is None
    problem = price_problem(snap("100", age=301), NOW, 300)
    assert problem is not None and "stale" in problem


def test_price_problem_fresh() -> None:
    assert price_problem(snap("100", age=5), NOW, 300) is None


# ----------------------------------------------------------------------------- check: rejections


def test_hold_is_rejected_as_hold() -> None:
    v = check(Decision.hold("nothing to do"))
    assert not v.approved
    assert v.reason.startswith("hold")
    assert v.checks[-1].name == "action" and not v.checks[-1].passed


def test_halted_rejects_with_the_halt_reason() -> None:
    v = check(buy(), halted="kill switch engaged")
    assert not v.approved
    assert v.reason == "kill switch engaged"
    assert v.checks[-1].name == "halt"


def test_unknown_or_missing_symbol_is_rejected() -> None:
    for d in (buy("XRP"), Decision(Action.BUY, None)):
        v = check(d)
        assert not v.approved
        assert v.checks[-1].name == "symbol" and not v.checks[-1].passed


def test_stale_price_is_rejected() -> None:
    v = check(buy(), prices={"BTC": snap("100", age=3600)})
    assert not v.approved
    assert "stale" in v.reason
    assert v.checks[-1].name == "price"


def test_missing_or_invalid_price_is_rejected() -> None:
    for prices in ({}, {"BTC": snap("0")}, {"BTC": snap("NaN")}):
        v = check(buy(), prices=prices)
        assert not v.approved and v.checks[-1].name == "price"


def test_cooldown_blocks_a_trade_too_soon_after_the_last() -> None:
    prof = profile(cooldown_seconds=60)
    soon = RiskState(last_trade_at=NOW - timedelta(seconds=30))
    v = check(buy(), prof=prof, state=soon)
    assert not v.approved
    assert "cooldown" in v.reason
    assert v.checks[-1].name == "cooldown"
    later = RiskState(last_trade_at=NOW - timedelta(seconds=60))
    assert check(buy(), prof=prof, state=later).approved


def test_daily_loss_pause_rejects_until_it_ends() -> None:
    paused = RiskState(paused_until=NOW + timedelta(hours=1))
    v = check(buy(), state=paused)
    assert not v.approved
    assert "daily loss" in v.reason
    over = RiskState(paused_until=NOW)
    assert check(buy(), state=over).approved


@pytest.mark.parametrize("field", ["quantity", "notional"])
@pytest.mark.parametrize("value", ["-1", "0", "NaN", "Infinity"])
def test_non_positive_or_non_finite_size_is_rejected(field: str, value: str) -> None:
    d = buy(quantity=D(value)) if field == "quantity" else buy(notional=D(value))
    v = check(d)
    assert not v.approved
    assert v.checks[-1].name == field
    assert field in v.reason


def test_sell_of_something_not_held_is_rejected() -> None:
    v = check(sell("ETH"), wallet=make_wallet(BTC=("1", "100")))
    assert not v.approved
    assert "not held" in v.reason
    assert v.checks[-1].name == "holding" and not v.checks[-1].passed


def test_min_order_notional_rejects_dust() -> None:
    v = check(buy(quantity=D("0.009")), prof=profile(min_order_notional=D(1)))
    assert not v.approved
    assert v.checks[-1].name == "min_notional"
    assert check(buy(quantity=D("0.01")), prof=profile(min_order_notional=D(1))).approved


# ----------------------------------------------------------------------------- check: sizing


def test_buy_without_size_uses_max_allocation_of_equity() -> None:
    v = check(buy(), prof=profile(max_allocation_pct=D(25)))
    assert v.approved
    assert (v.side, v.symbol, v.price) == (Side.BUY, "BTC", D(100))
    assert v.quantity == D(25)  # 25% of 10000 at 100
    assert all(c.passed for c in v.checks)


def test_equity_includes_marked_holdings() -> None:
    # cash 5000 + 50 ETH at 100 (marked, cost irrelevant) = equity 10000
    w = make_wallet("5000", ETH=("50", "1"))
    prices = {"BTC": snap("100"), "ETH": snap("100", "ETH")}
    v = check(buy(), prof=profile(max_allocation_pct=D(10)), wallet=w, prices=prices)
    assert v.approved and v.quantity == D(10)


def test_buy_without_size_is_capped_by_cash_including_fee() -> None:
    # equity 10000 (mostly ETH), cash 1001: the cash covers 10 BTC at 100 plus 10 bps fee
    w = make_wallet("1001", ETH=("899.9", "8999"))
    v = check(buy(), prof=profile(max_allocation_pct=D(50)), wallet=w)
    assert v.approved
    assert v.quantity == D(10)
    assert v.quantity * D(100) * D("1.001") <= w.cash


def test_buy_is_capped_by_max_position() -> None:
    # equity 10000, already 40 BTC (4000 at mark): room to 50% is 1000 -> 10 BTC
    w = make_wallet("6000", BTC=("40", "3000"))
    v = check(buy(), prof=profile(max_allocation_pct=D(100), max_position_pct=D(50)), wallet=w)
    assert v.approved
    assert v.quantity == D(10)


def test_buy_with_position_already_at_its_limit_is_rejected() -> None:
    w = make_wallet("5000", BTC=("50", "5000"))
    v = check(buy(), prof=profile(max_position_pct=D(50)), wallet=w)
    assert not v.approved
    assert "no room" in v.reason


def test_no_room_rejection_records_a_failed_check() -> None:
    w = make_wallet("5000", BTC=("50", "5000"))
    v = check(buy(quantity=D(1)), prof=profile(max_position_pct=D(50)), wallet=w)
    assert not v.approved
    assert any(not c.passed for c in v.checks), v.checks


def test_explicit_quantity_within_limits_is_kept() -> None:
    v = check(buy(quantity=D("3.5")))
    assert v.approved and v.quantity == D("3.5")


def test_notional_is_converted_to_quantity() -> None:
    v = check(buy(notional=D(500)))
    assert v.approved and v.quantity == D(5)


def test_explicit_quantity_beyond_limits_is_resized_when_allowed() -> None:
    v = check(buy(quantity=D(1000)), prof=profile(resize_to_fit=True, max_allocation_pct=D(25)))
    assert v.approved
    assert v.quantity == D(25)
    size = next(c for c in v.checks if c.name == "size")
    assert size.passed and "resized" in size.detail


def test_explicit_quantity_beyond_limits_is_rejected_when_resize_is_off() -> None:
    v = check(buy(quantity=D(1000)), prof=profile(resize_to_fit=False))
    assert not v.approved
    assert "exceeds" in v.reason
    assert v.checks[-1].name == "size" and not v.checks[-1].passed


def test_sell_without_size_sells_the_whole_holding() -> None:
    w = make_wallet(BTC=("1.2345", "100"))
    v = check(sell(), wallet=w)
    assert v.approved
    assert (v.side, v.quantity, v.price) == (Side.SELL, D("1.2345"), D(100))
    assert v.checks[-1].to_json() == {
        "name": "holding",
        "passed": True,
        "detail": "sell 1.2345 of 1.2345 BTC",
    }


def test_sell_beyond_holding_is_resized_or_rejected() -> None:
    w = make_wallet(BTC=("2", "100"))
    v = check(sell(quantity=D(5)), wallet=w, prof=profile(resize_to_fit=True))
    assert v.approved and v.quantity == D(2)
    v = check(sell(quantity=D(5)), wallet=w, prof=profile(resize_to_fit=False))
    assert not v.approved and "exceeds" in v.reason


def test_partial_sell_by_notional() -> None:
    w = make_wallet(BTC=("2", "100"))
    v = check(sell(notional=D(50)), wallet=w)
    assert v.approved and v.quantity == D("0.5")
    assert v.checks[-1].detail == "sell 0.5 of 2 BTC"
    v = check(sell(quantity=D("0.25")), wallet=w)
    assert v.checks[-1].detail == "sell 0.25 of 2 BTC"


def test_max_buy_quantity_never_exceeds_cash_by_more_than_rounding() -> None:
    engine = RiskEngine(fee_bps=D(10))
    w = make_wallet("10000")
    for price in ("3", "7", "0.07012", "67123.45678901"):
        p = D(price)
        q = engine.max_buy_quantity(
            profile(max_allocation_pct=D(100), max_position_pct=D(100)), w, "BTC", p, D(10000)
        )
        spent = q * p * D("1.001")
        assert spent <= w.cash * (1 + D("1e-25"))
        assert spent >= w.cash * (1 - D("1e-25"))


# ----------------------------------------------------------------------------- forced exits


def test_stop_loss_exit() -> None:
    w = make_wallet(BTC=("2", "200"))  # avg 100
    exits = RiskEngine().forced_exits(profile(stop_loss_pct=D(5)), w, {"BTC": snap("95")}, NOW)
    assert [(e.symbol, e.quantity, e.kind) for e in exits] == [("BTC", D(2), "stop_loss")]
    assert (
        RiskEngine().forced_exits(profile(stop_loss_pct=D(5)), w, {"BTC": snap("95.01")}, NOW) == []
    )


def test_take_profit_exit() -> None:
    w = make_wallet(BTC=("2", "200"))
    exits = RiskEngine().forced_exits(profile(take_profit_pct=D(10)), w, {"BTC": snap("110")}, NOW)
    assert [(e.symbol, e.kind) for e in exits] == [("BTC", "take_profit")]
    assert exits[0].detail
    assert (
        RiskEngine().forced_exits(profile(take_profit_pct=D(10)), w, {"BTC": snap("109.99")}, NOW)
        == []
    )


def test_max_hold_exit() -> None:
    w = make_wallet(BTC=("2", "200"))  # opened an hour ago
    prices = {"BTC": snap("100")}
    assert [
        e.kind for e in RiskEngine().forced_exits(profile(max_hold_minutes=60), w, prices, NOW)
    ] == ["max_hold"]
    assert RiskEngine().forced_exits(profile(max_hold_minutes=61), w, prices, NOW) == []


def test_no_forced_exit_on_stale_or_missing_prices() -> None:
    w = make_wallet(BTC=("2", "200"), ETH=("1", "10"))
    prof = profile(stop_loss_pct=D(5), max_hold_minutes=1)
    prices = {"BTC": snap("1", age=10_000)}  # would be a -99% stop-loss; ETH has no price
    assert RiskEngine().forced_exits(prof, w, prices, NOW) == []


def test_forced_exits_cover_each_symbol_in_order() -> None:
    w = make_wallet(ETH=("1", "10"), BTC=("2", "200"))
    prices = {"BTC": snap("50"), "ETH": snap("20", "ETH")}
    exits = RiskEngine().forced_exits(profile(), w, prices, NOW)
    assert [(e.symbol, e.kind) for e in exits] == [("BTC", "stop_loss"), ("ETH", "take_profit")]


def test_disabled_rules_force_nothing() -> None:
    w = make_wallet(BTC=("2", "200"))
    prof = profile(stop_loss_pct=None, take_profit_pct=None, max_hold_minutes=None)
    assert RiskEngine().forced_exits(prof, w, {"BTC": snap("1")}, NOW) == []
    assert RiskEngine().forced_exits(prof, w, {"BTC": snap("1000")}, NOW) == []


# ----------------------------------------------------------------------------- update


def test_update_starts_the_day_and_tracks_the_peak() -> None:
    engine, state = RiskEngine(), RiskState()
    assert engine.update(profile(), state, D(10000), NOW) is None
    assert state.day == NOW.date() and state.day_start_equity == D(10000)
    assert state.peak_equity == D(10000)
    assert engine.update(profile(), state, D(11000), NOW + timedelta(hours=1)) is None
    assert state.peak_equity == D(11000)
    assert state.day_start_equity == D(10000)  # same day
    assert engine.update(profile(), state, D(10800), NOW + timedelta(hours=2)) is None
    assert state.peak_equity == D(11000)


def test_new_day_resets_day_start_equity() -> None:
    engine, state = RiskEngine(), RiskState()
    engine.update(profile(), state, D(10000), NOW)
    engine.update(profile(), state, D(10400), NOW + timedelta(days=1))
    assert state.day == (NOW + timedelta(days=1)).date()
    assert state.day_start_equity == D(10400)


def test_drawdown_is_hit_at_the_limit() -> None:
    engine = RiskEngine()
    prof = profile(max_drawdown_pct=D(20), daily_loss_limit_pct=None)
    state = RiskState(peak_equity=D(10000), day=NOW.date(), day_start_equity=D(10000))
    assert engine.update(prof, state, D("8000.01"), NOW) is None
    assert engine.update(prof, state, D(8000), NOW) == "drawdown"
    assert state.peak_equity == D(10000)


def test_drawdown_takes_precedence_over_daily_loss() -> None:
    state = RiskState(peak_equity=D(10000), day=NOW.date(), day_start_equity=D(10000))
    assert RiskEngine().update(profile(), state, D(7000), NOW) == "drawdown"


def test_daily_loss_pauses_until_next_utc_midnight() -> None:
    engine = RiskEngine()
    prof = profile(daily_loss_limit_pct=D(5), max_drawdown_pct=None)
    state = RiskState()
    engine.update(prof, state, D(10000), NOW)
    assert engine.update(prof, state, D("9500.01"), NOW + timedelta(hours=1)) is None
    assert state.paused_until is None
    assert engine.update(prof, state, D(9500), NOW + timedelta(hours=2)) == "daily_loss"
    paused = state.paused_until
    assert paused == datetime(2024, 3, 11, tzinfo=UTC)
    assert paused is not None and paused.utcoffset() == timedelta(0)
    # the pause blocks trading now
    assert not check(buy(), state=state).approved


def test_disabled_limits_never_fire() -> None:
    prof = profile(daily_loss_limit_pct=None, max_drawdown_pct=None)
    state = RiskState(peak_equity=D(10000), day=NOW.date(), day_start_equity=D(10000))
    assert RiskEngine().update(prof, state, D(1), NOW) is None
    assert state.paused_until is None


# ----------------------------------------------------------------------------- state and profile


def test_risk_state_json_round_trip() -> None:
    state = RiskState(
        peak_equity=D("12345.678901234567890123456789"),
        day=date(2024, 3, 10),
        day_start_equity=D("0.1"),
        last_trade_at=NOW - timedelta(seconds=7),
        paused_until=datetime(2024, 3, 11, tzinfo=UTC),
    )
    data = json.loads(json.dumps(state.to_json()))
    assert RiskState.from_json(data) == state
    assert RiskState.from_json(None) == RiskState()
    assert RiskState.from_json(RiskState().to_json()) == RiskState()


def test_default_profile_is_valid() -> None:
    p = RiskProfile()
    assert p.max_allocation_pct == 25 and p.resize_to_fit is True


@pytest.mark.parametrize(
    "bad",
    [
        {"max_allocation_pct": "-1"},
        {"max_allocation_pct": "0"},
        {"max_allocation_pct": "100.01"},
        {"max_allocation_pct": "NaN"},
        {"max_position_pct": "Infinity"},
        {"max_position_pct": "101"},
        {"stop_loss_pct": "-5"},
        {"stop_loss_pct": "100"},
        {"stop_loss_pct": "NaN"},
        {"take_profit_pct": "0"},
        {"take_profit_pct": "NaN"},
        {"daily_loss_limit_pct": "150"},
        {"max_drawdown_pct": "-0.1"},
        {"cooldown_seconds": -1},
        {"max_price_age_seconds": 0},
        {"max_hold_minutes": 0},
        {"min_order_notional": "-1"},
        {"min_order_notional": "NaN"},
        {"leverage": 10},
    ],
)
def test_risk_profile_validation_rejects(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RiskProfile(**bad)


def test_risk_profile_accepts_boundaries_and_disabled_rules() -> None:
    p = RiskProfile(
        max_allocation_pct=D(100),
        max_position_pct=D(100),
        stop_loss_pct=None,
        take_profit_pct=None,
        daily_loss_limit_pct=None,
        max_drawdown_pct=None,
        cooldown_seconds=0,
        min_order_notional=D(0),
    )
    assert RiskProfile.model_validate(p.model_dump(mode="json")) == p
