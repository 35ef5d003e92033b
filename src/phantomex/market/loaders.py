"""Read OHLCV candle files into lists of :class:`~phantomex.domain.models.Bar`.

Two formats are understood, each optionally gzip-compressed (detected from the content, so a
``.gz`` suffix is not required):

* **CSV** with a header row. Column names are case-insensitive; the time column may be called
  ``timestamp``, ``open_time``, ``time``, ``date`` or ``datetime`` and must hold the candle *open*
  time, either as ISO-8601 text (naive times are taken as UTC) or as a Unix epoch number. Epoch
  units are chosen by magnitude: below 1e11 seconds, below 1e14 milliseconds, below 1e17
  microseconds, otherwise nanoseconds. ``open``, ``high``, ``low`` and ``close`` are required,
  ``volume`` is optional (0 when the column is absent); other columns are ignored.
* **freqtrade JSON**: one array of rows ``[open_time_ms, open, high, low, close, volume]``.
  Numbers are parsed straight to :class:`~decimal.Decimal` from their text, never via float.

Every price becomes a Decimal and every time a timezone-aware UTC datetime. A bad row (missing or
unparsable field, a price that is NaN, infinite, not positive or not below the price ceiling
``max_price`` (default 1e12), ``high < low``, an open or close outside ``[low, high]``, a negative
volume: see :mod:`phantomex.market.validation`) is dropped: never traded on, and never silently.
Each drop is counted in the :class:`LoadReport` with its line (CSV) or row (JSON) and the field at
fault, e.g. ``line 7: close 1E+400 is not below the price ceiling 1E+12``, and :func:`load_bars`
and :func:`load_dataset` log them as a warning naming the file. A bad row does not abort the load:
one broken candle in a month of data costs that minute, not the replay. Rows out of order are
sorted and of rows sharing a timestamp the first one in the file is kept. A file that cannot be
read, has no usable header, or has no valid row at all raises :class:`ValueError` naming the file.

:func:`load_dataset` loads the candles shipped inside the package (see
``market/datasets/PROVENANCE.md``).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import logging
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any

from phantomex.domain.models import Bar
from phantomex.domain.money import MAX_PRICE
from phantomex.market.validation import bar_fault

log = logging.getLogger(__name__)

__all__ = [
    "DATASETS",
    "LoadReport",
    "dataset_symbols",
    "infer_symbol",
    "load_bars",
    "load_dataset",
    "parse_ohlcv",
    "read_ohlcv",
]

#: Shipped datasets: name -> {symbol: file name inside ``phantomex/market/datasets``}.
DATASETS: dict[str, dict[str, str]] = {
    "demo": {s: f"{s}_1m.csv.gz" for s in ("BTC", "ETH", "SOL", "DOGE", "XRP")},
}

TIME_COLUMNS = ("timestamp", "open_time", "time", "date", "datetime")
MAX_PROBLEMS = 20  # how many bad-row descriptions a report keeps

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_NUMERIC_TIME = re.compile(r"-?\d+(\.\d+)?")
_SYMBOL = re.compile(r"[A-Za-z][A-Za-z0-9]*")
_EXCHANGES = frozenset(
    {
        "binance",
        "binanceus",
        "bitfinex",
        "bitstamp",
        "bybit",
        "coinbase",
        "gateio",
        "gemini",
        "huobi",
        "kraken",
        "kucoin",
        "okx",
    }
)
_FILE_SUFFIXES = (".gz", ".json", ".csv", ".tsv", ".txt")


class _BadRow(Exception):
    """Raised while parsing one row; turned into a skipped-row count, never escapes."""


@dataclass(frozen=True, slots=True)
class LoadReport:
    """What happened while loading one file."""

    source: str
    symbol: str
    rows_read: int  # non-blank data rows in the file
    rows_loaded: int  # bars returned
    skipped: int  # bad rows dropped
    duplicates: int  # rows dropped because an earlier row had the same timestamp
    reordered: bool  # the file was not in time order and had to be sorted
    problems: tuple[str, ...] = ()  # the first MAX_PROBLEMS bad rows, e.g. "row 7: high < low"


# ----------------------------------------------------------------------------- public functions


def infer_symbol(path: str | Path) -> str:
    """Guess the base asset from a file name.

    ``binance_BTC_USDT_1m_2023-03-16_2023-05-01.json``, ``BTC_USDT-1m.json``, ``BTC.csv.gz`` and
    ``btc_1m.csv`` all give ``BTC``: a leading exchange name is dropped and the first remaining
    ``_``/``-``/``.``-separated token is upper-cased. Raises ValueError when no token qualifies.
    """
    name = Path(path).name
    stem = name
    changed = True
    while changed:
        changed = False
        for suffix in _FILE_SUFFIXES:
            if stem.lower().endswith(suffix) and len(stem) > len(suffix):
                stem = stem[: -len(suffix)]
                changed = True
    tokens = [t for t in re.split(r"[_\-\s.]+", stem) if t]
    while tokens and tokens[0].lower() in _EXCHANGES:
        tokens.pop(0)
    if not tokens or not _SYMBOL.fullmatch(tokens[0]):
        raise ValueError(f"{name}: cannot infer a symbol from the file name; pass symbol=...")
    return tokens[0].upper()


def read_ohlcv(
    path: str | Path, symbol: str | None = None, *, max_price: Decimal = MAX_PRICE
) -> tuple[list[Bar], LoadReport]:
    """Load a CSV or freqtrade-JSON file (optionally gzipped); returns the bars and a report."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ValueError(f"{p}: cannot read OHLCV file: {exc}") from exc
    sym = symbol if symbol is not None else infer_symbol(p)
    return parse_ohlcv(data, name=str(p), symbol=sym, max_price=max_price)


def load_bars(
    path: str | Path, symbol: str | None = None, *, max_price: Decimal = MAX_PRICE
) -> list[Bar]:
    """Like :func:`read_ohlcv` but returns only the bars; dropped rows are logged as a warning."""
    bars, report = read_ohlcv(path, symbol, max_price=max_price)
    log_report(report)
    return bars


def parse_ohlcv(
    data: bytes,
    *,
    name: str,
    symbol: str,
    fmt: str | None = None,
    max_price: Decimal = MAX_PRICE,
) -> tuple[list[Bar], LoadReport]:
    """Parse OHLCV content already in memory. ``name`` is used for format detection (by suffix)
    and in error messages; ``fmt`` ("csv" or "json") overrides the detection; a price at or
    above ``max_price`` makes its row bad."""
    symbol = symbol.strip()
    if not symbol:
        raise ValueError(f"{name}: empty symbol")
    text = _decode(data, name)
    if fmt is None:
        fmt = detect_format(name, text)
    if fmt == "json":
        rows = _json_rows(text, name, max_price)
    elif fmt == "csv":
        rows = _csv_rows(text, name, max_price)
    else:
        raise ValueError(f"{name}: unknown format {fmt!r} (expected 'csv' or 'json')")
    return _collect(rows, name, symbol)


def dataset_symbols(name: str = "demo") -> list[str]:
    """The symbols of a shipped dataset."""
    return list(_dataset_files(name))


def load_dataset(
    name: str = "demo",
    symbols: Iterable[str] | None = None,
    *,
    max_price: Decimal = MAX_PRICE,
    datasets: Path | None = None,
) -> dict[str, list[Bar]]:
    """Load a dataset shipped with PhantomEx, or one stored in ``datasets`` (the data
    directory's, :attr:`Settings.datasets_dir`) by ``phantomex data download|import``, keyed by
    symbol (in the order asked for).

    ``demo`` holds real Binance spot 1-minute candles of BTC, ETH, SOL, DOGE and XRP against USDT
    for 2023-04-01 21:03 .. 2023-05-01 21:00 UTC (43,198 bars each); see
    ``phantomex/market/datasets/PROVENANCE.md``. Rows are checked as in :func:`read_ohlcv`."""
    if name not in DATASETS:  # downloaded or imported: ``phantomex data list``
        from phantomex.market.datastore import DataStore

        if datasets is None:
            shipped = ", ".join(DATASETS)
            raise ValueError(f"unknown dataset {name!r} (shipped: {shipped})")
        wanted = None if symbols is None else list(symbols)
        return DataStore(datasets).load_dataset(name, wanted, max_price=max_price)
    files = _dataset_files(name)
    wanted = list(files) if symbols is None else [s.strip().upper() for s in symbols]
    unknown = [s for s in wanted if s not in files]
    if unknown:
        raise ValueError(
            f"dataset {name!r} has no symbol(s) {', '.join(unknown)}; available: "
            + ", ".join(files)
        )
    root = resources.files("phantomex.market").joinpath("datasets")
    out: dict[str, list[Bar]] = {}
    for sym in dict.fromkeys(wanted):
        resource = root.joinpath(files[sym])
        try:
            data = resource.read_bytes()
        except OSError as exc:
            raise ValueError(f"dataset {name!r}: cannot read {files[sym]}: {exc}") from exc
        bars, report = parse_ohlcv(
            data, name=f"{name}/{files[sym]}", symbol=sym, max_price=max_price
        )
        log_report(report)
        out[sym] = bars
    return out


# ----------------------------------------------------------------------------- internals


def _dataset_files(name: str) -> dict[str, str]:
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}") from None


def log_report(report: LoadReport) -> None:
    if report.skipped or report.duplicates:
        more = report.skipped - len(report.problems)
        log.warning(
            "%s: skipped %d bad row(s), dropped %d duplicate timestamp(s)%s%s",
            report.source,
            report.skipped,
            report.duplicates,
            "".join(f"; {problem}" for problem in report.problems),
            f"; and {more} more" if more > 0 else "",
        )


def _decode(data: bytes, name: str) -> str:
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ValueError(f"{name}: corrupt gzip data: {exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{name}: not UTF-8 text: {exc}") from exc


def detect_format(name: str, text: str) -> str:
    """ "json" or "csv": by the file name's suffix, else by ``text`` starting with ``[``."""
    lower = name.lower()
    if lower.endswith(".gz"):
        lower = lower[:-3]
    if lower.endswith(".json"):
        return "json"
    if lower.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    return "json" if text.lstrip()[:1] == "[" else "csv"


# A parsed row: (time, open, high, low, close, volume). Row generators yield (where, row or the
# reason the row is bad), ``where`` being "line 7" (CSV) or "row 7" (JSON).
_Row = tuple[datetime, Decimal, Decimal, Decimal, Decimal, Decimal]


def _from_epoch(value: Decimal | int) -> datetime:
    size = abs(int(value))
    if size < 10**11:
        us = value * 1_000_000
    elif size < 10**14:
        us = value * 1_000
    elif size < 10**17:
        us = value
    else:
        us = value / 1_000 if isinstance(value, Decimal) else value // 1_000
    try:
        return _EPOCH + timedelta(microseconds=int(us))
    except (OverflowError, ValueError) as exc:
        raise _BadRow(f"epoch time out of range: {value}") from exc


def _parse_time_text(text: str) -> datetime:
    s = text.strip()
    if not s:
        raise _BadRow("missing time")
    if s.isdigit():
        return _from_epoch(int(s))
    if _NUMERIC_TIME.fullmatch(s):
        return _from_epoch(Decimal(s))
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise _BadRow(f"unparsable time {s!r}") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _check(o: Decimal, h: Decimal, lo: Decimal, c: Decimal, v: Decimal, ceiling: Decimal) -> None:
    fault = bar_fault(o, h, lo, c, v, ceiling)
    if fault:
        raise _BadRow(fault)


def csv_delimiter(first_line: str) -> str:
    """The delimiter of a CSV file whose header is ``first_line``: comma, else tab, else
    semicolon (when the line holds one), else comma."""
    if "," not in first_line:
        if "\t" in first_line:
            return "\t"
        if ";" in first_line:
            return ";"
    return ","


def csv_columns(header: Sequence[str], name: str) -> tuple[int, int, int, int, int, int | None]:
    """The indices of time, open, high, low, close and volume (None: absent) in a CSV header;
    ValueError naming ``name`` when a needed column is missing."""
    cols = [h.strip().lower() for h in header]
    time_col = next((c for c in TIME_COLUMNS if c in cols), None)
    missing = [c for c in ("open", "high", "low", "close") if c not in cols]
    if time_col is None or missing:
        raise ValueError(
            f"{name}: CSV header needs a time column ({'/'.join(TIME_COLUMNS)}) and "
            f"open, high, low, close[, volume] columns; got {list(header)!r}"
        )
    oi, hi, li, ci = (cols.index(c) for c in ("open", "high", "low", "close"))
    vi = cols.index("volume") if "volume" in cols else None
    return cols.index(time_col), oi, hi, li, ci, vi


def _csv_rows(text: str, name: str, ceiling: Decimal) -> Iterator[tuple[str, _Row | str]]:
    delimiter = csv_delimiter(text.lstrip("\r\n").split("\n", 1)[0])
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    header: list[str] | None = None
    for row in reader:
        if any(cell.strip() for cell in row):
            header = row
            break
    if header is None:
        raise ValueError(f"{name}: empty file")
    parse = csv_row_parser(csv_columns(header, name), ceiling)
    for row in reader:
        line = reader.line_num
        if len(row) <= 1 and not (row and row[0].strip()):
            continue  # blank line
        yield f"line {line}", parse(row)


def csv_row_parser(
    columns: tuple[int, int, int, int, int, int | None], ceiling: Decimal
) -> Callable[[Sequence[str]], _Row | str]:
    """The row rule of CSV files: a function from a row's cells to the parsed row or why it is
    bad. ``columns`` are the indices of time, open, high, low, close and volume (None: 0)."""
    ti, oi, hi, li, ci, vi = columns
    cache: dict[str, Decimal] = {}  # prices repeat a lot: reuse one Decimal per distinct text
    zero = Decimal(0)

    def num(cell: str, label: str) -> Decimal:
        value = cache.get(cell)
        if value is None:
            s = cell.strip()
            if not s:
                raise _BadRow(f"missing {label}")
            try:
                value = Decimal(s)
            except InvalidOperation:
                raise _BadRow(f"{label} is not a number: {s!r}") from None
            if len(cache) < 200_000:
                cache[cell] = value
        return value

    def parse(row: Sequence[str]) -> _Row | str:
        try:
            try:
                t = _parse_time_text(row[ti])
                o = num(row[oi], "open")
                h = num(row[hi], "high")
                lo = num(row[li], "low")
                c = num(row[ci], "close")
                v = zero if vi is None else num(row[vi], "volume")
            except IndexError:
                raise _BadRow(f"missing fields ({len(row)} columns)") from None
            _check(o, h, lo, c, v, ceiling)
        except _BadRow as exc:
            return str(exc)
        return (t, o, h, lo, c, v)

    return parse


def _json_num(value: Any, label: str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, float):  # only NaN/Infinity constants can get here
        return Decimal(repr(value))
    if isinstance(value, str):
        try:
            return Decimal(value.strip())
        except InvalidOperation:
            raise _BadRow(f"{label} is not a number: {value!r}") from None
    if value is None:
        raise _BadRow(f"missing {label}")
    raise _BadRow(f"{label} is not a number: {value!r}")


def _json_time(value: Any) -> datetime:
    if isinstance(value, int) and not isinstance(value, bool):
        return _from_epoch(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _BadRow(f"invalid time {value}")
        return _from_epoch(value)
    if isinstance(value, str):
        return _parse_time_text(value)
    if value is None:
        raise _BadRow("missing time")
    raise _BadRow(f"unparsable time {value!r}")


def _json_rows(text: str, name: str, ceiling: Decimal) -> Iterator[tuple[str, _Row | str]]:
    try:
        data = json.loads(text, parse_float=Decimal, parse_constant=Decimal)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{name}: not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise ValueError(f"{name}: expected a JSON array of [time, open, high, low, close, volume]")
    for index, row in enumerate(data, start=1):
        try:
            if not isinstance(row, list) or len(row) < 6:
                raise _BadRow("expected [time, open, high, low, close, volume]")
            t = _json_time(row[0])
            o = _json_num(row[1], "open")
            h = _json_num(row[2], "high")
            lo = _json_num(row[3], "low")
            c = _json_num(row[4], "close")
            v = _json_num(row[5], "volume")
            _check(o, h, lo, c, v, ceiling)
        except _BadRow as exc:
            yield f"row {index}", str(exc)
            continue
        yield f"row {index}", (t, o, h, lo, c, v)


def _collect(
    rows: Iterable[tuple[str, _Row | str]], name: str, symbol: str
) -> tuple[list[Bar], LoadReport]:
    bars: list[Bar] = []
    problems: list[str] = []
    read = skipped = 0
    for where, parsed in rows:
        read += 1
        if isinstance(parsed, str):
            skipped += 1
            if len(problems) < MAX_PROBLEMS:
                problems.append(f"{where}: {parsed}")
            continue
        t, o, h, lo, c, v = parsed
        bars.append(Bar(symbol, t, o, h, lo, c, v))
    if not bars:
        detail = f"; first problem: {problems[0]}" if problems else ""
        raise ValueError(f"{name}: no valid OHLCV rows ({read} read, {skipped} bad){detail}")
    reordered = any(b.time < a.time for a, b in pairwise(bars))
    if reordered:
        bars.sort(key=lambda b: b.time)  # stable: equal times keep file order
    unique: list[Bar] = []
    duplicates = 0
    last: datetime | None = None
    for bar in bars:
        if bar.time == last:
            duplicates += 1
            continue
        unique.append(bar)
        last = bar.time
    report = LoadReport(
        source=name,
        symbol=symbol,
        rows_read=read,
        rows_loaded=len(unique),
        skipped=skipped,
        duplicates=duplicates,
        reordered=reordered,
        problems=tuple(problems),
    )
    return unique, report
