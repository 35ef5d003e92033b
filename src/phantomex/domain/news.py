"""News items: what a feed said, when it was published and when PhantomEx first saw it.

``first_seen`` is the time that gates what an agent may read: an agent deciding at time ``t``
sees only items first seen at or before ``t`` (:func:`visible`), in replays, backtests and live
runs alike. ``published`` is what the source claims and may lie in the past or the future.

Items are identified by their :attr:`NewsItem.key`: the source's guid, else the link; two items
with the same guid or the same link are the same item (the earliest ``first_seen`` is kept)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

__all__ = [
    "MAX_KEY_CHARS",
    "MAX_LINK_CHARS",
    "MAX_SUMMARY_CHARS",
    "MAX_TITLE_CHARS",
    "NewsItem",
    "mentioned_symbols",
    "visible",
]

MAX_KEY_CHARS: Final = 500
MAX_LINK_CHARS: Final = 2000
MAX_TITLE_CHARS: Final = 500
MAX_SUMMARY_CHARS: Final = 4000
MAX_SOURCE_CHARS: Final = 100
_SPACE = re.compile(r"\s+")


def clip(text: str | None, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters (an ellipsis marks a cut)."""
    flat = _SPACE.sub(" ", text or "").strip()
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class NewsItem:
    """One headline with its summary. ``symbols`` are upper-case tickers it concerns."""

    source: str
    title: str
    first_seen: datetime
    published: datetime | None = None
    link: str | None = None
    guid: str | None = None
    summary: str = ""
    symbols: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.first_seen.tzinfo is None:
            raise ValueError("first_seen must be timezone-aware (UTC)")
        if self.published is not None and self.published.tzinfo is None:
            raise ValueError("published must be timezone-aware (UTC)")
        if not (self.guid or self.link):
            raise ValueError("a news item needs a guid or a link")
        if self.link is not None and len(self.link) > MAX_LINK_CHARS:
            raise ValueError(f"a link longer than {MAX_LINK_CHARS} characters")
        object.__setattr__(self, "source", clip(self.source, MAX_SOURCE_CHARS))
        object.__setattr__(self, "title", clip(self.title, MAX_TITLE_CHARS))
        object.__setattr__(self, "summary", clip(self.summary, MAX_SUMMARY_CHARS))
        tickers = sorted({s.strip().upper() for s in self.symbols if s and s.strip()})
        object.__setattr__(self, "symbols", tuple(tickers))

    @property
    def key(self) -> str:
        """The identity: the guid, else the link."""
        return str(self.guid or self.link)[:MAX_KEY_CHARS]

    def matches(self, symbols: Sequence[str] | None, query: str | None) -> bool:
        """Whether the item concerns one of ``symbols`` (None: any) and holds every word of
        ``query`` in its title or summary (case-insensitive; None or empty: any)."""
        if symbols is not None and not set(self.symbols) & {s.upper() for s in symbols}:
            return False
        if query:
            text = f"{self.title} {self.summary}".casefold()
            return all(word in text for word in query.casefold().split())
        return True


def mentioned_symbols(text: str, symbols: Iterable[str]) -> set[str]:
    """The tickers of ``symbols`` written as a word in ``text`` (``BTC``, ``$BTC``, ``(BTC)``)."""
    words = set(re.findall(r"[A-Za-z0-9]+", text.upper()))
    return {s.upper() for s in symbols if s.upper() in words}


def visible(
    items: Iterable[NewsItem],
    until: datetime,
    *,
    since: datetime | None = None,
    symbols: Sequence[str] | None = None,
    query: str | None = None,
    limit: int = 20,
) -> list[NewsItem]:
    """The items first seen in ``(since, until]`` that match ``symbols`` and ``query``, newest
    first (ties by key), at most ``limit``. Nothing first seen after ``until`` ever passes."""
    chosen = [
        i
        for i in items
        if i.first_seen <= until
        and (since is None or i.first_seen > since)
        and i.matches(symbols, query)
    ]
    chosen.sort(key=lambda i: (i.first_seen, i.key), reverse=True)
    return chosen[: max(limit, 0)]
