"""Properties of the risk engine's pre-trade check over any wallet, price, size and profile
(garbage included): it never raises, every rejection says why, and an approved order is finite,
positive, affordable and within the allocation, position and holding limits."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from phantomex.domain.models import Action, Decision, Position, Snapshot, Wallet
from phantomex.domain.money import BPS, is_valid_price
from phantomex.domain.risk import RiskProfile, RiskState
from phantomex.risk.engine import RiskEngine

NOW = datetime(2024, 3, 10, 12, tzinfo=UTC)
TOLERANCE = Decimal("1e-9")  # relative: Decimal division rounds at 28 digits
GARBAGE = [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal(-5), Decimal(0)]

amounts = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(10**9), places=4)
maybe_garbage = st.one_of(amounts, st.sampled_from(GARBAGE))
pcts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(100), places=2)


@st.composite
def wallets(draw: st.DrawFn) -> Wallet:
    cash = draw(st.decimals(min_value=Decimal(0), max_value=Decimal(10**7), places=2))
    wallet = Wallet("a1", allowance=Decimal(10_000), cash=cash)
    for sym in draw(st.lists(st.sampled_from(["BTC", "ETH"]), unique=True)):
        qty, cost = draw(amounts), draw(amounts)
        wallet.positions[sym] = Position(sym, qty, cost, NOW - timedelta(hours=1))
    return wallet


@settings(max_examples=300, deadline=None)
@given(
    action=st.sampled_from([Action.BUY, Action.SELL]),
    size=st.sampled_from(["quantity", "notional", None]),
    amount=maybe_garbage,
    price=maybe_garbage,
    wallet=wallets(),
    allocation=pcts,
    position=pcts,
    resize=st.booleans(),
    min_notional=st.decimals(min_value=Decimal(0), max_value=Decimal(100), places=2),
)
def test_approved_orders_are_affordable_and_within_limits(
    action: Action,
    size: str | None,
    amount: Decimal,
    price: Decimal,
    wallet: Wallet,
    allocation: Decimal,
    position: Decimal,
    resize: bool,
    min_notional: Decimal,
) -> None:
    engine = RiskEngine()
    profile = RiskProfile(
        cooldown_seconds=0,
        max_allocation_pct=allocation,
        max_position_pct=position,
        resize_to_fit=resize,
        min_order_notional=min_notional,
    )
    kwargs = {size: amount} if size else {}
    decision = Decision(action, "BTC", **kwargs)  # type: ignore[arg-type]
    prices = {"BTC": Snapshot("BTC", NOW, price), "ETH": Snapshot("ETH", NOW, Decimal(10))}
    verdict, unexplained = (
        engine.check(
            decision,
            profile=profile,
            state=RiskState(),
            wallet=wallet,
            prices=prices,
            allowed_symbols=["BTC", "ETH"],
            now=NOW,
            explain=explain,
        )
        for explain in (True, False)
    )
    # without explaining: the same verdict, with only the failures and resizes among its checks
    kept = [c for c in verdict.checks if not c.passed or c.detail.startswith("resized: ")]
    assert unexplained == dataclasses.replace(verdict, checks=kept)
    if not verdict.approved:
        assert verdict.reason and verdict.checks and not verdict.checks[-1].passed
        return
    assert is_valid_price(price) and verdict.price == price
    qty = verdict.quantity
    assert qty.is_finite() and qty > 0
    assert qty * price >= min_notional
    slack = 1 + TOLERANCE
    if action is Action.SELL:
        assert qty <= wallet.quantity("BTC")
        return
    marks = {s: p.price for s, p in prices.items() if is_valid_price(p.price)}
    equity = wallet.equity(marks)
    assert qty * price * (1 + engine.fee_bps / BPS) <= wallet.cash * slack
    assert qty * price <= equity * allocation / 100 * slack
    assert (wallet.quantity("BTC") + qty) * price <= equity * position / 100 * slack


@settings(max_examples=100, deadline=None)
@given(price=st.sampled_from(GARBAGE), action=st.sampled_from([Action.BUY, Action.SELL]))
def test_a_garbage_price_is_always_rejected(price: Decimal, action: Action) -> None:
    wallet = Wallet("a1", allowance=Decimal(1000), cash=Decimal(1000))
    wallet.positions["BTC"] = Position("BTC", Decimal(1), Decimal(100), NOW)
    verdict = RiskEngine().check(
        Decision(action, "BTC"),
        profile=RiskProfile(cooldown_seconds=0),
        state=RiskState(),
        wallet=wallet,
        prices={"BTC": Snapshot("BTC", NOW, price)},
        allowed_symbols=["BTC"],
        now=NOW,
    )
    assert not verdict.approved and verdict.checks[-1].name == "price"


@settings(max_examples=200, deadline=None)
@given(
    equity=st.lists(st.decimals(min_value=1, max_value=10**6, places=4), min_size=1, max_size=60),
    steps=st.lists(st.integers(min_value=1, max_value=600), min_size=60, max_size=60),
    start_day=st.integers(min_value=0, max_value=1),  # the state is of the day before or the same
)
def test_advance_is_update_tick_by_tick(
    equity: list[Decimal], steps: list[int], start_day: int
) -> None:
    """Event skipping's :meth:`RiskEngine.advance` leaves the risk state (day, day-start
    equity, peak) exactly where :meth:`RiskEngine.update` tick by tick does, when no limit is
    set."""
    engine, profile = RiskEngine(), RiskProfile(max_drawdown_pct=None, daily_loss_limit_pct=None)
    t0 = datetime(2024, 1, 1, 22, tzinfo=UTC)
    times = [t0 + timedelta(minutes=sum(steps[: i + 1])) for i in range(len(equity))]
    before = RiskState(
        peak_equity=Decimal(500),
        day=(t0 + timedelta(days=start_day - 1)).date(),
        day_start_equity=Decimal(400),
    )
    stepped, skipped = dataclasses.replace(before), dataclasses.replace(before)
    for e, t in zip(equity, times, strict=True):
        assert engine.update(profile, stepped, e, t) is None
    engine.advance(skipped, equity, times)
    assert skipped == stepped
