"""``phantomex news import|fetch|list``: the news LLM agents may read (up to their clock).

``import`` reads recorded news (JSON Lines, or a saved RSS/Atom document) so a backtest or a
replay session shows each item from the time it was first seen; ``fetch`` reads the configured
``[news]`` sources once (first seen: now); ``list`` shows what an agent would see at a time."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from phantomex.cli.client import fail
from phantomex.cli.output import console, err_console, say

if TYPE_CHECKING:
    from phantomex.store.repo import Store

news_app = typer.Typer(help="Import, fetch and list the news LLM agents can read.")


def register(app: typer.Typer) -> None:
    """Add the ``news`` commands to ``app``."""
    app.add_typer(news_app, name="news")


def _store() -> Store:
    from phantomex.config import load_settings
    from phantomex.store.repo import Store

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return Store(settings.database_url)


def _when(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        fail(f"not an ISO date or date-time: {text!r}", 2)
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@news_app.command("import")
def import_cmd(
    path: Annotated[Path, typer.Argument(help="A .jsonl file, or a saved RSS/Atom document.")],
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="Source name (default: the file's name).", show_default=False
        ),
    ] = None,
) -> None:
    """Store recorded news; each item is seen from its first_seen (else published) time."""
    from phantomex.config import load_settings
    from phantomex.news.records import read_records
    from phantomex.news.sources import NewsError

    try:
        recorded = read_records(path, source=source, keywords=load_settings().news.keywords)
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror or exc}", 2)
    except (NewsError, UnicodeDecodeError) as exc:
        fail(f"{path}: {exc}", 2)
    for problem in recorded.refused[:20]:
        err_console.print(f"skipped: {problem}", markup=False, highlight=False)
    store = _store()
    try:
        with store.unit():
            new = store.add_news(recorded.items)
    finally:
        store.close()
    say(f"{len(recorded.items)} items read, {new} new, {len(recorded.refused)} skipped")


@news_app.command("fetch")
def fetch_cmd() -> None:
    """Read every configured [news] source once and store the new items."""
    from phantomex.config import load_settings
    from phantomex.news.collect import collect
    from phantomex.news.sources import sources_from_settings

    settings = load_settings().news
    sources = sources_from_settings(settings)
    if not sources:
        fail("no news sources: add [[news.feeds]] (or a [news.cryptopanic] token) to the settings")
    store = _store()
    try:
        reports = asyncio.run(
            collect(sources, store, datetime.now(UTC), timeout=settings.timeout_seconds)
        )
    finally:
        store.close()
    for r in reports:
        if r.error:
            err_console.print(f"{r.source}: error: {r.error}", markup=False, highlight=False)
        else:
            say(f"{r.source}: {r.read} read, {r.new} new")
        for warning in r.warnings:
            err_console.print(f"{r.source}: {warning}", markup=False, highlight=False)
    if all(r.error for r in reports):
        raise typer.Exit(1)


@news_app.command("list")
def list_cmd(
    at: Annotated[
        str | None,
        typer.Option(
            "--at", help="As an agent would see it then (default: now).", show_default=False
        ),
    ] = None,
    symbol: Annotated[
        str | None, typer.Option("--symbol", help="Only items about it.", show_default=False)
    ] = None,
    query: Annotated[
        str | None, typer.Option("--query", help="Words to look for.", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="JSON Lines output.")] = False,
) -> None:
    """The newest items first seen at or before --at."""
    from phantomex.news.records import item_json

    store = _store()
    try:
        items = store.news(
            _when(at), symbols=[symbol.upper()] if symbol else None, query=query, limit=limit
        )
    finally:
        store.close()
    if as_json:
        for item in items:
            print(json.dumps(item_json(item), ensure_ascii=False))
        return
    if not items:
        say("no news")
        return
    for item in items:
        tags = ",".join(item.symbols) or "-"
        console.print(
            f"{item.first_seen:%Y-%m-%d %H:%M} {item.source} [{tags}] {item.title}",
            markup=False,
            highlight=False,
        )
