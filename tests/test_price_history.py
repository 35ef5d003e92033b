"""PriceHistory and its views: bars and float closes agree, and never reach past the clock."""

from __future__ import annotations

from collections import deque
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import islice, pairwise

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from phantomex.domain.models import Bar
from phantomex.market.base import FloatColumn, PriceHistory

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def _bar(minute: int, close: str) -> Bar:
    c = Decimal(close)
    return Bar("BTC", T0 + timedelta(minutes=minute), c, c, c, c, Decimal(1))


@settings(max_examples=150, deadline=None)
@given(
    minutes=st.lists(st.integers(min_value=0, max_value=80), min_size=1, max_size=60),
    chunks=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=20),
    now=st.integers(min_value=-1, max_value=82),
    limit=st.one_of(st.none(), st.integers(min_value=1, max_value=70)),
    max_bars=st.integers(min_value=3, max_value=50),
)
def test_views_see_only_bars_before_the_clock(
    minutes: list[int], chunks: list[int], now: int, limit: int | None, max_bars: int
) -> None:
    """Bars appended one by one or extended in sorted runs (out-of-order and duplicate bars
    ignored), kept up to ``max_bars``: a view's bars are the latest before ``now``, and its
    closes are their closes as floats, oldest first."""
    history, kept = PriceHistory(max_bars=max_bars), []
    bars = [_bar(m, f"{100 + m}.{i % 7}") for i, m in enumerate(minutes)]
    i = 0
    for n, size in enumerate(chunks * 10):
        run = bars[i : i + size]
        if not run:
            break
        if n % 2 and all(a.time < b.time for a, b in pairwise(run)):
            history.extend("BTC", run)
        else:
            history.append(run)
        for b in run:
            if not kept or b.time > kept[-1].time:
                kept.append(b)
        i += size
        # a view after each change of the history
        early = history.view(T0 + timedelta(minutes=now))
        seen = [float(b.close) for b in kept[-max_bars:] if b.time < early.now][-(limit or 1) :]
        assert early.close_list("BTC", limit or 1) == seen
    kept = kept[-max_bars:]
    view = history.view(T0 + timedelta(minutes=now))
    expected = [b for b in kept if b.time < view.now]
    expected = expected[-limit:] if limit is not None else expected
    assert view.bars("BTC", limit) == expected
    closes = view.closes("BTC", limit)
    assert closes.dtype == np.float64
    assert closes.tolist() == [float(b.close) for b in expected]
    assert view.bars("ETH", limit) == [] and view.closes("ETH", limit).size == 0


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from([0, 1, 2, 3, 10, 300]),
    st.lists(
        st.one_of(st.floats(allow_nan=False), st.lists(st.floats(allow_nan=False), max_size=700)),
        max_size=40,
    ),
    st.integers(0, 5),
    st.one_of(st.none(), st.integers(0, 800)),
)
def test_float_column_keeps_what_a_bounded_deque_keeps(
    max_bars: int, steps: list[float | list[float]], later: int, limit: int | None
) -> None:
    """Appends and extends in any mix: every window is the deque's, to the bit."""
    column, kept = FloatColumn(max_bars), deque[float](maxlen=max_bars)
    for step in steps:
        if isinstance(step, list):
            column.extend(np.array(step, dtype=np.float64))
            kept.extend(step)
        else:
            column.append(step)
            kept.append(step)
        assert len(column) == len(kept)
        want = list(islice(reversed(kept), later, None if limit is None else later + limit))
        assert column.window(later, limit).tolist() == want[::-1]


@settings(max_examples=120, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["span", "bar", "back"]), st.integers(0, 12)),
        min_size=1,
        max_size=30,
    ),
    now=st.integers(min_value=0, max_value=130),
    limit=st.one_of(st.none(), st.integers(min_value=1, max_value=40)),
    max_bars=st.integers(min_value=3, max_value=40),
)
def test_a_history_of_spans_reads_as_one_of_their_bars(
    steps: list[tuple[str, int]], now: int, limit: int | None, max_bars: int
) -> None:
    """Spans of a replay's columns that follow one another (kept as one run of positions),
    mixed with bars appended one by one and spans that go back (ending the run): every view
    reads as the same bars given as Bar objects."""
    from phantomex.market.columns import BarColumns
    from phantomex.market.replay_rows import SymbolRows

    source = [_bar(m, f"{100 + m % 9}.{m % 4}") for m in range(120)]
    rows = SymbolRows.of("BTC", BarColumns.from_bars("BTC", source))
    spans, eager = PriceHistory(max_bars=max_bars), PriceHistory(max_bars=max_bars)
    at = 0
    for kind, size in steps:
        start = max(0, at - size) if kind == "back" else at
        stop = min(len(source), start + (1 if kind == "bar" else size))
        if kind == "bar" and stop > start:
            spans.append([source[start]])
        else:
            spans.extend("BTC", rows.bars(start, stop))
        if kind == "bar":
            eager.append(source[start:stop])
        else:
            eager.extend("BTC", source[start:stop])
        at = max(at, stop)
        view, want = (
            spans.view(T0 + timedelta(minutes=now)),
            eager.view(T0 + timedelta(minutes=now)),
        )
        assert view.bars("BTC", limit) == want.bars("BTC", limit)
        assert view.closes("BTC", limit).tolist() == want.closes("BTC", limit).tolist()
        assert view.close_list("BTC", limit or 1) == want.close_list("BTC", limit or 1)
