"""One round of fetching: every configured source once, its new items stored, and a line per
source saying what happened (a failing source never stops the others)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import httpx

from phantomex.domain.news import NewsItem
from phantomex.news.sources import USER_AGENT, NewsError, NewsSource

__all__ = ["NewsSink", "SourceReport", "collect", "poll"]

log = logging.getLogger(__name__)


class NewsSink(Protocol):
    def add_news(self, items: Sequence[NewsItem]) -> int: ...


@dataclass(slots=True)
class SourceReport:
    """A source's fetch: items read, how many were new, warnings, or the error."""

    source: str
    read: int = 0
    new: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


async def collect(
    sources: Sequence[NewsSource], sink: NewsSink, now: datetime, *, timeout: float = 15.0
) -> list[SourceReport]:
    """Fetch every source concurrently and store what each read (first seen at ``now``)."""
    headers = {"User-Agent": USER_AGENT}
    async with httpx.AsyncClient(timeout=timeout, headers=headers, follow_redirects=True) as client:
        results = await asyncio.gather(
            *(s.fetch(client, now) for s in sources), return_exceptions=True
        )
    reports = []
    for source, result in zip(sources, results, strict=True):
        report = SourceReport(source.name)
        if isinstance(result, NewsError):
            report.error = str(result)
        elif isinstance(result, BaseException):
            if not isinstance(result, Exception):
                raise result
            report.error = f"{type(result).__name__}: {result}"
        else:
            report.read = len(result.items)
            report.warnings = list(result.warnings)
            report.new = sink.add_news(result.items)
        reports.append(report)
    return reports


async def poll(
    sources: Sequence[NewsSource],
    sink: NewsSink,
    *,
    every: float,
    timeout: float = 15.0,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    rounds: int | None = None,
    on_round: Callable[[datetime, list[SourceReport]], None] | None = None,
) -> None:
    """Collect every ``every`` seconds (``rounds`` times, or until cancelled); items are first
    seen at the clock's time of their round, whose reports go to ``on_round``. A failing source
    is logged and tried next round."""
    done = 0
    while rounds is None or done < rounds:
        try:
            now = clock()
            reports = await collect(sources, sink, now, timeout=timeout)
            if on_round is not None:
                on_round(now, reports)
            for report in reports:
                if report.error:
                    log.warning("news source %s: %s", report.source, report.error)
                elif report.new:
                    log.info("news source %s: %d new items", report.source, report.new)
        except Exception:  # the store's trouble: log it, try again next round
            log.exception("news round failed")
        done += 1
        if rounds is None or done < rounds:
            await asyncio.sleep(every)
