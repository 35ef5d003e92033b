"""Market sources by name: ``replay``, ``coingecko``, ``ccxt:<exchange>``, ``yahoo``,
``polymarket``, ``ib`` (``ib:<symbols>``). :func:`build_sources` turns the server's ``sources``
setting into one feed.

Adding a source is one entry in :data:`FACTORIES`: ``name -> factory(arg, settings, store)``,
where ``arg`` is the part after the colon (``binance`` in ``ccxt:binance``) or None. Several
sources run together in a :class:`~phantomex.market.sources.CompositeFeed`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from phantomex.market.base import MarketFeed
from phantomex.market.idle import IdleFeed
from phantomex.market.sources import CompositeFeed, SourceError

if TYPE_CHECKING:
    import ccxt

    from phantomex.config import Settings
    from phantomex.sessions.handover import LiveSources
    from phantomex.store.repo import Store

__all__ = ["FACTORIES", "build_source", "build_sources", "parse_spec", "session_live_sources"]

FeedFactory = Callable[[str | None, "Settings", "Store"], MarketFeed]


def _replay(arg: str | None, settings: Settings, store: Store) -> MarketFeed:
    """The replay of the configured files (or the shipped dataset), resuming after the clock."""
    from phantomex.market.replay import replay_dataset, replay_from_files
    from phantomex.store.port import CLOCK_KEY

    cursor = store.get_state(CLOCK_KEY)
    ceiling = settings.price_guard.max_price
    kwargs: dict[str, Any] = {
        "speed": settings.replay_speed,
        "loop": settings.replay_loop,
        "warmup_bars": settings.warmup_bars,
        "start_after": datetime.fromisoformat(cursor["time"]) if cursor else None,
    }
    if settings.replay_files:
        return replay_from_files(settings.replay_files, max_price=ceiling, **kwargs)
    name = arg or "demo"
    return replay_dataset(name, max_price=ceiling, datasets=settings.datasets_dir, **kwargs)


def _coingecko(arg: str | None, settings: Settings, store: Store) -> MarketFeed:
    from phantomex.market.coingecko import CoinGeckoFeed

    return CoinGeckoFeed(settings.coingecko)


def _ccxt(arg: str | None, settings: Settings, store: Store) -> MarketFeed:
    from phantomex.market.ccxt_feed import ccxt_feed_from_spec

    if not arg:
        raise SourceError("name the exchange: ccxt:<exchange>, e.g. ccxt:binance")
    cfg = settings.ccxt
    try:
        return ccxt_feed_from_spec(
            arg,
            cfg.symbols,
            quote=cfg.quote,
            timeframe=cfg.timeframe,
            poll_seconds=cfg.poll_seconds,
            use_websocket=cfg.use_websocket,
            warmup_bars=cfg.warmup_bars,
            api_urls=settings.exchange.api_urls.get(arg) or None,
            timeout_ms=settings.exchange.timeout_ms,
        )
    except ValueError as exc:
        raise SourceError(f"ccxt:{arg}: {exc}") from exc


def _yahoo(arg: str | None, settings: Settings, store: Store) -> MarketFeed:
    from phantomex.market.yahoo import yahoo_feed_from_settings

    return yahoo_feed_from_settings(settings.yahoo, data_dir=settings.data_dir)


def _polymarket(arg: str | None, settings: Settings, store: Store) -> MarketFeed:
    from phantomex.market.polymarket import PolymarketError, polymarket_feed_from_settings

    try:
        return polymarket_feed_from_settings(settings.polymarket)
    except PolymarketError as exc:
        raise SourceError(f"polymarket: {exc}") from exc


def _ib(arg: str | None, settings: Settings, store: Store) -> MarketFeed:
    """US stocks from the ``[exchange.ib]`` connection (``ib:AAPL,MSFT`` names the symbols)."""
    from phantomex.broker.ib_feed import ib_feed_from_settings
    from phantomex.broker.ib_paper import IBUnavailable

    symbols = [s.strip() for s in (arg or "").split(",") if s.strip()]
    try:
        return ib_feed_from_settings(settings.exchange.ib, symbols or None)
    except (ValueError, IBUnavailable) as exc:
        raise SourceError(f"ib: {exc}") from exc


FACTORIES: dict[str, FeedFactory] = {
    "replay": _replay,
    "coingecko": _coingecko,
    "ccxt": _ccxt,
    "yahoo": _yahoo,
    "polymarket": _polymarket,
    "ib": _ib,
}


def parse_spec(spec: str) -> tuple[str, str | None]:
    """``"ccxt:binance"`` -> ``("ccxt", "binance")``; ``"coingecko"`` -> ``("coingecko", None)``."""
    name, _, arg = spec.strip().partition(":")
    return name.lower(), (arg.strip() or None)


def build_source(spec: str, settings: Settings, store: Store) -> MarketFeed:
    name, arg = parse_spec(spec)
    factory = FACTORIES.get(name)
    if factory is None:
        known = ", ".join(FACTORIES)
        raise SourceError(f"unknown source {spec!r}; known: {known} (ccxt as ccxt:<exchange>)")
    return factory(arg, settings, store)


def build_sources(
    specs: Sequence[str],
    settings: Settings,
    store: Store,
    skip: Callable[[str, str], None] | None = None,
) -> MarketFeed:
    """One feed for the configured sources: the feed itself, or a composite of several.

    A source that cannot be built or combined raises :class:`SourceError`; with ``skip``, it is
    passed to ``skip(spec, reason)`` and left out instead, and when no source is left the feed
    is an :class:`~phantomex.market.idle.IdleFeed` (the server starts without prices)."""

    def refuse(spec: str, reason: str) -> None:
        if skip is None:
            raise SourceError(reason)
        skip(spec, reason)

    feeds: list[tuple[str, MarketFeed]] = []
    for spec in specs:
        name = spec.strip().lower()
        built = [n for n, _ in feeds]
        if name in built:
            refuse(spec, f"a source is listed twice: {list(specs)}")
        elif (
            built
            and parse_spec(name)[0] in FACTORIES  # an unknown name is refused as unknown
            and "replay" in {parse_spec(n)[0] for n in (*built, name)}
        ):
            refuse(
                spec,
                "replay runs on its own recorded clock and cannot be combined with live sources",
            )
        else:
            try:
                feeds.append((name, build_source(name, settings, store)))
            except Exception as exc:
                if skip is None:
                    raise
                skip(spec, str(exc) or type(exc).__name__)
    if not feeds:
        if skip is None:
            raise SourceError("no market source configured; e.g. sources = ['replay']")
        return IdleFeed()
    return feeds[0][1] if len(feeds) == 1 else CompositeFeed(feeds)


def session_live_sources(settings: Settings, store: Store) -> LiveSources:
    """What replay-then-live sessions start: a live source of the session's own symbols (with
    the configured settings), history kept under the data directory and downloaded through
    ccxt (at the exchange's configured URLs)."""
    from phantomex.market.ccxt_client import configure
    from phantomex.market.datastore import DataStore
    from phantomex.market.download import make_exchange
    from phantomex.sessions.handover import LiveSources

    def live(spec: str, symbols: list[str]) -> MarketFeed:
        name, _ = parse_spec(spec)
        if name == "coingecko":
            coins = settings.coingecko.model_copy(update={"coins": symbols})
            return FACTORIES["coingecko"](
                None, settings.model_copy(update={"coingecko": coins}), store
            )
        if name == "ccxt":
            ccxt_settings = settings.ccxt.model_copy(update={"symbols": symbols})
            changed = settings.model_copy(update={"ccxt": ccxt_settings})
            return build_source(spec, changed, store)
        raise SourceError(f"a session goes live on coingecko or ccxt:<exchange>, not {spec!r}")

    def exchange(name: str) -> ccxt.Exchange:
        ex = make_exchange(name, {"timeout": settings.exchange.timeout_ms})
        return configure(ex, api_urls=settings.exchange.api_urls.get(name) or None)

    return LiveSources(live, DataStore(settings.data_dir / "datasets"), exchange)
