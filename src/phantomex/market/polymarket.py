"""Polymarket prediction markets as a polling :class:`~phantomex.market.base.MarketFeed`.

Each outcome token of a market is an instrument (``asset_class`` prediction, venue
``polymarket``, priced 0..1 in USD) named ``<ALIAS>:<OUTCOME>`` in capitals, e.g.
``BTC-UPDOWN-5M-1773307200:UP``; the alias is the slug unless the settings give a shorter one
(``"BTC5M=btc-updown-5m-1773307200"``), since symbols are at most 32 characters.

Every poll reads the market from Gamma and, while it accepts orders, each token's CLOB book: the
price is Polymarket's displayed price (midpoint when the spread is at most 0.10, else the last
trade), timed by the book's timestamp (never later than the clock). A closed market gets no new
prices (the old ones go stale). A resolved one (closed, outcome prices exactly 1 and 0) is priced
at its payouts: the winner at 1, the loser at 0 (an invalid price: never traded), and
:meth:`PolymarketFeed.resolutions` tells the settlement which positions to pay out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from phantomex.domain.inputs import HttpUrl
from phantomex.domain.models import AssetClass, Instrument, Snapshot, Tick
from phantomex.market.health import SourceHealth
from phantomex.market.polymarket_api import (
    CLOB_URL,
    GAMMA_URL,
    GammaMarket,
    PolymarketClient,
    PolymarketError,
    displayed_price,
)
from phantomex.market.retry import Backoff, polled_tick

__all__ = [
    "MarketRef",
    "PolymarketFeed",
    "PolymarketSettings",
    "polymarket_feed_from_settings",
]

MAX_SYMBOL = 32  # the store's symbol column


@dataclass(frozen=True, slots=True)
class MarketRef:
    """A market slug and the alias its symbols use; parsed from ``"ALIAS=slug"`` or ``"slug"``."""

    slug: str
    alias: str

    @classmethod
    def parse(cls, text: str) -> MarketRef:
        alias, _, slug = text.strip().rpartition("=")
        slug = slug.strip()
        if not slug:
            raise ValueError(f"empty market slug in {text!r}")
        return cls(slug, alias.strip() or slug)


@dataclass(frozen=True, slots=True)
class _Token:
    slug: str
    outcome: str
    token_id: str


def outcome_symbol(alias: str, outcome: str) -> str:
    """``<ALIAS>:<OUTCOME>`` in capitals (agent symbols are upper-cased); raises when it is
    longer than the store allows."""
    symbol = f"{alias.strip()}:{outcome.strip().replace(' ', '_')}".upper()
    if len(symbol) > MAX_SYMBOL:
        raise ValueError(
            f"symbol {symbol!r} is longer than {MAX_SYMBOL} characters; give the market a "
            f'short alias ("ALIAS={alias}")'
        )
    return symbol


class PolymarketFeed:
    """Polls Gamma and the CLOB for the given markets (see the module docstring)."""

    def __init__(
        self,
        markets: Iterable[tuple[MarketRef, GammaMarket]],
        client: PolymarketClient,
        *,
        poll_seconds: float = 30.0,
        max_backoff_seconds: float = 900.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._clock = clock
        self._aliases: dict[str, str] = {}
        self._tokens: dict[str, _Token] = {}
        for ref, market in markets:
            self._aliases[market.slug] = ref.alias
            for outcome in market.outcomes:
                symbol = outcome_symbol(ref.alias, outcome.name)
                self._tokens[symbol] = _Token(market.slug, outcome.name, outcome.token_id)
        if not self._tokens:
            raise ValueError("PolymarketFeed needs at least one market")
        self._instruments = {
            s: Instrument(s, AssetClass.PREDICTION, quote="USD", venue="polymarket")
            for s in self._tokens
        }
        self._health = SourceHealth(
            "polymarket",
            stale_after=max(timedelta(seconds=3 * poll_seconds), timedelta(minutes=3)),
            symbols=list(self._tokens),
        )
        self._snapshots: dict[str, Snapshot] = {}
        self._payouts: dict[str, Decimal] = {}
        self._backoff = Backoff(poll_seconds, max_backoff_seconds)
        self._closed = False

    @classmethod
    def connect(
        cls, refs: Iterable[MarketRef], client: PolymarketClient, **kw: Any
    ) -> PolymarketFeed:
        """Look every market up on Gamma (its outcomes and token ids), then build the feed."""
        return cls([(ref, client.market(ref.slug)) for ref in refs], client, **kw)

    @property
    def instruments(self) -> dict[str, Instrument]:
        return dict(self._instruments)

    @property
    def next_delay(self) -> float:
        return self._backoff.delay

    def health(self) -> list[SourceHealth]:
        return [self._health]

    def resolutions(self) -> dict[str, Decimal]:
        """Symbol -> payout (1 or 0) of every outcome token whose market has resolved."""
        return dict(self._payouts)

    def warmup(self) -> list[Tick]:
        return []  # books have no history; prices start with the first poll

    async def next_tick(self) -> Tick | None:
        return await polled_tick(lambda: self._closed, self._backoff.delay, self.poll)

    def poll(self) -> Tick:
        """Read every market and its books once; the tick is at the clock's time."""
        now = self._clock()
        answered, errors = 0, []
        retry_after: float | None = None
        for slug in dict.fromkeys(t.slug for t in self._tokens.values()):
            try:
                answered += self._poll_market(slug, now)
            except PolymarketError as exc:
                errors.append(str(exc))
                if exc.retry_after is not None:
                    retry_after = max(retry_after or 0.0, exc.retry_after)
        if answered:
            self._health.ok(now)
        for error in errors:
            self._health.failed(now, error)
        self._backoff.record(answered > 0, retry_after)
        return Tick(now, dict(self._snapshots))

    def _poll_market(self, slug: str, now: datetime) -> int:
        market = self._client.market(slug)
        alias = self._aliases[slug]
        payouts = market.payouts
        if payouts is not None:
            for name, payout in payouts.items():
                symbol = outcome_symbol(alias, name)
                self._payouts[symbol] = payout
                self._snapshots[symbol] = Snapshot(symbol, now, payout)
            return 1
        if market.closed or not market.accepting_orders:
            return 1  # answered, but nothing tradable: known prices go stale
        for outcome in market.outcomes:
            symbol = outcome_symbol(alias, outcome.name)
            book = self._client.book(outcome.token_id)
            price = displayed_price(book)
            if price is None:
                self._snapshots.pop(symbol, None)  # no price is better than an old one
                continue
            at = min(book.time or now, now)
            self._snapshots[symbol] = Snapshot(symbol, at, price)
        return 1

    def close(self) -> None:
        self._closed = True
        self._client.close()


class PolymarketSettings(BaseModel):
    """The ``polymarket`` source's settings (the ``[polymarket]`` TOML table)."""

    model_config = ConfigDict(extra="forbid")

    markets: list[str] = Field(
        default_factory=list,
        description='Market slugs, optionally with a short alias: "BTC5M=btc-updown-5m-…".',
    )
    gamma_url: HttpUrl = GAMMA_URL
    clob_url: HttpUrl = CLOB_URL
    poll_seconds: float = Field(30.0, gt=0)
    timeout_seconds: float = Field(10.0, gt=0)
    max_backoff_seconds: float = Field(900.0, gt=0)

    @field_validator("markets")
    @classmethod
    def _valid_markets(cls, value: list[str]) -> list[str]:
        for text in value:
            MarketRef.parse(text)
        return value


def polymarket_feed_from_settings(
    settings: PolymarketSettings | Mapping[str, Any],
    *,
    clock: Callable[[], datetime] | None = None,
) -> PolymarketFeed:
    """The ``polymarket`` source. Looks the markets up on Gamma now (so the instruments are
    known); raises :class:`PolymarketError` when one cannot be found or read."""
    cfg = settings if isinstance(settings, PolymarketSettings) else PolymarketSettings(**settings)
    client = PolymarketClient(cfg.gamma_url, cfg.clob_url, timeout=cfg.timeout_seconds)
    try:
        return PolymarketFeed.connect(
            [MarketRef.parse(m) for m in cfg.markets],
            client,
            poll_seconds=cfg.poll_seconds,
            max_backoff_seconds=cfg.max_backoff_seconds,
            **({"clock": clock} if clock else {}),
        )
    except Exception:
        client.close()
        raise
