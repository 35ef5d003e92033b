"""News items in the database (the table is ``store/news_tables.py``): add with deduplication
by key and by link, and read what was first seen up to a time. :class:`~phantomex.store.repo.Store`
calls these; :class:`~phantomex.store.memory.MemoryStore` keeps the same semantics in memory."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, func, or_, select, update

from phantomex.domain.news import NewsItem
from phantomex.store.news_tables import NewsItemRow

NEWS: Table = NewsItemRow.__table__  # type: ignore[assignment]
#: rows read per query before filtering by symbol and words (the newest first)
_SCAN = 5000


def _row(item: NewsItem) -> dict[str, Any]:
    return {
        "key": item.key,
        "link": item.link,
        "source": item.source,
        "title": item.title,
        "summary": item.summary,
        "symbols": list(item.symbols),
        "published_at": item.published,
        "first_seen_at": item.first_seen,
    }


def _item(row: Any) -> NewsItem:
    guid = row.key if row.key != row.link else None
    return NewsItem(
        source=row.source,
        title=row.title,
        first_seen=row.first_seen_at,
        published=row.published_at,
        link=row.link,
        guid=guid,
        summary=row.summary,
        symbols=tuple(row.symbols or ()),
    )


def add_news(conn: Connection, items: Sequence[NewsItem]) -> int:
    """Store ``items``; one already stored (same key or same link) keeps its row, with the
    earlier of the two ``first_seen`` times. Returns how many items were new."""
    added = 0
    for item in items:
        clause = NEWS.c.key == item.key
        if item.link:
            clause = or_(clause, NEWS.c.link == item.link)
        found = conn.execute(select(NEWS.c.id, NEWS.c.first_seen_at).where(clause)).first()
        if found is None:
            conn.execute(NEWS.insert(), [_row(item)])
            added += 1
        elif item.first_seen < found.first_seen_at:
            conn.execute(
                update(NEWS).where(NEWS.c.id == found.id).values(first_seen_at=item.first_seen)
            )
    return added


def read_news(
    conn: Connection,
    until: datetime,
    *,
    since: datetime | None,
    symbols: Sequence[str] | None,
    query: str | None,
    limit: int,
) -> list[NewsItem]:
    """The items first seen in ``(since, until]`` matching ``symbols`` and ``query``, newest
    first, at most ``limit`` (see :func:`phantomex.domain.news.visible`)."""
    stmt = select(NEWS).where(NEWS.c.first_seen_at <= until)
    if since is not None:
        stmt = stmt.where(NEWS.c.first_seen_at > since)
    # a coarse filter in SQL (ASCII words: SQLite lowers only ASCII); matches() decides
    for word in [w for w in (query or "").lower().split() if w.isascii()]:
        text = func.lower(NEWS.c.title + " " + NEWS.c.summary)
        stmt = stmt.where(text.contains(word, autoescape=True))
    stmt = stmt.order_by(NEWS.c.first_seen_at.desc(), NEWS.c.key.desc()).limit(_SCAN)
    out: list[NewsItem] = []
    for row in conn.execute(stmt):
        item = _item(row)
        if item.matches(symbols, query):
            out.append(item)
            if len(out) >= limit:
                break
    return out


def count_news(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(NEWS)).scalar_one())
