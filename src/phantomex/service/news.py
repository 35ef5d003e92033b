"""News for front ends: the stored items (newest first), the configured sources with how their
last fetch went, and fetching every source once (``phantomex news fetch``'s equivalent).

Items are read up to a person's clock: everything stored so far, unlike an agent, which reads
only up to its kernel's clock (:mod:`phantomex.brains.llm.news`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from phantomex.domain.news import NewsItem
from phantomex.kernel.runtime import KernelError
from phantomex.news.collect import SourceReport, collect
from phantomex.news.settings import NewsSettings
from phantomex.news.sources import sources_from_settings
from phantomex.store.port import NewsStore

__all__ = ["FetchRound", "News", "SourceInfo", "public_url"]


def public_url(url: str) -> str:
    """``url`` without user, password, query or fragment (a private feed's token stays put)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True, slots=True)
class FetchRound:
    """One fetch of every source: when, and each source's report."""

    at: datetime
    reports: list[SourceReport]


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """A configured source and how its last fetch (asked for, or the server's poll) went."""

    name: str
    kind: Literal["feed", "cryptopanic"]
    url: str
    symbols: list[str]
    last_fetch: datetime | None
    last_report: SourceReport | None


class News:
    """The news a store keeps, and the ``[news]`` sources of the settings."""

    def __init__(
        self, store: NewsStore, settings: NewsSettings, wall: Callable[[], datetime]
    ) -> None:
        self._store, self._settings, self._wall = store, settings, wall
        self._last: dict[str, tuple[datetime, SourceReport]] = {}
        self._fetching = asyncio.Lock()

    @property
    def poll_seconds(self) -> float:
        """How often the server reads every source by itself (0: never)."""
        return self._settings.poll_seconds if sources_from_settings(self._settings) else 0.0

    def items(self, symbol: str | None, since: datetime | None, limit: int) -> list[NewsItem]:
        """The newest items first seen after ``since`` (up to now), about ``symbol`` if given."""
        symbols = [symbol.strip().upper()] if symbol else None
        return self._store.news(self._wall(), since=since, symbols=symbols, limit=limit)

    def sources(self) -> list[SourceInfo]:
        """The configured feeds, then CryptoPanic (listed with or without its token)."""
        out = [self._info(f.name, "feed", f.url, list(f.symbols)) for f in self._settings.feeds]
        panic = self._settings.cryptopanic
        if panic.token is not None:
            out.append(self._info("cryptopanic", "cryptopanic", panic.base_url, panic.currencies))
        return out

    def _info(
        self, name: str, kind: Literal["feed", "cryptopanic"], url: str, symbols: list[str]
    ) -> SourceInfo:
        at, report = self._last.get(name, (None, None))
        return SourceInfo(name, kind, public_url(url), symbols, at, report)

    async def fetch(self) -> FetchRound:
        """Read every source once and store the new items, first seen now (one round at a
        time; KernelError ``conflict`` when no source is configured)."""
        sources = sources_from_settings(self._settings)
        if not sources:
            raise KernelError(
                "no news sources: add [[news.feeds]] (or a [news.cryptopanic] token) to the "
                "settings",
                code="conflict",
            )
        async with self._fetching:
            now = self._wall()
            timeout = self._settings.timeout_seconds
            reports = await collect(sources, self._store, now, timeout=timeout)
        self.record(now, reports)
        return FetchRound(now, reports)

    def record(self, at: datetime, reports: list[SourceReport]) -> None:
        """Keep each source's report of a round at ``at`` (a fetch here, or the server's poll)."""
        for report in reports:
            self._last[report.source] = (at, report)
