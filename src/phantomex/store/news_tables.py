"""The news table: one row per news item, unique by its key (guid, else link) and by its link
(migration ``0007_news``; reads and writes in ``store/news.py``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from phantomex.store.base import Base


class NewsItemRow(Base):
    """A headline with the time it was published (as the source says) and first seen here."""

    __tablename__ = "news_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(500), unique=True)
    link: Mapped[str | None] = mapped_column(String(2000), unique=True)
    source: Mapped[str] = mapped_column(String(100))
    title: Mapped[str] = mapped_column(Text)
    summary: Mapped[str] = mapped_column(Text, default="")
    symbols: Mapped[list[Any]] = mapped_column(JSON)
    published_at: Mapped[datetime | None]
    first_seen_at: Mapped[datetime] = mapped_column(index=True)
