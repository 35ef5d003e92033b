"""Exchange sessions and the market-hours risk rule at real holidays, weekends and after hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from phantomex.domain.models import (
    Action,
    AssetClass,
    Decision,
    Instrument,
    Position,
    Snapshot,
    Wallet,
)
from phantomex.domain.risk import RiskProfile, RiskState
from phantomex.market.calendars import CalendarError, session_at
from phantomex.risk.engine import RiskEngine, Verdict
from phantomex.risk.market_hours import market_closed

AAPL = Instrument(
    "AAPL", AssetClass.EQUITY, venue="NASDAQ", calendar="XNAS", quantity_step=Decimal(1)
)
IBM = Instrument("IBM", AssetClass.EQUITY, venue="NYSE", calendar="XNYS")
BTC = Instrument("BTC")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("at", "is_open", "next_open"),
    [
        (utc(2020, 9, 7, 15, 0), False, utc(2020, 9, 8, 13, 30)),  # Labor Day, mid-day
        (utc(2020, 9, 5, 15, 0), False, utc(2020, 9, 8, 13, 30)),  # Saturday before it
        (utc(2020, 9, 8, 20, 30), False, utc(2020, 9, 9, 13, 30)),  # after the close
        (utc(2020, 9, 8, 13, 0), False, utc(2020, 9, 8, 13, 30)),  # pre-market, same day
        (utc(2020, 11, 26, 16, 0), False, utc(2020, 11, 27, 14, 30)),  # Thanksgiving (EST)
        (utc(2020, 9, 8, 13, 30), True, None),  # the opening minute
        (utc(2020, 9, 8, 19, 59, 59), True, None),  # the last second
        (utc(2020, 9, 8, 20, 0), False, utc(2020, 9, 9, 13, 30)),  # the close itself
        (utc(2020, 11, 27, 18, 30), False, utc(2020, 11, 30, 14, 30)),  # early close 13:00 ET
    ],
)
def test_nyse_sessions(at: datetime, is_open: bool, next_open: datetime | None) -> None:
    session = session_at("XNYS", at)
    assert session.open is is_open
    assert session.next_open == next_open


def test_closed_reason_names_the_next_open() -> None:
    session = session_at("XNAS", utc(2020, 9, 7, 15, 0))
    assert session.reason() == "market closed: next open 2020-09-08 13:30 UTC (XNAS)"


def test_a_time_in_another_zone_is_converted() -> None:
    from zoneinfo import ZoneInfo

    ten_am_new_york = datetime(2020, 9, 8, 10, 0, tzinfo=ZoneInfo("America/New_York"))
    assert session_at("XNYS", ten_am_new_york).open


def test_bad_calendar_input_is_a_clear_error() -> None:
    with pytest.raises(CalendarError, match="unknown exchange calendar 'NOPE'"):
        session_at("NOPE", utc(2020, 9, 8, 14))
    with pytest.raises(CalendarError, match="no timezone"):
        session_at("XNYS", datetime(2020, 9, 8, 14))
    with pytest.raises(CalendarError, match="covers"):
        session_at("XNYS", utc(1990, 1, 2, 15))


def test_market_closed_rule() -> None:
    assert market_closed(BTC, utc(2020, 9, 7, 15)) is None  # crypto: 24/7
    assert market_closed(None, utc(2020, 9, 7, 15)) is None
    assert market_closed(AAPL, utc(2020, 9, 8, 15)) is None
    assert market_closed(IBM, utc(2020, 9, 7, 15)) == (
        "market closed: next open 2020-09-08 13:30 UTC (XNYS)"
    )
    odd = Instrument("X", AssetClass.EQUITY, calendar="NOPE")
    reason = market_closed(odd, utc(2020, 9, 8, 15))
    assert reason is not None and reason.startswith("market hours of X unknown")


def _check(decision: Decision, now: datetime, wallet: Wallet | None = None) -> Verdict:
    prices = {
        "AAPL": Snapshot("AAPL", now - timedelta(seconds=30), Decimal("120.5")),
        "BTC": Snapshot("BTC", now - timedelta(seconds=30), Decimal("10000")),
    }
    return RiskEngine().check(
        decision,
        profile=RiskProfile(cooldown_seconds=0),
        state=RiskState(),
        wallet=wallet or Wallet("a", allowance=Decimal(10000), cash=Decimal(10000)),
        prices=prices,
        allowed_symbols=["AAPL", "BTC"],
        now=now,
        instruments={"AAPL": AAPL, "BTC": BTC},
    )


def test_risk_engine_holds_equity_orders_outside_the_session() -> None:
    labor_day = utc(2020, 9, 7, 15, 0)
    verdict = _check(Decision(Action.BUY, "AAPL", quantity=Decimal(3)), labor_day)
    assert not verdict.approved and verdict.hold
    assert verdict.reason == "market closed: next open 2020-09-08 13:30 UTC (XNAS)"
    assert verdict.checks[-1].name == "market_hours"

    # crypto trades at the same moment
    crypto = _check(Decision(Action.BUY, "BTC", notional=Decimal(100)), labor_day)
    assert crypto.approved and not crypto.hold

    # a sell is held too, and the equity trades once the session opens
    wallet = Wallet("a", allowance=Decimal(10000), cash=Decimal(10000))
    sell = _check(Decision(Action.SELL, "AAPL"), utc(2020, 9, 8, 20, 5), wallet)
    assert sell.hold and "next open 2020-09-09 13:30 UTC" in sell.reason
    open_ = _check(Decision(Action.BUY, "AAPL", quantity=Decimal(3)), utc(2020, 9, 8, 14, 0))
    assert open_.approved and open_.quantity == 3 and open_.price == Decimal("120.5")


def test_without_instruments_the_engine_behaves_as_before() -> None:
    verdict = RiskEngine().check(
        Decision(Action.BUY, "AAPL", quantity=Decimal(1)),
        profile=RiskProfile(cooldown_seconds=0),
        state=RiskState(),
        wallet=Wallet("a", allowance=Decimal(1000), cash=Decimal(1000)),
        prices={"AAPL": Snapshot("AAPL", utc(2020, 9, 7, 15), Decimal(100))},
        allowed_symbols=["AAPL"],
        now=utc(2020, 9, 7, 15),
    )
    assert verdict.approved


def test_forced_exits_wait_for_the_open() -> None:
    wallet = Wallet("a", allowance=Decimal(0), cash=Decimal(0))
    wallet.positions["AAPL"] = Position("AAPL", Decimal(10), Decimal(1500))  # avg 150
    wallet.positions["BTC"] = Position("BTC", Decimal(1), Decimal(12000))
    prices = {
        "AAPL": Snapshot("AAPL", utc(2020, 9, 8, 20, 0), Decimal(120)),  # -20 %: stop-loss due
        "BTC": Snapshot("BTC", utc(2020, 9, 8, 20, 0), Decimal(10000)),
    }
    after_close = utc(2020, 9, 8, 20, 2)
    instruments = {"AAPL": AAPL, "BTC": BTC}
    exits = RiskEngine().forced_exits(
        RiskProfile(), wallet, prices, after_close, instruments=instruments
    )
    assert [e.symbol for e in exits] == ["BTC"]  # the equity's stop waits for 13:30 tomorrow
    before_close = utc(2020, 9, 8, 19, 58)
    prices = {s: Snapshot(s, before_close, p.price) for s, p in prices.items()}
    exits = RiskEngine().forced_exits(
        RiskProfile(), wallet, prices, before_close, instruments=instruments
    )
    assert [e.symbol for e in exits] == ["AAPL", "BTC"]


def test_equities_are_sized_in_whole_shares() -> None:
    at = utc(2020, 9, 8, 15)
    all_in = _check(Decision(Action.BUY, "AAPL"), at)  # 25 % of 10,000 at 120.5 = 20.7 shares
    assert all_in.approved and all_in.quantity == 20 and not all_in.whole
    by_notional = _check(Decision(Action.BUY, "AAPL", notional=Decimal(100)), at)
    assert not by_notional.approved and by_notional.reason == (
        "AAPL trades in lots of 1: the order rounds to 0"
    )
    wallet = Wallet("a", allowance=Decimal(0), cash=Decimal(0))
    wallet.positions["AAPL"] = Position("AAPL", Decimal(10), Decimal(1200))
    sell = _check(Decision(Action.SELL, "AAPL", quantity=Decimal("2.5")), at, wallet)
    assert sell.quantity == 2
    crypto = _check(Decision(Action.BUY, "BTC", notional=Decimal(100)), at)
    assert crypto.quantity == Decimal("0.01")  # no lot: fractional as before


def test_lunch_breaks_are_closed() -> None:
    hong_kong_lunch = utc(2020, 9, 8, 4, 30)  # 12:30 in Hong Kong
    session = session_at("XHKG", hong_kong_lunch)
    assert not session.open and session.next_open == utc(2020, 9, 8, 5, 0)
    assert session_at("XHKG", utc(2020, 9, 8, 2, 0)).open
