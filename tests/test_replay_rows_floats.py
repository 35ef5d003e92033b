"""A replay's closes as floats (what the event plan and the price history read) are ``float`` of
each exact close, whether the columns' own floats are taken or the texts parsed."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from phantomex.market.column_loaders import parse_columns
from phantomex.market.columns import FIELDS, BarColumns
from phantomex.market.replay_rows import SymbolRows

T0 = 1_700_000_000_000_000


def columns(closes: list[str], floats: list[float]) -> BarColumns:
    n = len(closes)
    time_us = T0 + 60_000_000 * np.arange(n, dtype=np.int64)
    texts = {k: pa.array(closes if k == "close" else ["1"] * n) for k in FIELDS}
    values = {k: np.array(floats) if k == "close" else np.ones(n) for k in FIELDS}
    return BarColumns("BTC", time_us, values, texts)


def exact(rows: SymbolRows) -> np.ndarray:
    return np.array([float(Decimal(c)) for c in rows.closes])


def test_a_close_the_columns_floats_cannot_vouch_for_is_parsed() -> None:
    rows = SymbolRows.of("BTC", columns(["1e3", "2.5", "0.1"], [0.0, 2.5, 0.1]))
    assert rows.floats.tolist() == [1000.0, 2.5, 0.1] == exact(rows).tolist()


def test_the_columns_floats_are_taken_when_every_one_is_finite_and_not_zero() -> None:
    given_floats = [2.5, 0.1, 7.0]
    source = columns(["2.5", "0.1", "7"], given_floats)
    rows = SymbolRows.of("BTC", source)
    assert np.shares_memory(rows.floats, source.values["close"])
    assert not rows.floats.flags.writeable
    assert rows.floats.tolist() == exact(rows).tolist()


PRICES = st.decimals(
    min_value=Decimal("1e-8"),
    max_value=Decimal("1e11"),
    places=12,
    allow_nan=False,
    allow_infinity=False,
)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.lists(PRICES, min_size=1, max_size=40))
def test_loaded_columns_give_float_of_each_exact_close(prices: list[Decimal]) -> None:
    lines = [f"{60 * (i + 1)},{p:f},{p:f},{p:f},{p:f},1\n" for i, p in enumerate(prices)]
    data = ("timestamp,open,high,low,close,volume\n" + "".join(lines)).encode()
    loaded, _ = parse_columns(data, name="x.csv", symbol="BTC")
    rows = SymbolRows.of("BTC", loaded)
    assert rows.floats.view(np.int64).tolist() == exact(rows).view(np.int64).tolist()
