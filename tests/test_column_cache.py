"""A stored dataset's column cache (phantomex.market.column_cache): what it gives is what the
Parquet file gives, and a cache that does not match the file as it is now is never used."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from phantomex.domain.models import Bar
from phantomex.market.column_cache import cache_dir, read_cache
from phantomex.market.columns import FIELDS, BarColumns
from phantomex.market.datastore import DataStore, schema

START = datetime(2024, 1, 1, tzinfo=UTC)
#: Rows as stored texts: good ones (trailing zeros, exponents, ties) and four the row rule drops.
ROWS = [
    ("100.50", "101", "99.5", "100.5", "3"),
    ("100.5", "100.5", "100.50", "100.5", "0"),
    ("1E+2", "100.25", "99", "100", "1.0"),
    ("x", "1", "1", "1", "1"),
    ("2", "1", "3", "1", "1"),
    ("1", "1", "1", "1", "-1"),
    ("0.000001", "0.0000011", "0.0000009", "0.000001", "12345678.123456789"),
    ("1.00000000000000001", "1", "1", "1", "1"),
    ("1", "1", "1", "1", None),
    ("7", "8", "6", "7.25", "2"),
]


def rows(bars: BarColumns | list[Bar]) -> list[tuple[object, ...]]:
    """Bars as comparable rows, the Decimals' exponents included."""
    return [(b.symbol, b.time, *(str(getattr(b, k)) for k in FIELDS)) for b in bars]


def same(a: BarColumns, b: BarColumns) -> None:
    assert rows(a) == rows(b)
    assert a.time_us.tolist() == b.time_us.tolist() and a.ceiling == b.ceiling
    for k in FIELDS:
        assert a.values[k].tobytes() == b.values[k].tobytes()
        at = np.arange(len(a))[::-1]
        assert a.decimals(k, at) == b.decimals(k, at)
    assert rows(a[1:3]) == rows(b[1:3]) and rows(a.between(None, None)) == rows(b)


def write(store: DataStore, texts: Sequence[tuple[str | None, ...]]) -> Path:
    """A stored file written as another tool might (not through ``save``)."""
    path = store.path("mine", "ABC", "1m")
    path.parent.mkdir(parents=True, exist_ok=True)
    columns: dict[str, list[object]] = {
        "time": [START + timedelta(minutes=i) for i in range(len(texts))]
    }
    for j, field in enumerate(FIELDS):
        columns[field] = [t[j] for t in texts]
    pq.write_table(pa.Table.from_pydict(columns, schema=schema()), path)
    return path


@pytest.fixture
def store(tmp_path: Path) -> DataStore:
    return DataStore(tmp_path / "datasets")


def from_file(store: DataStore) -> BarColumns:
    """The columns as the Parquet file gives them (no cache)."""
    path = store.path("mine", "ABC", "1m")
    return store._read_columns(path, "mine", "ABC", "1m", Decimal("1E+12"))


def test_the_cache_gives_what_the_file_gives_and_logs_the_same(
    store: DataStore, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(store, ROWS)
    with caplog.at_level(logging.WARNING):
        first = store.load_columns("mine", "ABC", "1m")  # from the file, then cached
    assert read_cache(path, "ABC", Decimal("1E+12")) is not None
    with caplog.at_level(logging.WARNING):
        again = store.load_columns("mine", "ABC", "1m")
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 2 and logged[0] == logged[1] and "dropped 5 bad candle(s)" in logged[0]
    assert isinstance(again.texts["open"], np.ndarray)  # it came from the cache
    same(again, first)
    assert rows(again) == rows(store.load("mine", "ABC", "1m")) and len(again) == 5


def test_save_writes_the_cache(store: DataStore) -> None:
    bars = [
        Bar("ABC", START + timedelta(minutes=i), Decimal(o), Decimal(h), Decimal(lo),
            Decimal(c), Decimal(str(v)))
        for i, (o, h, lo, c, v) in enumerate(r for r in ROWS if r[0] in ("100.50", "7"))
    ]  # fmt: skip
    store.save("mine", "ABC", "1m", bars, "test")
    cached = read_cache(store.path("mine", "ABC", "1m"), "ABC", Decimal("1E+12"))
    assert cached is not None and cached.dropped == 0
    assert rows(cached.columns) == rows(bars)


def stale_by_rewrite(store: DataStore, path: Path) -> None:
    """The file rewritten with one price changed, same size and modification time."""
    before = path.stat()
    changed = [("7", "8", "6", "7.50", "2") if r[0] == "7" else r for r in ROWS]
    write(store, changed)
    assert path.stat().st_size == before.st_size
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def stale_by_touch(store: DataStore, path: Path) -> None:
    os.utime(path, ns=(0, path.stat().st_mtime_ns + 1_000_000_000))


def flip_a_price(store: DataStore, path: Path) -> None:
    target = cache_dir(path) / "close.npy"
    data = bytearray(target.read_bytes())
    data[-3] ^= 0x01
    target.write_bytes(bytes(data))


def flip_a_text(store: DataStore, path: Path) -> None:
    target = cache_dir(path) / "close.text.npy"
    data = bytearray(target.read_bytes())
    data[-1] = ord("9") if data[-1] != ord("9") else ord("8")
    target.write_bytes(bytes(data))


def truncate(store: DataStore, path: Path) -> None:
    target = cache_dir(path) / "time.npy"
    target.write_bytes(target.read_bytes()[:-8])


def garble_meta(store: DataStore, path: Path) -> None:
    (cache_dir(path) / "meta.json").write_text("{not json", encoding="utf-8")


def older_version(store: DataStore, path: Path) -> None:
    meta_file = cache_dir(path) / "meta.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    meta["version"] = 0
    meta_file.write_text(json.dumps(meta), encoding="utf-8")


def lose_a_file(store: DataStore, path: Path) -> None:
    (cache_dir(path) / "volume.text.npy").unlink()


@pytest.mark.parametrize(
    "spoil",
    [stale_by_rewrite, stale_by_touch, flip_a_price, flip_a_text, truncate, garble_meta,
     older_version, lose_a_file],
)  # fmt: skip
def test_a_stale_or_damaged_cache_is_not_used_and_is_rebuilt(
    store: DataStore, spoil: Callable[[DataStore, Path], None]
) -> None:
    path = write(store, ROWS)
    store.load_columns("mine", "ABC", "1m")
    assert read_cache(path, "ABC", Decimal("1E+12")) is not None
    spoil(store, path)
    assert read_cache(path, "ABC", Decimal("1E+12")) is None
    loaded = store.load_columns("mine", "ABC", "1m")  # from the file, and cached again
    same(loaded, from_file(store))
    rebuilt = read_cache(path, "ABC", Decimal("1E+12"))
    assert rebuilt is not None
    same(rebuilt.columns, loaded)


def test_another_price_ceiling_reads_the_file(store: DataStore) -> None:
    path = write(store, ROWS)
    store.load_columns("mine", "ABC", "1m")
    assert read_cache(path, "ABC", Decimal(50)) is None
    low = store.load_columns("mine", "ABC", "1m", max_price=Decimal(50))
    assert len(low) == 2 and low.ceiling == Decimal(50)  # the 100s are over the ceiling
    assert read_cache(path, "ABC", Decimal("1E+12")) is not None  # the default's cache stays


def test_texts_a_fixed_width_cannot_hold_are_not_cached(store: DataStore) -> None:
    long = "1." + "0" * 60
    path = write(store, [("1", "1", "1", "1", long), ("2", "2", "2", "2", "1")])
    loaded = store.load_columns("mine", "ABC", "1m")
    assert str(loaded[0].volume) == long
    assert read_cache(path, "ABC", Decimal("1E+12")) is None
