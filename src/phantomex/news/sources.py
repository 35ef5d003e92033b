"""The news source port and its adapters: RSS 2.0 / Atom feeds (parsed by feedparser) and
CryptoPanic's posts API.

A source's :meth:`~NewsSource.fetch` returns the items it read, each first seen at the ``now``
it was given, or raises :class:`NewsError` with a message a person can act on (an HTTP status,
a timeout, a body too large, a document that is no feed). A feed with a recoverable flaw
(feedparser's "bozo" flag with entries still read) gives its items and a warning."""

from __future__ import annotations

import calendar
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, Protocol

import feedparser
import httpx

from phantomex.domain.news import NewsItem, mentioned_symbols
from phantomex.news.settings import CryptoPanicSettings, FeedSettings, NewsSettings

__all__ = [
    "CryptoPanicSource",
    "FeedSource",
    "Fetched",
    "NewsError",
    "NewsSource",
    "parse_feed",
    "sources_from_settings",
]

USER_AGENT = "PhantomEx news reader"


class NewsError(Exception):
    """A fetch that brought no usable items."""


@dataclass(slots=True)
class Fetched:
    """What one fetch read: the items and any warnings about the document."""

    items: list[NewsItem]
    warnings: list[str] = field(default_factory=list)


class NewsSource(Protocol):
    @property
    def name(self) -> str: ...

    async def fetch(self, client: httpx.AsyncClient, now: datetime) -> Fetched: ...


class _Text(HTMLParser):
    """The text of an HTML fragment (tags dropped, script and style skipped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def plain_text(fragment: str | None, limit: int = 20_000) -> str:
    """The readable text of an HTML (or plain) fragment; at most ``limit`` input characters are
    read, so a huge item costs little."""
    if not fragment:
        return ""
    parser = _Text()
    parser.feed(fragment[:limit])
    parser.close()
    return " ".join(parser.parts)  # character references are converted by the parser


def _tags(
    text: str, fixed: Sequence[str], keywords: Mapping[str, Sequence[str]]
) -> tuple[str, ...]:
    """Tickers an item concerns: the feed's own, tickers written in the text, and keywords."""
    found = set(fixed) | mentioned_symbols(text, keywords)
    lowered = text.casefold()
    for ticker, words in keywords.items():
        if any(w.casefold() in lowered for w in words):
            found.add(ticker)
    return tuple(sorted(found))


async def read_body(
    client: httpx.AsyncClient, url: str, params: dict[str, str], limit: int
) -> tuple[int, bytes, str]:
    """(status, body, content type) of a GET, reading at most ``limit`` bytes."""
    try:
        async with client.stream("GET", url, params=params) as resp:
            declared = resp.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > limit:
                raise NewsError(
                    f"the answer is {int(declared):,} bytes, more than the {limit:,} bytes allowed"
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise NewsError(f"the answer is larger than the {limit:,} bytes allowed")
                chunks.append(chunk)
            return resp.status_code, b"".join(chunks), resp.headers.get("content-type", "")
    except httpx.TimeoutException as exc:
        raise NewsError(f"timed out ({type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise NewsError(f"request failed: {type(exc).__name__}: {exc}") from None


def _struct_time(value: Any) -> datetime | None:
    if isinstance(value, time.struct_time):
        return datetime.fromtimestamp(calendar.timegm(value), UTC)
    return None


def parse_feed(
    body: bytes | str,
    *,
    source: str,
    now: datetime,
    symbols: Sequence[str] = (),
    keywords: Mapping[str, Sequence[str]] | None = None,
    max_items: int = 200,
) -> Fetched:
    """The items of an RSS 2.0, RSS 1.0 or Atom document, first seen at ``now``."""
    parsed = feedparser.parse(body)
    entries = list(parsed.get("entries") or [])
    problem = parsed.get("bozo_exception") if parsed.get("bozo") else None
    if not entries:
        if problem is not None:
            raise NewsError(f"not a readable feed: {type(problem).__name__}: {str(problem)[:200]}")
        if not parsed.get("version"):
            raise NewsError("not an RSS or Atom feed")
    warnings = (
        [f"the feed is malformed ({str(problem)[:200]}); read what could be read"]
        if problem
        else []
    )
    items: list[NewsItem] = []
    skipped = 0
    for entry in entries[:max_items]:
        title = plain_text(entry.get("title"))
        link = entry.get("link") or None
        guid = entry.get("id") or None
        if not title or not (guid or link):
            skipped += 1
            continue
        summary = plain_text(entry.get("summary") or "")
        published = _struct_time(entry.get("published_parsed") or entry.get("updated_parsed"))
        tags = " ".join(str(t.get("term", "")) for t in entry.get("tags") or [])
        try:
            item = NewsItem(
                source=source,
                title=title,
                first_seen=now,
                published=published,
                link=link,
                guid=guid,
                summary=summary,
                symbols=_tags(f"{title} {summary} {tags}", symbols, keywords or {}),
            )
        except ValueError:  # e.g. a link too long to keep
            skipped += 1
            continue
        items.append(item)
    if skipped:
        warnings.append(f"{skipped} entries without a title or a usable link were skipped")
    if len(entries) > max_items:
        warnings.append(f"only the first {max_items} of {len(entries)} entries were kept")
    return Fetched(items, warnings)


@dataclass(slots=True)
class FeedSource:
    """An RSS or Atom feed at a URL."""

    feed: FeedSettings
    keywords: Mapping[str, Sequence[str]] = field(default_factory=dict)
    max_bytes: int = 5_000_000
    max_items: int = 200

    @property
    def name(self) -> str:
        return self.feed.name

    async def fetch(self, client: httpx.AsyncClient, now: datetime) -> Fetched:
        status, body, _ = await read_body(client, self.feed.url, {}, self.max_bytes)
        if status >= 400:
            raise NewsError(f"HTTP {status}")
        return parse_feed(
            body,
            source=self.feed.name,
            now=now,
            symbols=self.feed.symbols,
            keywords=self.keywords,
            max_items=self.max_items,
        )


def _when(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _codes(post: Mapping[str, Any]) -> list[str]:
    """Tickers of a post: ``currencies`` (API v1) or ``instruments`` (v2)."""
    listed = post.get("currencies") or post.get("instruments") or []
    return [
        str(c["code"]) for c in listed if isinstance(c, dict) and isinstance(c.get("code"), str)
    ]


@dataclass(slots=True)
class CryptoPanicSource:
    """CryptoPanic's ``posts`` endpoint (needs an API token)."""

    settings: CryptoPanicSettings
    keywords: Mapping[str, Sequence[str]] = field(default_factory=dict)
    max_bytes: int = 5_000_000
    max_items: int = 200
    name: str = "cryptopanic"

    async def fetch(self, client: httpx.AsyncClient, now: datetime) -> Fetched:
        token = self.settings.token
        if token is None or not token.get_secret_value():
            raise NewsError("no CryptoPanic token: set [news.cryptopanic] token")
        params = {
            "auth_token": token.get_secret_value(),
            "public": "true",
            "kind": self.settings.kind,
        }
        if self.settings.currencies:
            params["currencies"] = ",".join(self.settings.currencies)
        url = self.settings.base_url.rstrip("/") + "/posts/"
        status, body, _ = await read_body(client, url, params, self.max_bytes)
        try:
            data: Any = httpx.Response(200, content=body).json()
        except ValueError:
            data = None
        if status >= 400:
            info = data.get("info") or data.get("detail") if isinstance(data, dict) else None
            detail = f": {str(info)[:200]}" if info else ""
            raise NewsError(f"HTTP {status}{detail}")
        if not isinstance(data, dict) or not isinstance(data.get("results"), list):
            raise NewsError("not a CryptoPanic posts answer (no results list)")
        items: list[NewsItem] = []
        skipped = 0
        for post in data["results"][: self.max_items]:
            if not isinstance(post, dict):
                skipped += 1
                continue
            title = plain_text(post.get("title") if isinstance(post.get("title"), str) else "")
            link = post.get("original_url") or post.get("url")
            ident = post.get("id")
            if not title or not (link or ident is not None):
                skipped += 1
                continue
            summary = plain_text(str(post.get("description") or post.get("body") or ""))
            try:
                item = NewsItem(
                    source=self.name,
                    title=title,
                    first_seen=now,
                    published=_when(post.get("published_at") or post.get("created_at")),
                    link=str(link) if link else None,
                    guid=f"cryptopanic:{ident}" if ident is not None else None,
                    summary=summary,
                    symbols=_tags(f"{title} {summary}", _codes(post), self.keywords),
                )
            except ValueError:  # e.g. a link too long to keep
                skipped += 1
                continue
            items.append(item)
        warnings = [f"{skipped} posts without a title or link were skipped"] if skipped else []
        return Fetched(items, warnings)


def sources_from_settings(settings: NewsSettings) -> list[NewsSource]:
    """The configured feeds, and CryptoPanic when it has a token."""
    limits = {
        "keywords": settings.keywords,
        "max_bytes": settings.max_bytes,
        "max_items": settings.max_items,
    }
    sources: list[NewsSource] = [FeedSource(f, **limits) for f in settings.feeds]  # type: ignore[arg-type]
    if settings.cryptopanic.token is not None:
        sources.append(CryptoPanicSource(settings.cryptopanic, **limits))  # type: ignore[arg-type]
    return sources
