"""Bars as columns, for the research engine: float64 arrays of the prices and the times, and
the exact decimal text each :class:`~phantomex.domain.models.Bar` is made of when one is asked
for (the fills of a run, or every bar for the exact kernel).

Loading checks every candle by the row rule of :mod:`phantomex.market.validation`, vectorised:
the floats prove a row good when every price is plain decimal text, ``0 < price < ceiling`` and
each ``a <= b`` of the rule holds as ``float(a) > float(b)`` or as the same text (rounding to
float is monotone, so ``float(a) > float(b)`` implies ``a > b``); ``float(text)`` is Arrow's
parser, bit-identical to ``float(Decimal(text))``. Every other row (a tie in floats between
different texts, a zero or odd number, a bad or unusual time) goes through the row reader's own
function, so the same rows are held and refused, with the same messages, as
:func:`~phantomex.market.loaders.parse_ohlcv` gives. A CSV file laid out in a way Arrow's reader
and Python's ``csv`` module might split differently (quotes, blank lines, lone carriage
returns, a header not on the first line, ragged rows) is read by the row reader instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, overload

import numpy as np

from phantomex.domain.models import Bar
from phantomex.domain.money import MAX_PRICE

__all__ = [
    "FIELDS",
    "BarColumns",
    "Screened",
    "arrow_of",
    "combined",
    "common_step",
    "numpy_of",
    "ordered",
    "screen",
    "true_at",
]

FIELDS = ("open", "high", "low", "close", "volume")
#: Plain decimal text: what both Arrow's float parser and :class:`Decimal` read the same way.
NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_ZERO = r"^\+?(?:0+\.?0*|\.0+)(?:[eE][+-]?\d+)?$"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CHUNK = 65_536


class BarColumns(Sequence[Bar]):
    """One symbol's bars, in time order with unique times, as columns. Indexing builds the
    :class:`Bar` from the exact text (the row reader's Decimal); a slice is columns again.
    ``ceiling`` is the price ceiling the bars were checked against."""

    def __init__(
        self,
        symbol: str,
        time_us: np.ndarray,
        values: Mapping[str, np.ndarray],
        texts: Mapping[str, Any],
        ceiling: Decimal = MAX_PRICE,
    ) -> None:
        self.symbol = symbol
        self.time_us = time_us
        self.values = dict(values)
        # field -> the exact decimal texts: a pyarrow string array, or fixed-width ASCII bytes
        # (a NumPy ``S`` array, as :mod:`phantomex.market.column_cache` keeps them)
        self.texts = dict(texts)
        self.ceiling = ceiling

    @classmethod
    def from_bars(
        cls, symbol: str, bars: Sequence[Bar], ceiling: Decimal = MAX_PRICE
    ) -> BarColumns:
        """Columns of bars already in time order with unique times (the row reader's)."""
        import pyarrow as pa

        time_us = np.array(
            [(b.time - _EPOCH) // timedelta(microseconds=1) for b in bars], dtype=np.int64
        )
        values = {k: np.array([float(getattr(b, k)) for b in bars]) for k in FIELDS}
        texts = {k: pa.array([str(getattr(b, k)) for b in bars], pa.string()) for k in FIELDS}
        return cls(symbol, time_us, values, texts, ceiling)

    def __len__(self) -> int:
        return int(self.time_us.size)

    @overload
    def __getitem__(self, i: int) -> Bar: ...
    @overload
    def __getitem__(self, i: slice) -> BarColumns: ...
    def __getitem__(self, i: int | slice) -> Bar | BarColumns:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self))
            if step != 1:
                raise ValueError("BarColumns slices take every bar (step 1)")
            return self._part(start, stop)
        j = i + len(self) if i < 0 else i
        if not 0 <= j < len(self):
            raise IndexError(i)
        at = np.array([j], dtype=np.int64)
        o, h, lo, c, v = (Decimal(_picked(self.texts[k], at)[0]) for k in FIELDS)
        return Bar(self.symbol, _time(int(self.time_us[j])), o, h, lo, c, v)

    def __iter__(self) -> Iterator[Bar]:
        for start in range(0, len(self), _CHUNK):
            stop = min(start + _CHUNK, len(self))
            times = self.time_us[start:stop].tolist()
            cols = [_between(self.texts[k], start, stop) for k in FIELDS]
            for t, o, h, lo, c, v in zip(times, *cols, strict=True):
                yield Bar(
                    self.symbol,
                    _time(t),
                    Decimal(o),
                    Decimal(h),
                    Decimal(lo),
                    Decimal(c),
                    Decimal(v),
                )

    def decimals(self, field: str, positions: np.ndarray) -> list[Decimal]:
        """The exact values of one field at ``positions`` (what a bar there would hold)."""

        picked = _picked(self.texts[field], np.asarray(positions, dtype=np.int64))
        return [Decimal(text) for text in picked]

    def _part(self, start: int, stop: int) -> BarColumns:
        stop = max(start, stop)
        return BarColumns(
            self.symbol,
            self.time_us[start:stop],
            {k: v[start:stop] for k, v in self.values.items()},
            {
                k: t[start:stop] if isinstance(t, np.ndarray) else t.slice(start, stop - start)
                for k, t in self.texts.items()
            },
            self.ceiling,
        )

    def between(self, start: datetime | None, end: datetime | None) -> BarColumns:
        """The bars opening in ``[start, end)``."""
        lo = 0 if start is None else int(np.searchsorted(self.time_us, _us(start), "left"))
        hi = len(self) if end is None else int(np.searchsorted(self.time_us, _us(end), "left"))
        return self._part(lo, hi)


def common_step(data: Mapping[str, BarColumns]) -> timedelta:
    """The most common spacing between consecutive bars (smallest on a tie; 1 minute when there
    is none), as :func:`~phantomex.research.spec.bar_period` finds it."""
    empty = np.empty(0, dtype=np.int64)
    steps = np.concatenate([np.diff(b.time_us) for b in data.values()] or [empty])
    if steps.size and steps[0] > 0 and bool((steps == steps[0]).all()):
        return timedelta(microseconds=int(steps[0]))  # evenly spaced: nothing to count
    steps = steps[steps > 0]
    if steps.size == 0:
        return timedelta(minutes=1)
    values, counts = np.unique(steps, return_counts=True)  # sorted: argmax takes the smallest
    return timedelta(microseconds=int(values[int(np.argmax(counts))]))


def _picked(texts: Any, positions: np.ndarray) -> list[str]:
    """The texts at ``positions`` of a column of either kind."""
    if isinstance(texts, np.ndarray):
        return [b.decode("ascii") for b in texts[positions].tolist()]
    picked: list[str] = texts.take(arrow_of(positions)).to_pylist()
    return picked


def _between(texts: Any, start: int, stop: int) -> list[str]:
    """The texts of rows ``start`` to ``stop`` of a column of either kind."""
    if isinstance(texts, np.ndarray):
        return [b.decode("ascii") for b in texts[start:stop].tolist()]
    part: list[str] = texts[start:stop].to_pylist()
    return part


def _time(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _us(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1)


# -- the vectorised row rule -----------------------------------------------------------------------
#: A row the floats cannot vouch for, decided by the row reader's rule: its cells by field (and
#: "time") in, the parsed (time, open, high, low, close, volume) or why it is bad out.
ExactRow = Callable[
    [dict[str, Any]], "tuple[datetime, Decimal, Decimal, Decimal, Decimal, Decimal] | str"
]


class Screened:
    """The rows of one file after the row rule: good rows as arrays (in file order) and the
    bad rows' positions and reasons."""

    def __init__(
        self,
        good: np.ndarray,
        time_us: np.ndarray,
        values: dict[str, np.ndarray],
        texts: dict[str, Any],
        faults: list[tuple[int, str]],
    ) -> None:
        self.good = good  # row positions, file order
        self.time_us = time_us
        self.values = values
        self.texts = texts
        self.faults = faults  # (row position, why), file order


def screen(
    texts: Mapping[str, Any],
    time_us: np.ndarray,
    time_ok: np.ndarray,
    cells: Mapping[str, Any],
    exact: ExactRow,
    ceiling: Decimal,
) -> Screened:
    """The row rule over whole columns. ``texts``: the five fields as Arrow strings;
    ``time_us``/``time_ok``: the times where the vectorised time parse applies; ``cells``: the
    raw columns handed to ``exact`` for every row the floats cannot vouch for."""
    import pyarrow as pa
    import pyarrow.compute as pc

    values: dict[str, np.ndarray] = {}
    plain: dict[str, np.ndarray] = {}
    for k in FIELDS:
        values[k], plain[k] = _floats(texts[k])
    same = {
        (a, b): true_at(pc.equal(texts[a], texts[b]))
        for a, b in (
            ("high", "low"),
            ("open", "low"),
            ("high", "open"),
            ("close", "low"),
            ("high", "close"),
        )
    }
    sure = np.array(time_ok, dtype=np.bool_)
    for k in FIELDS:
        sure &= plain[k]
    limit = float(ceiling)
    for k in ("open", "high", "low", "close"):
        sure &= (values[k] > 0) & (values[k] < limit)
    for (a, b), equal in same.items():
        sure &= (values[a] > values[b]) | equal
    volume = values["volume"]
    sure &= (np.isfinite(volume) & (volume > 0)) | _zero(texts["volume"], volume == 0)
    time_us = np.array(time_us, dtype=np.int64)
    odd = np.flatnonzero(~sure)
    faults: list[tuple[int, str]] = []
    if odd.size:
        picked = arrow_of(odd)
        rows = {k: c.take(picked).to_pylist() for k, c in cells.items()}
        fixed: dict[str, list[str]] = {k: [] for k in FIELDS}
        fixed_at: list[int] = []
        for n, i in enumerate(odd.tolist()):
            parsed = exact({k: v[n] for k, v in rows.items()})
            if isinstance(parsed, str):
                faults.append((i, parsed))
                continue
            sure[i] = True
            fixed_at.append(i)
            time_us[i] = _us(parsed[0])
            for k, d in zip(FIELDS, parsed[1:], strict=True):
                values[k][i] = float(d)
                fixed[k].append(str(d))  # Decimal(str(d)) is d, exponent and all
        if fixed_at:
            mask = np.zeros(time_us.size, dtype=np.bool_)
            mask[fixed_at] = True
            texts = {
                k: pc.replace_with_mask(combined(t), arrow_of(mask), pa.array(fixed[k]))
                for k, t in texts.items()
            }
    return Screened(np.flatnonzero(sure), time_us, values, dict(texts), faults)


def _floats(texts: Any) -> tuple[np.ndarray, np.ndarray]:
    """A column's floats and which of its texts are plain decimal text (:data:`NUMBER`).
    Arrow's parser accepts plain decimal text and, beyond it, only spellings of NaN and
    infinity (``tests/test_research_columns.py`` holds it to that): when it takes the whole
    column, the plain texts are the ones with finite floats (a plain text too large for a
    float is infinite too, and no price or volume rule takes it). Otherwise the pattern
    decides, and what is not plain reads as 0."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        values = numpy_of(pc.cast(texts, pa.float64()))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        plain = pc.fill_null(pc.match_substring_regex(texts, NUMBER), False)
        cast = pc.cast(pc.if_else(plain, texts, "0"), pa.float64())
        return numpy_of(cast), numpy_of(plain)
    return values, np.isfinite(values)


def _zero(texts: Any, where: np.ndarray) -> np.ndarray:
    """Which texts at ``where`` are plain zeros (:data:`_ZERO`; False elsewhere)."""
    import pyarrow.compute as pc

    out = np.zeros(where.size, dtype=np.bool_)
    at = np.flatnonzero(where)
    if at.size:
        picked = combined(texts).take(arrow_of(at))
        out[at] = true_at(pc.match_substring_regex(picked, _ZERO))
    return out


def combined(values: Any) -> Any:
    """One Arrow array of a possibly chunked one (its one chunk as it is, not a copy)."""
    if not hasattr(values, "combine_chunks"):
        return values
    return values.chunk(0) if values.num_chunks == 1 else values.combine_chunks()


#: The Arrow types :func:`numpy_of` reads from their buffers, with their NumPy types.
_PRIMITIVE = {"int64": np.int64, "double": np.float64}


def numpy_of(values: Any) -> np.ndarray:
    """An Arrow int64, float64 or boolean column (chunked or not) as a writable NumPy array.
    Without nulls it is read from the column's buffers: pyarrow's own ``to_numpy`` imports
    pandas when it is installed (~0.2 s of a command's start-up); with nulls it is used."""
    array = combined(values)
    kind = str(array.type)
    buffers = array.buffers()
    if array.null_count == 0 and len(buffers) == 2 and buffers[1] is not None:
        n, offset = len(array), array.offset
        if kind == "bool":
            bits = np.frombuffer(buffers[1], dtype=np.uint8)
            whole = np.unpackbits(bits, count=offset + n, bitorder="little")
            return whole[offset:].astype(np.bool_)
        if kind in _PRIMITIVE:
            dtype = np.dtype(_PRIMITIVE[kind])
            return np.frombuffer(
                buffers[1], dtype=dtype, count=n, offset=offset * dtype.itemsize
            ).copy()
    return np.array(array.to_numpy(zero_copy_only=False))


def true_at(values: Any) -> np.ndarray:
    """Where an Arrow boolean column is true, a null counting as false (``pc.fill_null`` is
    used only when there are nulls: its Python fill value makes pyarrow import pandas)."""
    import pyarrow.compute as pc

    array = combined(values)
    return numpy_of(array if array.null_count == 0 else pc.fill_null(array, False))


def arrow_of(values: np.ndarray) -> Any:
    """A NumPy boolean or int64 array as an Arrow array, built from its buffer (``pa.array``
    imports pandas when it is installed, to look for pandas objects)."""
    import pyarrow as pa

    array = np.ascontiguousarray(values)
    if array.dtype == np.bool_:
        packed = np.packbits(array, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), array.size, [None, pa.py_buffer(packed)])
    if array.dtype == np.int64:
        return pa.Array.from_buffers(pa.int64(), array.size, [None, pa.py_buffer(array)])
    return pa.array(array)


def ordered(symbol: str, rows: Screened, ceiling: Decimal) -> tuple[BarColumns, bool, int]:
    """The good rows in time order, the first of equal times kept (the row reader's order):
    the columns, whether the file was out of order, how many duplicates were dropped."""

    picked = rows.good
    times = rows.time_us[picked]
    reordered = bool((np.diff(times) < 0).any())
    if reordered:
        order = np.argsort(times, kind="stable")
        picked, times = picked[order], times[order]
    keep = np.ones(times.size, dtype=np.bool_)
    keep[1:] = times[1:] != times[:-1]
    duplicates = int(times.size - keep.sum())
    picked, times = picked[keep], times[keep]
    everything = picked.size == rows.time_us.size and bool((np.diff(picked) > 0).all())
    values = rows.values if everything else {k: v[picked] for k, v in rows.values.items()}
    texts = (
        {k: combined(t) for k, t in rows.texts.items()}
        if everything
        else {k: combined(t).take(arrow_of(picked)) for k, t in rows.texts.items()}
    )
    return BarColumns(symbol, times, values, texts, ceiling), reordered, duplicates
