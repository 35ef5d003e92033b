"""The arrays the research engine runs on and returns: one symbol's bars (:class:`Series`),
one parameter set's run (:class:`FastRun`), and float or time arrays seen as the exact kernel's
Decimal and datetime sequences (converted on access)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, overload

import numpy as np

from phantomex.domain.models import Bar
from phantomex.domain.money import MAX_PRICE
from phantomex.market.columns import BarColumns
from phantomex.market.replay_rows import prepare
from phantomex.research.fast import compiled
from phantomex.research.spec import BacktestError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FastUnsupported(BacktestError):
    """A configuration the research engine does not run; the message names what."""


@dataclass(frozen=True)
class Series:
    """One symbol's bars as arrays (what the compiled loop reads)."""

    symbol: str
    bars: Sequence[Bar]
    opens: np.ndarray
    closes: np.ndarray
    open_us: np.ndarray
    tick_us: np.ndarray
    period: timedelta

    @classmethod
    def from_bars(cls, symbol: str, bars: Sequence[Bar], period: timedelta) -> Series:
        """The bars as the replay feed orders them (sorted, first of duplicates kept)."""
        if isinstance(bars, BarColumns):  # sorted, unique, floats of the exact text
            kept: Sequence[Bar] = bars
            opens, closes = bars.values["open"], bars.values["close"]
            opens_us: Any = bars.time_us
        else:
            kept, opens_us = prepare(symbol, bars)
            opens = np.array([float(b.open) for b in kept])
            closes = np.array([float(b.close) for b in kept])
        limit = float(MAX_PRICE)
        for name, values in (("open", opens), ("close", closes)):
            if not compiled.ACTIVE.between(values, 0.0, limit):
                raise FastUnsupported(f"{symbol} has invalid {name} prices (the exact kernel "
                                      "skips them; the research engine does not)")  # fmt: skip
        open_us = np.asarray(opens_us, dtype=np.int64)
        period_us = period // timedelta(microseconds=1)
        return cls(symbol, kept, opens, closes, open_us, open_us + period_us, period)


@dataclass
class FastRun:
    """One parameter set's run: trades as arrays, the equity at each bar's close."""

    params: dict[str, Any]
    trades: int
    bar: np.ndarray
    side: np.ndarray
    quantity: np.ndarray
    price: np.ndarray
    fee: np.ndarray
    kind: np.ndarray
    equity: np.ndarray
    status: str
    ambiguous: str | None  # why the exact kernel must decide this run (None: it need not)


class DecimalSeries(Sequence[Decimal]):
    """A float array seen as Decimals (converted on access): the equity curve of a run."""

    def __init__(self, values: np.ndarray) -> None:
        self.values = values

    def __len__(self) -> int:
        return int(self.values.size)

    @overload
    def __getitem__(self, i: int) -> Decimal: ...
    @overload
    def __getitem__(self, i: slice) -> list[Decimal]: ...
    def __getitem__(self, i: int | slice) -> Decimal | list[Decimal]:
        if isinstance(i, slice):
            return [Decimal(repr(float(v))) for v in self.values[i]]
        return Decimal(repr(float(self.values[i])))

    def __iter__(self) -> Iterator[Decimal]:
        return (Decimal(repr(v)) for v in self.values.tolist())


class TimeSeries(Sequence[datetime]):
    """Times in µs since the epoch seen as UTC datetimes (converted on access)."""

    def __init__(self, us: np.ndarray) -> None:
        self.us = us

    def __len__(self) -> int:
        return int(self.us.size)

    @overload
    def __getitem__(self, i: int) -> datetime: ...
    @overload
    def __getitem__(self, i: slice) -> list[datetime]: ...
    def __getitem__(self, i: int | slice) -> datetime | list[datetime]:
        if isinstance(i, slice):
            return [utc_time(int(v)) for v in self.us[i]]
        return utc_time(int(self.us[i]))

    def __iter__(self) -> Iterator[datetime]:
        return (utc_time(v) for v in self.us.tolist())


def utc_time(us: int) -> datetime:
    """µs since the epoch as a UTC datetime."""
    return _EPOCH + timedelta(microseconds=us)


def utc_times(us: np.ndarray) -> list[datetime]:
    """:func:`utc_time` of each element (numpy converts, Python adds the zone)."""
    naive: list[datetime] = us.astype("datetime64[us]").tolist()
    return [t.replace(tzinfo=UTC) for t in naive]
