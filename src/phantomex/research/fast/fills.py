"""A research-engine run's fills as columns: the JSON text of each field (what
:meth:`~phantomex.research.metrics.TradeRecord.to_json` writes) and the exact Decimals the
metrics add up, built from the run's arrays without a record per trade.

Each text is the generic one's, taken the short way where that is provably the same: a
quantity or fee is ``repr`` of its float when that has no exponent (``format(Decimal(r), "f")``
is then ``r``), a price without slippage is the bar's stored text when it is already canonical
decimal text, and times in whole seconds are written by NumPy. Anything else goes the generic
way, value by value."""

from __future__ import annotations

import decimal
from decimal import Decimal
from functools import cached_property
from typing import Any

import numpy as np

from phantomex.brains.rules import signals
from phantomex.domain.money import BPS, MONEY_CONTEXT
from phantomex.market.columns import BarColumns
from phantomex.research.fast.arrays import FastRun, Series, utc_times
from phantomex.research.metrics import ZERO, TradeTotals
from phantomex.serialize import iso

#: µs since the epoch of the first and after the last time ``datetime`` holds (years 1 to 9999).
_FIRST_US, _END_US = -62_135_596_800_000_000, 253_402_300_800_000_000
_DIGIT0, _DIGIT9, _POINT = ord("0"), ord("9"), ord(".")


class Fills:
    """One run's fills, field by field (each built on first use)."""

    def __init__(self, series: Series, run: FastRun, slippage_bps: Decimal, fill: str) -> None:
        self._series, self._run = series, run
        self._slippage, self._at_open = slippage_bps, fill != "close"

    @cached_property
    def sides(self) -> list[str]:
        return ["buy" if side == signals.BUY else "sell" for side in self._run.side.tolist()]

    @cached_property
    def _quantity(self) -> FloatColumn:
        return FloatColumn(self._run.quantity)

    @cached_property
    def _fee(self) -> FloatColumn:
        return FloatColumn(self._run.fee)

    @property
    def quantities(self) -> list[Decimal]:
        return self._quantity.decimals

    @property
    def fees(self) -> list[Decimal]:
        return self._fee.decimals

    @cached_property
    def _base_texts(self) -> np.ndarray:
        """The fill bars' stored texts of the filled field (a NumPy ``U`` array)."""
        bars, field = self._series.bars, "open" if self._at_open else "close"
        positions = self._run.bar
        if isinstance(bars, BarColumns):
            texts = bars.texts[field]
            if isinstance(texts, np.ndarray):
                return np.asarray(texts[positions]).astype(np.str_)
            from phantomex.market.columns import arrow_of

            return np.array(texts.take(arrow_of(positions)).to_pylist(), dtype=np.str_)
        return np.array([str(getattr(bars[i], field)) for i in positions.tolist()], dtype=np.str_)

    @cached_property
    def prices(self) -> list[Decimal]:
        """The fill prices: the bar's exact value, with the broker's slippage arithmetic."""
        bases = [Decimal(text) for text in self._base_texts.tolist()]
        if not self._slippage:
            return bases
        slippage = self._slippage
        with decimal.localcontext(MONEY_CONTEXT):
            slips = [base * slippage / BPS for base in bases]
            return [
                base + slip if side == "buy" else base - slip
                for base, slip, side in zip(bases, slips, self.sides, strict=True)
            ]

    @cached_property
    def price_texts(self) -> list[str]:
        if self._slippage:
            return [format(p, "f") for p in self.prices]
        return decimal_texts(self._base_texts)

    @cached_property
    def time_us(self) -> np.ndarray:
        return (self._series.open_us if self._at_open else self._series.tick_us)[self._run.bar]

    @cached_property
    def time_texts(self) -> list[str]:
        return iso_texts(self.time_us)

    def totals(self) -> TradeTotals:
        """The round trips' cost and P&L and the fees, as
        :func:`~phantomex.research.metrics.trade_totals` finds them from the trade records (the
        same Decimal operations in the same order; one agent, one symbol)."""
        pnls: list[Decimal] = []
        costs: list[Decimal] = []
        held = cost = proceeds = ZERO
        open_ = False
        for side, q, p, fee in zip(self.sides, self.quantities, self.prices, self.fees,
                                   strict=True):  # fmt: skip
            if side == "buy":
                if not open_:
                    open_, held, cost, proceeds = True, ZERO, ZERO, ZERO
                held += q
                cost += q * p + fee
                continue
            if not open_:  # a sell without a recorded entry: nothing to pair it with
                continue
            held -= q
            proceeds += q * p - fee
            if held <= 0:
                pnls.append(proceeds - cost)
                costs.append(cost)
                open_ = False
        return TradeTotals(len(self.sides), pnls, costs, sum(self.fees, ZERO))

    def to_json(self, symbol: str) -> list[dict[str, str]]:
        """The fills as :meth:`TradeRecord.to_json` writes them."""
        columns = (self.sides, self._quantity.texts, self.price_texts, self._fee.texts)
        return [
            {"symbol": symbol, "side": s, "quantity": q, "price": p, "fee": f, "time": t}
            for s, q, p, f, t in zip(*columns, self.time_texts, strict=True)
        ]


class FloatColumn:
    """A float array as the generic path sees it, ``Decimal(repr(v))``, and as JSON text,
    ``format(Decimal(repr(v)), "f")``. A value repeated at once (a sell of the whole position
    bought) is converted once.

    orjson writes the floats (one call for the column, ~10x faster than ``repr`` each). Both
    write the shortest digits that read back as the float and, of those, the nearest to it,
    and that choice is unique (two such digit strings cannot be equally near a binary float),
    so the digits and the exponent are ``repr``'s; orjson writes the exponent differently
    (``1e-6``, ``repr`` ``1e-06``), which ``Decimal`` reads the same, and writes no exponent
    where ``repr`` writes one down to 1e-5 (``0.00001``), which is then what ``format`` writes
    and ``Decimal`` reads the same coefficient and exponent from. A non-finite value (orjson's
    ``null``) goes through ``repr``. ``tests/test_research_fast_fills.py`` holds orjson to
    this."""

    def __init__(self, values: np.ndarray) -> None:
        bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
        first = np.ones(bits.size, dtype=np.bool_)
        first[1:] = bits[1:] != bits[:-1]  # the same bits: the same text (-0.0 is not 0.0)
        self._floats: list[float] = values[first].tolist()
        self._at = np.cumsum(first) - 1

    @cached_property
    def _texts(self) -> list[str]:
        """Each value's shortest text, by orjson."""
        import orjson

        if not self._floats:
            return []
        texts: list[str] = orjson.dumps(self._floats).decode()[1:-1].split(",")
        return texts

    @cached_property
    def _decimals(self) -> list[Decimal]:
        return [
            Decimal(t) if t != "null" else Decimal(repr(v))
            for t, v in zip(self._texts, self._floats, strict=True)
        ]

    @cached_property
    def decimals(self) -> list[Decimal]:
        return self._spread(self._decimals)

    @cached_property
    def texts(self) -> list[str]:
        texts = self._texts
        return self._spread(
            [
                format(d, "f") if "e" in t or "n" in t else t
                for t, d in zip(texts, self._decimals, strict=True)
            ]
        )

    def _spread(self, firsts: list[Any]) -> list[Any]:
        """One item per value from one per run of equal values."""
        items = np.empty(len(firsts), dtype=object)
        items[:] = firsts
        spread: list[Any] = items[self._at].tolist()
        return spread


def decimal_texts(words: np.ndarray) -> list[str]:
    """``format(Decimal(text), "f")`` of each decimal text (a NumPy ``U`` array): the text
    itself where it is already written so (:func:`_canonical`)."""
    texts: list[str] = words.tolist()
    for i in np.flatnonzero(~_canonical(words)).tolist():
        texts[i] = format(Decimal(texts[i]), "f")
    return texts


def _canonical(words: np.ndarray) -> np.ndarray:
    """Which texts (a NumPy ``U`` array) ``format(Decimal(text), "f")`` writes unchanged:
    digits with at most one point between digits, and no leading zero before a digit."""
    n = words.size
    if n == 0 or words.dtype.itemsize == 0:
        return np.zeros(n, dtype=np.bool_)
    codes = np.ascontiguousarray(words).view(np.uint32).reshape(n, -1)
    digit = (codes >= _DIGIT0) & (codes <= _DIGIT9)
    point = codes == _POINT
    pad = codes == 0  # NumPy pads a shorter text with zeros at the end
    ok = (digit | point | pad).all(axis=1) & (point.sum(axis=1) <= 1) & digit[:, 0]
    ok &= (pad[:, :-1] <= pad[:, 1:]).all(axis=1)  # no zero inside a text
    length = codes.shape[1] - pad.sum(axis=1)
    rows = np.arange(n)
    ok &= digit[rows, np.maximum(length - 1, 0)]  # no point at the end
    if codes.shape[1] > 1:
        ok &= ~((codes[:, 0] == _DIGIT0) & digit[:, 1])  # no leading zero ("007", "00.5")
    return ok


def iso_texts(us: np.ndarray) -> list[str]:
    """:func:`~phantomex.serialize.iso` of each time (µs since the epoch). When all are whole
    seconds that ``datetime`` holds, NumPy writes them: each distinct day's date once, the
    time of day from its digits; ``iso`` otherwise."""
    n = us.size
    if not n or (us % 1_000_000).any() or us.min() < _FIRST_US or us.max() >= _END_US:
        return [iso(t) for t in utc_times(us)]
    days, seconds = np.divmod(us // 1_000_000, 86_400)
    distinct, which = np.unique(days, return_inverse=True)
    dates = np.datetime_as_string(distinct.astype("datetime64[D]")).astype("U10")  # YYYY-MM-DD
    codes = np.empty((n, 20), dtype=np.uint32)
    codes[:, :10] = dates.view(np.uint32).reshape(distinct.size, 10)[which]
    hours, rest = np.divmod(seconds, 3600)
    minutes, secs = np.divmod(rest, 60)
    for at, part in ((11, hours), (14, minutes), (17, secs)):
        tens, ones = np.divmod(part, 10)
        codes[:, at] = tens + _DIGIT0
        codes[:, at + 1] = ones + _DIGIT0
    codes[:, 10], codes[:, 13], codes[:, 16], codes[:, 19] = ord("T"), ord(":"), ord(":"), ord("Z")
    texts: list[str] = codes.view("U20").ravel().tolist()
    return texts
