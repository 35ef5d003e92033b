"""Bar files and datasets read as :class:`~phantomex.market.columns.BarColumns` (for the research
engine): CSV through Arrow's reader, Parquet datasets as stored, the same rows held and refused
as :mod:`phantomex.market.loaders` holds and refuses them, with the same :class:`LoadReport`.
Files whose layout only the row reader reads the same way (see :mod:`phantomex.market.columns`)
and freqtrade JSON go through the row reader and are then put in columns."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterable
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from phantomex.domain.money import MAX_PRICE
from phantomex.market.columns import (
    FIELDS,
    BarColumns,
    Screened,
    arrow_of,
    combined,
    numpy_of,
    ordered,
    screen,
    true_at,
)
from phantomex.market.loaders import (
    DATASETS,
    MAX_PROBLEMS,
    LoadReport,
    csv_columns,
    csv_delimiter,
    csv_row_parser,
    detect_format,
    infer_symbol,
    log_report,
    parse_ohlcv,
)

__all__ = ["load_columns", "load_dataset_columns", "parse_columns"]

_DIGITS = r"^\d{1,18}$"  # a non-negative epoch number that fits int64
_ISO = r"^[1-9]\d{3}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{3}|\.\d{6})?(?:Z|\+00:00)?$"


def load_columns(
    path: str | Path, symbol: str | None = None, *, max_price: Decimal = MAX_PRICE
) -> BarColumns:
    """Like :func:`~phantomex.market.loaders.load_bars`, as columns."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ValueError(f"{p}: cannot read OHLCV file: {exc}") from exc
    sym = symbol if symbol is not None else infer_symbol(p)
    bars, report = parse_columns(data, name=str(p), symbol=sym, max_price=max_price)
    log_report(report)
    return bars


def load_dataset_columns(
    name: str = "demo",
    symbols: Iterable[str] | None = None,
    *,
    max_price: Decimal = MAX_PRICE,
    datasets: Path | None = None,
) -> dict[str, BarColumns]:
    """Like :func:`~phantomex.market.loaders.load_dataset`, as columns."""
    if name not in DATASETS:
        from phantomex.market.datastore import DataStore

        if datasets is None:
            raise ValueError(f"unknown dataset {name!r} (shipped: {', '.join(DATASETS)})")
        wanted = None if symbols is None else list(symbols)
        return DataStore(datasets).load_dataset_columns(name, wanted, max_price=max_price)
    files = DATASETS[name]
    wanted = list(files) if symbols is None else [s.strip().upper() for s in symbols]
    unknown = [s for s in wanted if s not in files]
    if unknown:
        raise ValueError(
            f"dataset {name!r} has no symbol(s) {', '.join(unknown)}; available: "
            + ", ".join(files)
        )
    root = resources.files("phantomex.market").joinpath("datasets")
    out: dict[str, BarColumns] = {}
    for sym in dict.fromkeys(wanted):
        try:
            data = root.joinpath(files[sym]).read_bytes()
        except OSError as exc:
            raise ValueError(f"dataset {name!r}: cannot read {files[sym]}: {exc}") from exc
        bars, report = parse_columns(
            data, name=f"{name}/{files[sym]}", symbol=sym, max_price=max_price
        )
        log_report(report)
        out[sym] = bars
    return out


def parse_columns(
    data: bytes, *, name: str, symbol: str, max_price: Decimal = MAX_PRICE
) -> tuple[BarColumns, LoadReport]:
    """Like :func:`~phantomex.market.loaders.parse_ohlcv`, as columns."""
    symbol = symbol.strip()
    raw = _gunzip(data)
    read = _arrow_csv(raw, name, symbol, max_price) if raw is not None else None
    if read is not None:
        return read
    bars, report = parse_ohlcv(data, name=name, symbol=symbol, max_price=max_price)
    return BarColumns.from_bars(symbol, bars, max_price), report


def _gunzip(data: bytes) -> bytes | None:
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error):
        return None  # the row reader names the fault


def _plain_layout(raw: bytes) -> bool:
    """Whether Arrow's reader and Python's ``csv`` module split ``raw`` the same way and the
    header is on line 1: no quotes, NULs or lone carriage returns (a blank line is found in
    what Arrow's reader makes of it: a row without a time)."""
    if not raw or raw[:1] in b"\r\n" or b'"' in raw or b"\x00" in raw:
        return False
    if b"\r" in raw:
        return b"\n\r\n" not in raw and raw.count(b"\r") == raw.count(b"\r\n")
    return True


def _arrow_csv(
    raw: bytes, name: str, symbol: str, ceiling: Decimal
) -> tuple[BarColumns, LoadReport] | None:
    """A CSV file through Arrow's reader, or None when the row reader must read it."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    raw = raw.removeprefix(b"\xef\xbb\xbf")
    if not symbol or not _plain_layout(raw) or raw[:1] == b"[":
        return None
    end = raw.find(b"\n")
    try:
        first = raw[: end if end >= 0 else len(raw)].decode("utf-8").rstrip("\r")
    except UnicodeDecodeError:
        return None
    if detect_format(name, first) != "csv":
        return None
    delimiter = csv_delimiter(first)
    header = first.split(delimiter)
    try:
        index = csv_columns(header, name)
    except ValueError:
        return None
    names = [f"c{i}" for i in range(len(header))]
    wanted = sorted({i for i in index if i is not None})
    try:
        table = pcsv.read_csv(
            io.BytesIO(raw),
            # one thread: on a busy machine Arrow's thread pool costs 2-5x the parse itself
            # one block: columns in one piece each, not copied together afterwards
            read_options=pcsv.ReadOptions(
                column_names=names, skip_rows=1, use_threads=False, block_size=len(raw) + 1
            ),
            parse_options=pcsv.ParseOptions(
                delimiter=delimiter, quote_char=False, ignore_empty_lines=False
            ),
            convert_options=pcsv.ConvertOptions(
                include_columns=[names[i] for i in wanted],
                column_types={names[i]: pa.string() for i in wanted},
                strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None  # ragged rows, bad UTF-8, ...: the row reader's
    n = table.num_rows
    if n == 0:
        return None
    ti, oi, hi, li, ci, vi = index
    texts: dict[str, Any] = {
        k: table[names[i]] for k, i in zip(FIELDS[:4], (oi, hi, li, ci), strict=True)
    }
    texts["volume"] = table[names[vi]] if vi is not None else pa.repeat("0", n)
    clock = combined(table[names[ti]])
    if pc.min(pc.binary_length(clock)).as_py() == 0:
        return None  # a blank line (or no time): the row reader's
    iso, iso_us = _iso_times(clock)
    if iso.all():  # ISO text has dashes: no epoch numbers to look for
        digits, epoch = np.zeros(n, dtype=np.bool_), np.zeros(n, dtype=np.int64)
    else:
        digits = true_at(pc.match_substring_regex(clock, _DIGITS))
        # all-digit columns skip if_else: its Python fill value makes pyarrow import pandas
        numbers = clock if digits.all() else pc.if_else(arrow_of(digits), clock, "0")
        epoch = numpy_of(pc.cast(numbers, pa.int64()))
    parse = csv_row_parser(index, ceiling)
    width = max(wanted) + 1

    def exact(cells: dict[str, Any]) -> Any:
        row = [""] * width
        for i in wanted:
            row[i] = cells[names[i]]
        return parse(row)

    cells = {names[i]: table[names[i]] for i in wanted}
    time_us = np.where(digits, _epoch_us(epoch), iso_us)
    rows = screen(texts, time_us, digits | iso, cells, exact, ceiling)
    return _assemble(rows, n, name, symbol, ceiling, "line", first_line=2)


def _iso_times(clock: Any) -> tuple[np.ndarray, np.ndarray]:
    """Which times are plain ISO text in UTC (``2023-04-01T21:03:00``, a space for the ``T``,
    ``.fff`` or ``.ffffff``, ``Z`` or ``+00:00``) that Arrow reads as Python does, and their
    µs (from its digits; a day the month does not have, an hour 24 or a second 60 is left to
    the row reader, which refuses it)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    fixed = _fixed_iso(clock)
    if fixed is not None:
        return _us_of(np.ones(len(clock), dtype=np.bool_), *fixed)
    n = len(clock)
    iso = true_at(pc.match_substring_regex(clock, _ISO))
    if not iso.any():
        return iso, np.zeros(n, dtype=np.int64)
    text = clock if iso.all() else pc.if_else(arrow_of(iso), clock, "2000-01-01T00:00:00")
    ascii_ = text.cast(pa.large_binary())  # the pattern is ASCII: slice bytes

    def number(start: int, stop: int) -> np.ndarray:
        part = pc.binary_slice(ascii_, start, stop).cast(pa.large_string())
        return numpy_of(pc.cast(part, pa.int64()))

    fields = [number(a, a + width) for a, width in _PARTS]
    iso, us = _us_of(iso, *fields)
    if pc.any(pc.equal(pc.binary_slice(ascii_, 19, 20), b".")).as_py():
        digits = pc.extract_regex(text, r"^.{19}\.(?P<f>\d+)")  # null: no fraction
        fraction = pc.fill_null(pc.struct_field(digits, "f"), "0")
        scale = np.where(numpy_of(pc.utf8_length(fraction)) == 3, 1_000, 1)
        us += numpy_of(pc.cast(fraction, pa.int64())) * scale
    return iso, us


#: (start, width) of year, month, day, hour, minute and second in ISO text.
_PARTS = ((0, 4), (5, 2), (8, 2), (11, 2), (14, 2), (17, 2))


def _fixed_iso(clock: Any) -> list[np.ndarray] | None:
    """The year, month, day, hour, minute and second of times that are all written
    ``YYYY-MM-DDTHH:MM:SSZ`` (20 bytes each, what :data:`_ISO` matches), read from Arrow's
    bytes at once; None when any is written otherwise."""
    import pyarrow as pa

    n = len(clock)
    if n == 0 or clock.null_count or clock.type != pa.string():
        return None
    buffers = clock.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int32, count=n + 1, offset=clock.offset * 4)
    if offsets[-1] - offsets[0] != 20 * n or not (np.diff(offsets) == 20).all():
        return None
    rows = np.frombuffer(buffers[2], dtype=_TEXT20, count=n, offset=int(offsets[0]))
    byte = [rows[f"b{i}"] for i in range(20)]  # the i-th byte of every time, without copies
    marks = ((4, b"-"), (7, b"-"), (10, b"T"), (13, b":"), (16, b":"), (19, b"Z"))
    if not all((byte[i] == ord(c)).all() for i, c in marks) or not (byte[0] > 48).all():
        return None  # (a space for the T is left to the pattern)
    out = []
    for a, width in _PARTS:
        number = np.zeros(n, dtype=np.int64)
        for i in range(a, a + width):
            digit = byte[i] - np.uint8(ord("0"))  # wraps below "0": a non-digit is 10 or more
            if (digit > 9).any():
                return None
            number *= 10
            number += digit
        out.append(number)
    return out


#: 20 bytes as one record of 20 one-byte fields (a column of fixed-width times, byte by byte).
_TEXT20 = np.dtype([(f"b{i}", np.uint8) for i in range(20)])


#: Days of each month in a common year.
_MONTH_DAYS = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _us_of(
    ok: np.ndarray,
    year: np.ndarray,
    month: np.ndarray,
    day: np.ndarray,
    hour: np.ndarray,
    minute: np.ndarray,
    second: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Which of the ``ok`` date-times are real ones (the month has the day, the hour is below
    24, ...) and their µs since the epoch (of the Gregorian calendar, in integer arithmetic:
    H. Hinnant's ``days_from_civil``; years 1000-9999 here)."""
    iso = ok & (month >= 1) & (month <= 12) & (hour < 24) & (minute < 60) & (second < 60)
    month = np.clip(month, 1, 12)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    iso &= (day >= 1) & (day <= _MONTH_DAYS[month - 1] + (leap & (month == 2)))
    y = year - (month <= 2)  # years from March: February, with its leap day, comes last
    era = y // 400
    of_era = y - era * 400
    of_year = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    days = era * 146_097 + of_era * 365 + of_era // 4 - of_era // 100 + of_year - 719_468
    us = ((days * 24 + hour) * 60 + minute) * 60 + second
    us *= 1_000_000
    return iso, us


def _epoch_us(value: np.ndarray) -> np.ndarray:
    """Epoch numbers in µs, the unit chosen by magnitude as the row reader chooses it."""
    with np.errstate(over="ignore"):
        return np.where(
            value < 10**11,
            value * 1_000_000,
            np.where(
                value < 10**14, value * 1_000, np.where(value < 10**17, value, value // 1_000)
            ),
        )


def _assemble(
    rows: Screened, n: int, name: str, symbol: str, ceiling: Decimal, unit: str, first_line: int
) -> tuple[BarColumns, LoadReport]:
    """The columns and the report of screened rows (``unit`` "line" or "row" and the number of
    the first row name the bad ones, as the row reader names them)."""
    problems = [f"{unit} {i + first_line}: {why}" for i, why in rows.faults[:MAX_PROBLEMS]]
    skipped = len(rows.faults)
    if rows.good.size == 0:
        detail = f"; first problem: {problems[0]}" if problems else ""
        raise ValueError(f"{name}: no valid OHLCV rows ({n} read, {skipped} bad){detail}")
    bars, reordered, duplicates = ordered(symbol, rows, ceiling)
    report = LoadReport(
        source=name,
        symbol=symbol,
        rows_read=n,
        rows_loaded=len(bars),
        skipped=skipped,
        duplicates=duplicates,
        reordered=reordered,
        problems=tuple(problems),
    )
    return bars, report
