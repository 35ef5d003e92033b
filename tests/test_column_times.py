"""ISO times read as columns (phantomex.market.column_loaders._us_of): a date-time is taken when
Python's datetime takes it, at the same µs since the epoch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import product

import numpy as np

from phantomex.market.column_loaders import _us_of

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_the_calendar_of_columns_is_pythons() -> None:
    years = [1000, 1001, 1600, 1700, 1899, 1900, 1970, 2000, 2023, 2024, 2100, 2400, 9999]
    cells = list(product(years, range(14), range(33), (0, 23, 24), (0, 59, 60), (0, 59, 60)))
    y, mo, d, h, mi, s = (np.array(column, dtype=np.int64) for column in zip(*cells, strict=True))
    ok = np.ones(y.size, dtype=np.bool_)
    ok[::7] = False  # not ISO text at all: never taken
    iso, us = _us_of(ok, y, mo, d, h, mi, s)
    for i, (year, month, day, hour, minute, second) in enumerate(cells):
        try:
            when = datetime(year, month, day, hour, minute, second, tzinfo=UTC)
        except ValueError:
            assert not iso[i], cells[i]
            continue
        assert iso[i] == ok[i], cells[i]
        assert int(us[i]) == (when - EPOCH) // timedelta(microseconds=1), cells[i]
