"""Recorded news: JSON Lines files (one item per line) and saved RSS/Atom documents, read into
items for the store, so a replay or a backtest sees the news it would have seen then.

A line: ``{"title": ..., "link": ..., "guid": ..., "source": ..., "summary": ...,
"symbols": [...], "published": ISO time, "first_seen": ISO time}``; ``first_seen`` defaults to
``published`` (a recorded item is taken as seen when it was published), and one of the two must
be given. In a saved feed, every item is first seen when it was published."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from phantomex.domain.news import NewsItem
from phantomex.news.sources import parse_feed

__all__ = ["Recorded", "item_json", "read_records"]


@dataclass(slots=True)
class Recorded:
    """Items read from a file, and the lines or entries that were refused (with why)."""

    items: list[NewsItem] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def _time(value: Any, what: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what} must be an ISO date-time")
    when = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _from_json(row: Any, source: str) -> NewsItem:
    if not isinstance(row, dict):
        raise ValueError("not a JSON object")
    published = _time(row.get("published"), "published")
    first_seen = _time(row.get("first_seen"), "first_seen") or published
    if first_seen is None:
        raise ValueError("needs first_seen or published")
    symbols = row.get("symbols") or []
    if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
        raise ValueError("symbols must be a list of tickers")
    title = row.get("title")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("needs a title")
    return NewsItem(
        source=str(row.get("source") or source),
        title=title,
        first_seen=first_seen,
        published=published,
        link=row.get("link") or None,
        guid=row.get("guid") or None,
        summary=str(row.get("summary") or ""),
        symbols=tuple(symbols),
    )


def read_records(
    path: Path, *, source: str | None = None, keywords: Mapping[str, Sequence[str]] | None = None
) -> Recorded:
    """The items of a ``.jsonl`` file or a saved RSS/Atom document (any other name)."""
    name = source or path.stem
    out = Recorded()
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                try:
                    out.items.append(_from_json(json.loads(line), name))
                except (ValueError, TypeError) as exc:
                    out.refused.append(f"line {number}: {exc}")
        return out
    fetched = parse_feed(
        path.read_bytes(),
        source=name,
        now=datetime.now(UTC),
        keywords=keywords,
        max_items=100_000,
    )
    out.refused.extend(fetched.warnings)
    for item in fetched.items:
        if item.published is None:
            out.refused.append(f"{item.key}: no publication time")
        else:
            out.items.append(replace(item, first_seen=item.published))
    return out


def item_json(item: NewsItem) -> dict[str, Any]:
    """A line of a recorded news file (the inverse of reading one)."""
    return {
        "source": item.source,
        "title": item.title,
        "link": item.link,
        "guid": item.guid,
        "summary": item.summary,
        "symbols": list(item.symbols),
        "published": item.published.isoformat() if item.published else None,
        "first_seen": item.first_seen.isoformat(),
    }
