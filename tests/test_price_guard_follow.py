"""The price guard after following a backtest's skipped prices (:meth:`PriceGuard.follow`):
the next screened price is judged against the last followed one, as if each had been
accepted, and a suspect price names the first of equal followed prices."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from phantomex.domain.models import Instrument, Snapshot, Tick
from phantomex.market.guard import PriceGuard

T0 = datetime(2026, 1, 1, tzinfo=UTC)
INSTRUMENTS = {"BTC": Instrument("BTC")}


def snap(price: str, minute: int) -> Snapshot:
    return Snapshot("BTC", T0 + timedelta(minutes=minute), Decimal(price))


def screened(guard: PriceGuard, price: str, minute: int) -> bool:
    """Whether the guard passes the price on."""
    s = snap(price, minute)
    out = guard.screen(Tick(s.time, {"BTC": s}), lambda: INSTRUMENTS)
    return "BTC" in out.tick.snapshots


def test_a_jump_is_judged_from_the_last_followed_price() -> None:
    guard = PriceGuard()
    assert screened(guard, "100", 0)
    for minute, price in enumerate(("200", "400", "1000.0", "1000"), start=1):
        guard.follow({"BTC": snap(price, minute)}, lambda: INSTRUMENTS)
    assert screened(guard, "9000", 5)  # within 10x of 1000 (it was not of 100)
    guard.follow({"BTC": snap("1000", 6)}, lambda: INSTRUMENTS)
    assert not screened(guard, "10000", 7)  # 10x of the last followed price: suspect
    assert "last accepted 1000" in guard.held()["BTC"]


def test_equal_followed_prices_keep_the_first() -> None:
    guard = PriceGuard()
    guard.follow({"BTC": snap("50.0", 0)}, lambda: INSTRUMENTS)
    guard.follow({"BTC": snap("50", 1)}, lambda: INSTRUMENTS)
    assert not screened(guard, "0.5", 2)
    assert "last accepted 50.0" in guard.held()["BTC"]
