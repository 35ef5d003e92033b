"""A stored dataset file's bars as NumPy files, a cache of reading the Parquet file as columns.

Reading a stored Parquet file as :class:`~phantomex.market.columns.BarColumns` (pyarrow's
import, the read, the row rule over every candle) takes ~0.4 s of CPU for a million bars; the
cache holds its outcome, the kept rows (times, floats, exact texts as fixed-width bytes) and
the dropped ones' log, in a hidden folder next to the file, read with ``np.load`` (memory
mapped, copy on write). The Parquet file stays the truth: the cache names the file's size,
modification time and the CRC of its footer, the price ceiling of the row rule and a checksum
of every array; a cache that does not match all of them, or cannot be read, is not used (and
:class:`~phantomex.market.datastore.DataStore` then rebuilds it from the file).

Layout of ``.<SYMBOL>_<timeframe>.columns/``: ``meta.json``, ``time.npy`` (int64 µs),
``<field>.npy`` (float64) and ``<field>.text.npy`` (``S<width>``) for each field."""

from __future__ import annotations

import json
import os
import shutil
import zlib
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from phantomex.market.columns import FIELDS, BarColumns, combined

__all__ = ["CachedColumns", "cache_dir", "file_key", "fixed_texts", "read_cache", "write_cache"]

VERSION = 1
_TAIL = 65_536  # bytes of the Parquet file's end (its footer) in the key
_MAX_WIDTH = 40  # longer texts are not cached (a fixed width would waste the disk)


@dataclass(frozen=True)
class CachedColumns:
    """The cached outcome of reading one file: the kept bars, how many rows were dropped and
    the first reasons (as the log line gives them)."""

    columns: BarColumns
    dropped: int
    problems: list[str]


def cache_dir(parquet: Path) -> Path:
    return parquet.with_name(f".{parquet.stem}.columns")


def file_key(parquet: Path) -> dict[str, int] | None:
    """What identifies the file's content: size, modification time, CRC of its footer
    (None when it cannot be read)."""
    try:
        with parquet.open("rb") as f:
            st = os.fstat(f.fileno())
            f.seek(max(0, st.st_size - _TAIL))
            tail = f.read()
    except OSError:
        return None
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "tail_crc": zlib.crc32(tail)}


def _digest(array: np.ndarray) -> str:
    """A checksum of an array's bytes (wrapping sum of its 8-byte words, then the rest):
    cheap enough to verify at every read, and any changed byte changes it."""
    raw = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    whole = raw.size // 8 * 8
    total = int(raw[:whole].view(np.uint64).sum(dtype=np.uint64))
    return f"{raw.size}:{total}:{raw[whole:].tobytes().hex()}"


def fixed_texts(texts: Any) -> np.ndarray | None:
    """An Arrow string column without nulls as fixed-width ASCII bytes (``S<width>``), built
    from its buffers; None when a text is empty, too long, not ASCII or holds a NUL byte."""
    array = combined(texts)
    if str(array.type) != "string" or array.null_count:
        return None
    n = len(array)
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=n + 1, offset=array.offset * 4)
    offsets = offsets.astype(np.int64)
    lengths = np.diff(offsets)
    if n == 0 or lengths.min() < 1 or lengths.max() > _MAX_WIDTH:
        return None
    data = np.frombuffer(buffers[2], dtype=np.uint8)[offsets[0] : offsets[-1]]
    if (data == 0).any() or (data >= 128).any():
        return None
    width = int(lengths.max())
    out = np.zeros((n, width), dtype=np.uint8)
    rows = np.repeat(np.arange(n), lengths)
    cols = np.arange(data.size) - np.repeat(offsets[:-1] - offsets[0], lengths)
    out[rows, cols] = data
    return out.view(f"S{width}").reshape(n)


def write_cache(
    parquet: Path, columns: BarColumns, dropped: int, problems: list[str], key: dict[str, int]
) -> bool:
    """Cache ``columns`` read from ``parquet`` whose content had ``key`` before it was read
    (best effort: False when a text does not fit the layout, the file changed meanwhile or
    the folder cannot be written)."""
    texts = {k: fixed_texts(columns.texts[k]) for k in FIELDS}
    if any(t is None for t in texts.values()) or file_key(parquet) != key:
        return False
    arrays: dict[str, np.ndarray] = {"time": np.asarray(columns.time_us, dtype=np.int64)}
    for k in FIELDS:
        arrays[k] = np.asarray(columns.values[k], dtype=np.float64)
        arrays[f"{k}.text"] = texts[k]  # type: ignore[assignment]
    meta = {
        "version": VERSION,
        "file": key,
        "ceiling": str(columns.ceiling),
        "rows": len(columns),
        "dropped": dropped,
        "problems": problems,
        "digests": {name: _digest(a) for name, a in arrays.items()},
    }
    target = cache_dir(parquet)
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        for name, a in arrays.items():
            np.save(tmp / f"{name}.npy", a, allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return False
    return True


def read_cache(parquet: Path, symbol: str, ceiling: Decimal) -> CachedColumns | None:
    """The cached columns of ``parquet`` if the cache matches the file as it is now, the
    ceiling and its own checksums; otherwise None."""
    folder = cache_dir(parquet)
    try:
        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("version") != VERSION or meta.get("ceiling") != str(ceiling):
            return None
        if meta.get("file") != file_key(parquet):
            return None
        arrays = {
            name: np.asarray(np.load(folder / f"{name}.npy", mmap_mode="c", allow_pickle=False))
            for name in meta["digests"]
        }
        rows = int(meta["rows"])
        if set(arrays) != {"time", *FIELDS, *(f"{k}.text" for k in FIELDS)}:
            return None
        if any(a.ndim != 1 or a.size != rows for a in arrays.values()):
            return None
        if any(_digest(a) != meta["digests"][name] for name, a in arrays.items()):
            return None
        if arrays["time"].dtype != np.int64 or any(arrays[k].dtype != np.float64 for k in FIELDS):
            return None
        if any(arrays[f"{k}.text"].dtype.kind != "S" for k in FIELDS):
            return None
        columns = BarColumns(
            symbol,
            arrays["time"],
            {k: arrays[k] for k in FIELDS},
            {k: arrays[f"{k}.text"] for k in FIELDS},
            ceiling,
        )
        return CachedColumns(columns, int(meta["dropped"]), [str(p) for p in meta["problems"]])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
