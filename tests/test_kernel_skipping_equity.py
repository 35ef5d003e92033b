"""Event skipping's equity of passed-over ticks is the very Decimal the kernel marks when it
visits them (:meth:`Wallet.equity`): the same value and the same digits (the equity curve's
text is part of a backtest's result)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from phantomex.domain.models import Bar, Position, Wallet
from phantomex.domain.money import ZERO
from phantomex.kernel.skipping import EventPlan
from phantomex.market.replay import ReplayFeed

T0 = datetime(2024, 1, 1, tzinfo=UTC)

#: amounts with every kind of exponent: positive ("1E+3"), zero, negative, 28 digits
amounts = st.one_of(
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal(10**9), places=2),
    st.decimals(min_value=Decimal("1e-9"), max_value=Decimal(10**6), places=27),
    st.builds(
        lambda digits, exp: Decimal(digits).scaleb(exp),
        st.integers(1, 10**28 - 1),
        st.integers(-40, 8),
    ),
    st.sampled_from([Decimal("1E+3"), Decimal("5E+1"), Decimal("100"), Decimal("0.10")]),
)
closes = st.one_of(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**6), places=2),
    st.sampled_from([Decimal("4.3E+4"), Decimal("2E+1"), Decimal("7"), Decimal("0.000123")]),
)


def plan_over(values: list[Decimal]) -> EventPlan:
    """A plan over one symbol's bars closing at ``values`` (and no agents)."""
    bars = [
        Bar("X", T0 + timedelta(minutes=i), c, c, c, c, Decimal(1)) for i, c in enumerate(values)
    ]
    feed = ReplayFeed({"X": bars})
    kernel = SimpleNamespace(feed=feed, agents={}, brains={}, killed=False)
    return EventPlan(kernel, feed)  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(
    values=st.lists(closes, min_size=1, max_size=12),
    cash=amounts,
    qty=amounts,
    cost=amounts,
    data=st.data(),
)
def test_a_held_span_is_marked_as_the_wallet_marks_each_tick(
    values: list[Decimal], cash: Decimal, qty: Decimal, cost: Decimal, data: st.DataObject
) -> None:
    plan = plan_over(values)
    start = data.draw(st.integers(0, len(values) - 1))
    stop = data.draw(st.integers(start + 1, len(values)))
    wallet = Wallet("a", cash=cash, positions={"X": Position("X", qty, cost)})
    got = plan.equity(wallet, start, stop)
    want = [wallet.equity({"X": values[t]}) for t in range(start, stop)]
    assert [str(v) for v in got] == [str(v) for v in want]


@settings(max_examples=500, deadline=None)
@given(cash=amounts, qty=amounts, mark=closes)
def test_adding_zero_first_changes_no_sum_with_cash_in_whole_units_or_finer(
    cash: Decimal, qty: Decimal, mark: Decimal
) -> None:
    """The identity the plan's held spans rest on (``_whole_or_finer``), for a product."""
    x = qty * mark
    if cash.as_tuple().exponent <= 0:  # type: ignore[operator]
        assert str(cash + (ZERO + x)) == str(cash + x)
