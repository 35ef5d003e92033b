"""A small on-disk bar cache: one SQLite table keyed by (source, symbol, interval, open time).

Prices are stored as decimal strings, so a cached bar is exactly the bar that was fetched. A
warm-up reads what is cached and fetches only the bars after the newest one."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from phantomex.domain.models import Bar

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bars (
    source TEXT NOT NULL, symbol TEXT NOT NULL, interval TEXT NOT NULL, time INTEGER NOT NULL,
    open TEXT NOT NULL, high TEXT NOT NULL, low TEXT NOT NULL, close TEXT NOT NULL,
    volume TEXT NOT NULL,
    PRIMARY KEY (source, symbol, interval, time)
)
"""


class BarCache:
    """Cached bars per source, symbol and interval (``:memory:`` for a throwaway cache)."""

    def __init__(self, path: Path | str, source: str) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self.source = source
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        with self._lock, self._db:
            self._db.execute(_SCHEMA)

    def put(self, interval: str, bars: Iterable[Bar]) -> None:
        """Insert or replace ``bars`` (a later fetch of the same bar wins)."""
        rows = [
            (
                self.source,
                b.symbol,
                interval,
                int(b.time.timestamp()),
                str(b.open),
                str(b.high),
                str(b.low),
                str(b.close),
                str(b.volume),
            )
            for b in bars
        ]
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO bars VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )

    def get(self, symbol: str, interval: str, since: datetime | None = None) -> list[Bar]:
        """Cached bars of ``symbol`` opening at or after ``since``, oldest first."""
        start = int(since.timestamp()) if since else 0
        with self._lock:
            rows = self._db.execute(
                "SELECT time, open, high, low, close, volume FROM bars WHERE source = ? AND "
                "symbol = ? AND interval = ? AND time >= ? ORDER BY time",
                (self.source, symbol, interval, start),
            ).fetchall()
        return [
            Bar(symbol, datetime.fromtimestamp(t, UTC), *(Decimal(v) for v in values))
            for t, *values in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()
