"""Downloaded and imported candles, kept as Parquet files under ``<data_dir>/datasets``.

A dataset is a folder; each symbol and timeframe is one file ``<SYMBOL>_<timeframe>.parquet``
with the open time (UTC, microseconds) and the OHLCV values as exact decimal text (money stays
Decimal: Parquet's float columns would round, and one fixed decimal scale would not fit every
instrument). A file's metadata says where the candles came from. Loading checks every candle as
a bar file is checked (:mod:`phantomex.market.validation`): a bad one is dropped and logged with
its file, row and field."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from phantomex.domain.models import Bar
from phantomex.domain.money import MAX_PRICE
from phantomex.market.validation import bar_fault

if TYPE_CHECKING:
    import pyarrow as pa

    from phantomex.market.columns import BarColumns

log = logging.getLogger(__name__)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_FILE = re.compile(r"(?P<symbol>[A-Z0-9]+)_(?P<timeframe>[0-9]+[smhdwM])\.parquet")


@dataclass(frozen=True)
class StoredSeries:
    """One stored file: what it holds and where it came from."""

    dataset: str
    symbol: str
    timeframe: str
    bars: int
    first: datetime | None
    last: datetime | None
    source: str
    path: Path


class DataStore:
    """The Parquet datasets under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, dataset: str, symbol: str, timeframe: str) -> Path:
        if not _NAME.fullmatch(dataset):
            raise ValueError(
                f"bad dataset name {dataset!r}: letters, digits, '_', '-', '.'; at most 64"
            )
        if not re.fullmatch(r"[A-Z0-9]+", symbol):
            raise ValueError(f"bad symbol {symbol!r}: upper-case letters and digits only")
        if not re.fullmatch(r"[0-9]+[smhdwM]", timeframe):
            raise ValueError(f"bad timeframe {timeframe!r} (e.g. 1m, 5m, 1h, 1d)")
        return self.root / dataset / f"{symbol}_{timeframe}.parquet"

    def save(
        self, dataset: str, symbol: str, timeframe: str, bars: Iterable[Bar], source: str
    ) -> int:
        """Merge ``bars`` into the stored file (a stored bar with the same time wins: the
        first download of a candle is kept) and write it atomically, then its columns' cache
        (:mod:`phantomex.market.column_cache`); returns the bar count."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        path = self.path(dataset, symbol, timeframe)
        merged = {b.time: b for b in bars}
        merged.update({b.time: b for b in self.load(dataset, symbol, timeframe)})
        ordered = [merged[t] for t in sorted(merged)]
        table = pa.Table.from_pydict(
            {
                "time": [b.time for b in ordered],
                "open": [format(b.open, "f") for b in ordered],
                "high": [format(b.high, "f") for b in ordered],
                "low": [format(b.low, "f") for b in ordered],
                "close": [format(b.close, "f") for b in ordered],
                "volume": [format(b.volume, "f") for b in ordered],
            },
            schema=schema().with_metadata({"source": source, "symbol": symbol}),
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".parquet.tmp")
        pq.write_table(table, tmp)
        tmp.replace(path)
        self.load_columns(dataset, symbol, timeframe)  # writes the cache
        return len(ordered)

    def load(
        self, dataset: str, symbol: str, timeframe: str, *, max_price: Decimal = MAX_PRICE
    ) -> list[Bar]:
        """The stored candles, oldest first; bad ones (see the module) are dropped and logged."""
        path = self.path(dataset, symbol, timeframe)
        if not path.exists():
            return []
        bars: list[Bar] = []
        problems: list[str] = []
        for row, r in enumerate(_read(path).to_pylist(), start=1):
            try:
                o, h, lo, c, v = (Decimal(r[k]) for k in ("open", "high", "low", "close", "volume"))
            except (InvalidOperation, TypeError):
                problems.append(f"row {row}: a value is not a number")
                continue
            fault = bar_fault(o, h, lo, c, v, max_price)
            if fault:
                problems.append(f"row {row}: {fault}")
                continue
            bars.append(Bar(symbol, r["time"].astimezone(UTC), o, h, lo, c, v))
        if problems:
            log.warning(
                "%s: dropped %d bad candle(s): %s", path, len(problems), "; ".join(problems[:20])
            )
        return bars

    def load_columns(
        self, dataset: str, symbol: str, timeframe: str, *, max_price: Decimal = MAX_PRICE
    ) -> BarColumns:
        """:meth:`load` as columns (the same candles kept and dropped, the same log): from the
        file's cache when it matches the file (:mod:`phantomex.market.column_cache`), else
        from the file, then cached for the next time."""
        from phantomex.market.column_cache import read_cache

        path = self.path(dataset, symbol, timeframe)
        cached = read_cache(path, symbol, max_price)
        if cached is not None:
            _log_dropped(path, cached.dropped, cached.problems)
            return cached.columns
        return self._read_columns(path, dataset, symbol, timeframe, max_price)

    def _read_columns(
        self, path: Path, dataset: str, symbol: str, timeframe: str, max_price: Decimal
    ) -> BarColumns:
        """:meth:`load_columns` from the Parquet file."""
        import pyarrow as pa
        import pyarrow.compute as pc

        from phantomex.market.column_cache import file_key, write_cache
        from phantomex.market.columns import (
            FIELDS,
            BarColumns,
            arrow_of,
            combined,
            numpy_of,
            screen,
        )

        key = file_key(path)
        table = _read(path) if path.exists() else None
        clock = table.column("time") if table is not None else None
        if table is None or table.num_rows == 0 or clock is None or clock.null_count:
            return BarColumns.from_bars(symbol, self.load(dataset, symbol, timeframe))
        time_us = numpy_of(pc.cast(clock, pa.int64()))  # pyarrow's to_numpy imports pandas
        texts = {k: table.column(k) for k in FIELDS}

        def exact(cells: dict[str, Any]) -> Any:
            try:
                o, h, lo, c, v = (Decimal(cells[k]) for k in FIELDS)
            except (InvalidOperation, TypeError):
                return "a value is not a number"
            fault = bar_fault(o, h, lo, c, v, max_price)
            return fault or (cells["time"].astimezone(UTC), o, h, lo, c, v)

        cells = {"time": clock, **texts}
        ok = np.ones(table.num_rows, dtype=np.bool_)
        rows = screen(texts, time_us, ok, cells, exact, max_price)
        kept = rows.time_us[rows.good]
        if kept.size > 1 and not (np.diff(kept) > 0).all():  # not as stored by save()
            return BarColumns.from_bars(symbol, self.load(dataset, symbol, timeframe))
        problems = [f"row {i + 1}: {why}" for i, why in rows.faults]
        _log_dropped(path, len(problems), problems[:20])
        if rows.good.size == table.num_rows:  # every row kept: no copies
            values = rows.values
            texts = {k: combined(rows.texts[k]) for k in FIELDS}
        else:
            picked = arrow_of(rows.good)  # pa.array imports pandas
            values = {k: v[rows.good] for k, v in rows.values.items()}
            texts = {k: combined(rows.texts[k]).take(picked) for k in FIELDS}
        columns = BarColumns(symbol, kept, values, texts, max_price)
        if key is not None and max_price == MAX_PRICE and len(columns):
            write_cache(path, columns, len(problems), problems[:20], key)
        return columns

    def last_time(self, dataset: str, symbol: str, timeframe: str) -> datetime | None:
        """The open time of the newest stored bar (where a download resumes)."""
        path = self.path(dataset, symbol, timeframe)
        if not path.exists():
            return None
        times = _read(path, ["time"]).column("time")
        if len(times) == 0:
            return None
        newest: datetime = times[len(times) - 1].as_py()
        return newest.astimezone(UTC)

    def series(self) -> list[StoredSeries]:
        """Every stored file, by dataset then symbol."""
        from pyarrow.parquet import read_metadata

        out: list[StoredSeries] = []
        if not self.root.is_dir():
            return out
        for path in sorted(self.root.glob("*/*.parquet")):
            match = _FILE.fullmatch(path.name)
            if match is None:
                continue
            meta = read_metadata(path)
            times = _read(path, ["time"]).column("time")
            custom = meta.schema.to_arrow_schema().metadata or {}
            out.append(
                StoredSeries(
                    dataset=path.parent.name,
                    symbol=match["symbol"],
                    timeframe=match["timeframe"],
                    bars=meta.num_rows,
                    first=times[0].as_py() if len(times) else None,
                    last=times[len(times) - 1].as_py() if len(times) else None,
                    source=custom.get(b"source", b"").decode(),
                    path=path,
                )
            )
        return out

    def load_dataset(
        self, dataset: str, symbols: Sequence[str] | None = None, *, max_price: Decimal = MAX_PRICE
    ) -> dict[str, list[Bar]]:
        """Bars of a stored dataset keyed by symbol (one timeframe per symbol expected)."""
        return {
            x: self.load(dataset, x, timeframe, max_price=max_price)
            for x, timeframe in self._timeframes(dataset, symbols).items()
        }

    def _timeframes(self, dataset: str, symbols: Sequence[str] | None) -> dict[str, str]:
        """The timeframe of each wanted symbol of a stored dataset (in the order asked for)."""
        stored = self._files(dataset)
        if not stored:
            names = sorted({s.dataset for s in self.series()})
            raise ValueError(
                f"unknown dataset {dataset!r}; shipped: demo; stored under {self.root}: "
                + (", ".join(names) or "none (phantomex data download|import)")
            )
        by_symbol: dict[str, str] = {}
        for symbol, timeframe in stored:
            if symbol in by_symbol:
                raise ValueError(
                    f"dataset {dataset!r} holds {symbol} in two timeframes; "
                    "keep one timeframe per dataset"
                )
            by_symbol[symbol] = timeframe
        wanted = list(by_symbol) if symbols is None else [x.upper() for x in symbols]
        unknown = [x for x in wanted if x not in by_symbol]
        if unknown:
            raise ValueError(
                f"dataset {dataset!r} has no symbol(s) {', '.join(unknown)}; "
                f"available: {', '.join(by_symbol)}"
            )
        return {x: by_symbol[x] for x in dict.fromkeys(wanted)}

    def _files(self, dataset: str) -> list[tuple[str, str]]:
        """The (symbol, timeframe) of each file of a stored dataset, by file name as
        :meth:`series` lists them, without reading the files."""
        folder = self.root / dataset
        if not _NAME.fullmatch(dataset) or not folder.is_dir():
            return []
        found = (_FILE.fullmatch(p.name) for p in sorted(folder.glob("*.parquet")))
        return [(m["symbol"], m["timeframe"]) for m in found if m is not None]

    def load_dataset_columns(
        self, dataset: str, symbols: Sequence[str] | None = None, *, max_price: Decimal = MAX_PRICE
    ) -> dict[str, BarColumns]:
        """:meth:`load_dataset` as columns."""
        return {
            x: self.load_columns(dataset, x, timeframe, max_price=max_price)
            for x, timeframe in self._timeframes(dataset, symbols).items()
        }


def _read(path: Path, columns: list[str] | None = None) -> pa.Table:
    """One stored file as a table (``ParquetFile``: ``pq.read_table`` goes through
    ``pyarrow.dataset``, which imports pandas, ~0.25 s of a command's start-up)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).read(columns=columns)


def schema() -> pa.Schema:
    """The stored files' columns (pyarrow is imported when a file is written or read)."""
    import pyarrow as pa

    return pa.schema(
        [
            ("time", pa.timestamp("us", tz="UTC")),
            ("open", pa.string()),
            ("high", pa.string()),
            ("low", pa.string()),
            ("close", pa.string()),
            ("volume", pa.string()),
        ]
    )


def _log_dropped(path: Path, dropped: int, first: list[str]) -> None:
    """The warning of :meth:`DataStore.load` about dropped candles (the first 20 reasons)."""
    if dropped:
        log.warning("%s: dropped %d bad candle(s): %s", path, dropped, "; ".join(first))
