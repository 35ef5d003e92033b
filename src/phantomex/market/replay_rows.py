"""One symbol's bars inside a :class:`~phantomex.market.replay.ReplayFeed`: open times, exact
closes and their floats, and :class:`Bar` objects when a tick or a skipped span asks for them.

Bars given as a list are kept as they are. Bars given as columns
(:class:`~phantomex.market.columns.BarColumns`) are read as whole columns (times as integers,
the closes as :class:`Decimal`, the other fields as their exact decimal text), and a
:class:`Bar` is built only when one is read: a visited tick's, or one of a skipped span
(a :class:`~phantomex.market.base.BarSpan`, which the price history keeps unbuilt).
Also the replay's time helpers: the bars' period and their times as datetimes.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate, pairwise, repeat
from typing import Any

import numpy as np

from phantomex.domain.models import Bar
from phantomex.market.base import BarSpan
from phantomex.market.columns import BarColumns

__all__ = ["DEFAULT_PERIOD", "SymbolRows", "datetimes_of", "infer_period", "prepare"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
DEFAULT_PERIOD = timedelta(minutes=1)  # of bars whose spacing says nothing


def _us(dt: datetime) -> int:
    return (dt - _EPOCH) // _ONE_US


def prepare(symbol: str, bars: Sequence[Bar]) -> tuple[list[Bar], list[int]]:
    """Validate one symbol's bars; returns them sorted and de-duplicated (the first of a time
    kept) with their open times in µs."""
    if not bars:
        raise ValueError(f"{symbol}: no bars")
    out = list(bars)
    try:
        opens = [_us(b.time) for b in out]
    except TypeError:
        raise ValueError(f"{symbol}: bar times must be timezone-aware") from None
    if any(b.symbol != symbol for b in out):
        raise ValueError(f"{symbol}: every bar's symbol must be {symbol!r}")
    if any(b <= a for a, b in pairwise(opens)):
        order = sorted(range(len(out)), key=opens.__getitem__)  # stable: first duplicate wins
        kept: list[int] = []
        for j in order:
            if not kept or opens[j] != opens[kept[-1]]:
                kept.append(j)
        out = [out[j] for j in kept]
        opens = [opens[j] for j in kept]
    return out, opens


class SymbolRows:
    """One symbol's bars in time order with unique open times (see the module)."""

    def __init__(
        self,
        symbol: str,
        opens: list[int],
        closes: list[Decimal],
        source: Sequence[Bar],
        bars: list[Bar] | None,
        texts: list[tuple[bytes, Sequence[int]]] | None = None,
    ) -> None:
        self.symbol = symbol
        self.opens = opens  # open times, µs since the epoch
        self.closes = closes
        self.source = source  # the bars as given, once in order (a list or columns)
        self._bars = bars  # given as Bar objects
        # given as columns: the open, high, low and volume texts (see _text_column)
        self._texts = texts
        self._floats: np.ndarray | None = None
        self._opens_us: np.ndarray | None = None
        # texts that repeat much: each parsed once (see _decimals)
        self._parsed: _Parsed | None = None

    @classmethod
    def of(cls, symbol: str, bars: Sequence[Bar]) -> SymbolRows:
        """Validate one symbol's bars; sorted and de-duplicated (the first of a time kept)."""
        if not bars:
            raise ValueError(f"{symbol}: no bars")
        if isinstance(bars, BarColumns) and bool((np.diff(bars.time_us) > 0).all()):
            return cls._of_columns(symbol, bars)
        out, opens = prepare(symbol, bars)
        return cls(symbol, opens, [b.close for b in out], out, out)

    @classmethod
    def _of_columns(cls, symbol: str, columns: BarColumns) -> SymbolRows:
        if columns.symbol != symbol:
            raise ValueError(f"{symbol}: every bar's symbol must be {symbol!r}")
        closes, parsed = _decimals(columns.texts["close"])
        texts = [_text_column(columns.texts[k]) for k in ("open", "high", "low", "volume")]
        rows = cls(symbol, columns.time_us.tolist(), closes, columns, None, texts)
        rows._parsed = parsed
        rows._floats = _close_floats(columns, closes)
        rows._opens_us = np.asarray(columns.time_us, dtype=np.int64)
        return rows

    def __len__(self) -> int:
        return len(self.opens)

    @property
    def floats(self) -> np.ndarray:
        """The closes as floats (``float`` of each exact close), built once."""
        if self._floats is None:
            self._floats = np.fromiter(map(float, self.closes), np.float64, len(self.closes))
        return self._floats

    @property
    def columnar(self) -> bool:
        """Whether the bars were given as columns (built when read) rather than a list."""
        return self._bars is None

    @property
    def opens_us(self) -> np.ndarray:
        """The open times as an int64 array (read-only use), built once."""
        if self._opens_us is None:
            self._opens_us = np.asarray(self.opens, dtype=np.int64)
        return self._opens_us

    def bar(self, k: int) -> Bar:
        """The ``k``-th bar."""
        if self._bars is not None:
            return self._bars[k]
        assert self._texts is not None
        (o, oe), (h, he), (lo, le), (v, ve) = self._texts
        j = k + 1
        d = Decimal if self._parsed is None else self._parsed.__getitem__
        return Bar(
            self.symbol,
            _EPOCH + _ONE_US * self.opens[k],  # cheaper than timedelta(microseconds=...)
            d(o[oe[k] : oe[j]].decode()),
            d(h[he[k] : he[j]].decode()),
            d(lo[le[k] : le[j]].decode()),
            self.closes[k],
            d(v[ve[k] : ve[j]].decode()),
        )

    def time(self, k: int) -> datetime:
        """The open time of the ``k``-th bar."""
        return _EPOCH + _ONE_US * self.opens[k]

    def bars(self, start: int, stop: int) -> Sequence[Bar]:
        """The bars ``start`` to ``stop`` (excluded): a list, or a span built when read."""
        if self._bars is not None:
            return self._bars[start:stop]
        return BarSpan(self, start, stop)


class _Parsed(dict[str, Decimal]):
    """The Decimal of each text, parsed when first read (Decimals are immutable: shared)."""

    def __missing__(self, text: str) -> Decimal:
        value = self[text] = Decimal(text)
        return value


def _close_floats(columns: BarColumns, closes: list[Decimal]) -> np.ndarray:
    """``float`` of each exact close. The columns' own floats are Arrow's parse of the texts,
    bit-identical to ``float(Decimal(text))`` for plain decimal text; a text that is not plain
    reads as NaN, infinite or 0 there (:func:`~phantomex.market.columns._floats`), so
    finite non-zero floats are taken as they are. Otherwise each close is converted."""
    given = columns.values.get("close")
    if (
        isinstance(given, np.ndarray)
        and given.dtype == np.float64
        and given.shape == (len(closes),)
        and bool(np.isfinite(given).all())
        and bool((given != 0).all())
    ):
        floats = given.view()
        floats.flags.writeable = False
        return floats
    return np.fromiter(map(float, closes), np.float64, len(closes))


def _decimals(column: Any) -> tuple[list[Decimal], _Parsed | None]:
    """A column's texts as Decimals; when they repeat much (a sample says so: prices on a
    coarse tick grid), each distinct text is parsed once and its Decimal shared (Decimals are
    immutable): then also returns the Decimal of each text, for the bars' other prices. An
    Arrow column is dictionary-encoded for that (its distinct texts and each row's index), so
    only the distinct texts become Python strings."""
    sample = _all_texts(column[:1024])
    if len(set(sample)) * 2 > len(sample):
        return list(map(Decimal, _all_texts(column))), None
    if isinstance(column, np.ndarray) or column.null_count:
        texts = _all_texts(column)
        parsed = _Parsed()
        return list(map(parsed.__getitem__, texts)), parsed
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    encoded = column.dictionary_encode()
    distinct: list[str] = encoded.dictionary.to_pylist()
    values = np.array(list(map(Decimal, distinct)), dtype=object)
    shared: list[Decimal] = values.take(encoded.indices.to_numpy()).tolist()
    return shared, _Parsed(zip(distinct, values.tolist(), strict=True))


def _all_texts(column: Any) -> list[str]:
    """Every text of a column (a pyarrow string array or fixed-width ASCII bytes)."""
    if isinstance(column, np.ndarray):
        return [b.decode("ascii") for b in column.tolist()]
    texts: list[str] = column.to_pylist()
    return texts


def _text_column(column: Any) -> tuple[bytes, Sequence[int]]:
    """A column's texts as their UTF-8 bytes end to end and where each ends (text ``k`` is
    ``data[ends[k]:ends[k + 1]]``), so one text is read without converting the whole column
    (only a visited bar's open, high, low and volume are read): an Arrow string array's own
    buffers, read in place; any other kind of column is joined once."""
    if not isinstance(column, np.ndarray):
        import pyarrow as pa

        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        large = column.type == pa.large_string()
        if (large or column.type == pa.string()) and not column.null_count:
            start = column.offset
            raw = memoryview(column.buffers()[1]).cast("B")
            offsets = raw.cast("q") if large else raw.cast("i")
            held = column.buffers()[2]
            data = held.to_pybytes() if held is not None else b""
            return data, offsets[start : start + len(column) + 1]
    encoded = [str(t).encode() for t in _all_texts(column)]
    return b"".join(encoded), list(accumulate(map(len, encoded), initial=0))


def infer_period(opens: Iterable[np.ndarray]) -> timedelta:
    """Most common spacing between consecutive bars (smallest on a tie), else 1 minute."""
    diffs: list[np.ndarray] = [np.diff(t) for t in opens]
    steps = np.concatenate([*diffs, np.empty(0, dtype=np.int64)])
    if steps.size == 0:
        return DEFAULT_PERIOD
    if bool((steps == steps[0]).all()):  # evenly spaced: the one step
        return timedelta(microseconds=int(steps[0]))
    values, counts = np.unique(steps, return_counts=True)  # sorted: argmax takes the smallest
    return timedelta(microseconds=int(values[int(np.argmax(counts))]))


def datetimes_of(us: np.ndarray) -> list[datetime]:
    """The times ``us`` (µs since the epoch, increasing) as datetimes: the first, then each
    by adding its step (one timedelta per distinct step; exact integer arithmetic)."""
    if us.size == 0:
        return []
    first = _EPOCH + timedelta(microseconds=int(us[0]))
    diffs = np.diff(us)
    if diffs.size and bool((diffs == diffs[0]).all()):  # evenly spaced: one step
        step = timedelta(microseconds=int(diffs[0]))
        return list(accumulate(repeat(step, diffs.size), operator.add, initial=first))
    steps = diffs.tolist()
    deltas = {d: timedelta(microseconds=d) for d in set(steps)}
    return list(accumulate(map(deltas.__getitem__, steps), operator.add, initial=first))
