"""A replay's bars given as columns read their open, high, low and volume texts one bar at a
time, whatever kind of text column holds them: the bar read is the bar given."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from phantomex.domain.models import Bar
from phantomex.market.columns import FIELDS, BarColumns
from phantomex.market.replay_rows import SymbolRows

T0 = datetime(2024, 1, 1, tzinfo=UTC)
FIELD_TEXTS = {
    "open": ["100", "101.25", "99.5", "1E+2", "98.000"],
    "high": ["101", "102", "100.5", "101", "99"],
    "low": ["99", "100.75", "98", "97", "97.5"],
    "close": ["100.5", "101.5", "99", "98", "98.5"],
    "volume": ["3", "0.125", "12", "7", "0"],
}


def expected() -> list[Bar]:
    d = Decimal
    t = FIELD_TEXTS
    return [
        Bar(
            "BTC",
            T0 + timedelta(minutes=i),
            d(t["open"][i]),
            d(t["high"][i]),
            d(t["low"][i]),
            d(t["close"][i]),
            d(t["volume"][i]),
        )
        for i in range(5)
    ]


def sliced(texts: list[str]) -> pa.Array:
    """The texts as a slice of a longer array (a non-zero offset into its buffers)."""
    return pa.array(["9", *texts, "9"]).slice(1, len(texts))


def chunked(texts: list[str]) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(texts[:2]), pa.array(texts[2:])])


def fixed(texts: list[str]) -> np.ndarray:
    """Fixed-width ASCII bytes, as the column cache keeps them."""
    return np.array([t.encode("ascii") for t in texts])


def large(texts: list[str]) -> pa.Array:
    return pa.array(texts, pa.large_string())


@pytest.mark.parametrize("kind", [pa.array, sliced, chunked, fixed, large])
def test_each_bar_read_from_columns_is_the_bar_given(kind: Any) -> None:
    n = 5
    start = int(T0.timestamp()) * 1_000_000
    time_us = start + 60_000_000 * np.arange(n, dtype=np.int64)
    values = {k: np.array([float(x) for x in FIELD_TEXTS[k]]) for k in FIELDS}
    texts = {k: kind(FIELD_TEXTS[k]) if k != "close" else pa.array(FIELD_TEXTS[k]) for k in FIELDS}
    rows = SymbolRows.of("BTC", BarColumns("BTC", time_us, values, texts))
    assert [rows.bar(k) for k in range(n)] == expected()
    assert list(rows.bars(1, 4)) == expected()[1:4]
    assert rows.opens_us.tolist() == time_us.tolist()


@pytest.mark.parametrize("kind", [pa.array, sliced, chunked, fixed, large])
@pytest.mark.parametrize("distinct", [3, 5000])
def test_the_closes_are_each_text_as_a_decimal_whether_they_repeat_or_not(
    distinct: int, kind: Any
) -> None:
    n = 5000
    closes = [f"{100 + (k % distinct) / 8}" for k in range(n)]  # 3: each parsed once, shared
    time_us = 1_700_000_000_000_000 + 60_000_000 * np.arange(n, dtype=np.int64)
    values = {k: np.full(n, 100.0) for k in FIELDS}
    values["close"] = np.array([float(t) for t in closes])
    texts = {k: pa.array(["100"] * n) for k in FIELDS}
    texts["close"] = kind(closes)
    texts["open"] = pa.array([f"{99 + k % 5}.50" for k in range(n)])
    rows = SymbolRows.of("BTC", BarColumns("BTC", time_us, values, texts))
    assert [str(c) for c in rows.closes] == [str(Decimal(t)) for t in closes]
    assert all(type(c) is Decimal for c in rows.closes)
    assert rows.floats.tolist() == [float(t) for t in closes]
    bars = [rows.bar(k) for k in (0, 1, 7, 5, 7, n - 1)]  # some read twice
    assert [str(b.open) for b in bars] == [f"{99 + k % 5}.50" for k in (0, 1, 7, 5, 7, n - 1)]
    assert all(str(b.high) == str(b.volume) == "100" for b in bars)
