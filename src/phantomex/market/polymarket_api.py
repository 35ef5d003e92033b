"""Polymarket's read-only APIs: Gamma markets by slug and CLOB order books, parsed exactly.

Read-only public data needs no signing, so plain httpx is used (the official ``py-clob-client``
is archived and its successor is about trading). Gamma double-encodes ``outcomes``,
``outcomePrices`` and ``clobTokenIds`` as JSON strings inside the JSON. CLOB levels come in any
order: best bid = max(bids), best ask = min(asks), never the first or last level."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import httpx

from phantomex.domain.money import ONE, ZERO, to_decimal
from phantomex.market.retry import retry_after_seconds

__all__ = [
    "Book",
    "GammaMarket",
    "Outcome",
    "PolymarketClient",
    "PolymarketError",
    "displayed_price",
    "parse_book",
    "parse_gamma_market",
]

T = TypeVar("T")
GAMMA_URL = "https://gamma-api.polymarket.com"
CLOB_URL = "https://clob.polymarket.com"
#: Polymarket shows the midpoint while the spread is at most this, else the last trade price.
MAX_MIDPOINT_SPREAD = Decimal("0.10")


class PolymarketError(Exception):
    """A failed or malformed answer. ``retry_after`` (seconds) is set on rate limits."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    token_id: str
    price: Decimal  # Gamma's outcome price, 0..1


@dataclass(frozen=True, slots=True)
class GammaMarket:
    """A market as Gamma describes it; ``payouts`` is set once it has resolved."""

    slug: str
    question: str
    condition_id: str
    outcomes: tuple[Outcome, ...]
    closed: bool
    accepting_orders: bool

    @property
    def payouts(self) -> dict[str, Decimal] | None:
        """Outcome name -> payout (1 or 0) when the market is closed and resolved: exactly one
        outcome priced 1 and the rest 0. None while open or awaiting resolution."""
        if not self.closed:
            return None
        prices = [o.price for o in self.outcomes]
        if sorted(prices) != [ZERO] * (len(prices) - 1) + [ONE]:
            return None
        return {o.name: o.price for o in self.outcomes}


@dataclass(frozen=True, slots=True)
class Book:
    """The top of a CLOB order book."""

    token_id: str
    best_bid: Decimal | None
    best_ask: Decimal | None
    last_trade: Decimal | None
    time: datetime | None

    @property
    def spread(self) -> Decimal | None:
        if self.best_bid is None or self.best_ask is None:
            return None
        return self.best_ask - self.best_bid


def displayed_price(book: Book) -> Decimal | None:
    """Polymarket's displayed price: the midpoint when the spread is at most 0.10, else the last
    trade price (None when neither is known: no price, so no trade)."""
    spread = book.spread
    if spread is not None and spread <= MAX_MIDPOINT_SPREAD:
        assert book.best_bid is not None and book.best_ask is not None
        return (book.best_bid + book.best_ask) / 2
    return book.last_trade


def _probability(value: Any, what: str) -> Decimal:
    try:
        number = to_decimal(value)
    except ValueError as exc:
        raise PolymarketError(f"{what}: {exc}") from exc
    if not ZERO <= number <= ONE:
        raise PolymarketError(f"{what}: {number} is outside [0, 1]")
    return number


def _json_list(raw: Any, what: str) -> list[Any]:
    """A Gamma field that is a JSON array encoded as a string (or, defensively, a list)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise PolymarketError(f"{what} is not a JSON array: {raw!r}") from exc
    if not isinstance(raw, list):
        raise PolymarketError(f"{what} is not a list: {raw!r}")
    return raw


def parse_gamma_market(obj: Any) -> GammaMarket:
    """One element of Gamma's ``/markets`` answer."""
    if not isinstance(obj, dict) or not obj.get("slug"):
        raise PolymarketError("not a Gamma market")
    slug = str(obj["slug"])
    names = _json_list(obj.get("outcomes"), f"{slug}: outcomes")
    prices = _json_list(obj.get("outcomePrices"), f"{slug}: outcomePrices")
    tokens = _json_list(obj.get("clobTokenIds"), f"{slug}: clobTokenIds")
    if not names or not len(names) == len(prices) == len(tokens):
        raise PolymarketError(
            f"{slug}: {len(names)} outcomes, {len(prices)} prices, {len(tokens)} token ids"
        )
    outcomes = tuple(
        Outcome(str(n), str(t), _probability(p, f"{slug}: price of {n}"))
        for n, p, t in zip(names, prices, tokens, strict=True)
    )
    return GammaMarket(
        slug=slug,
        question=str(obj.get("question", "")),
        condition_id=str(obj.get("conditionId", "")),
        outcomes=outcomes,
        closed=bool(obj.get("closed")),
        accepting_orders=bool(obj.get("acceptingOrders", True)),
    )


def parse_book(obj: Any, token_id: str) -> Book:
    """A CLOB ``/book`` answer; every price must lie in [0, 1]."""
    if not isinstance(obj, dict):
        raise PolymarketError(f"book of {token_id}: not an object")
    levels: dict[str, list[Decimal]] = {}
    for side in ("bids", "asks"):
        raw = obj.get(side) or []
        if not isinstance(raw, list):
            raise PolymarketError(f"book of {token_id}: {side} is not a list")
        levels[side] = [
            _probability(level.get("price") if isinstance(level, dict) else None, f"{side} price")
            for level in raw
        ]
    bid = max(levels["bids"], default=None)
    ask = min(levels["asks"], default=None)
    if bid is not None and ask is not None and bid > ask:
        raise PolymarketError(f"book of {token_id}: crossed (bid {bid} > ask {ask})")
    last = obj.get("last_trade_price")
    return Book(
        token_id=token_id,
        best_bid=bid,
        best_ask=ask,
        last_trade=_probability(last, "last_trade_price") if last not in (None, "") else None,
        time=_book_time(obj.get("timestamp")),
    )


def _book_time(raw: Any) -> datetime | None:
    """Real books carry a ms-epoch string; an older docs page shows ISO-8601."""
    if raw is None or raw == "":
        return None
    text = str(raw)
    if text.isdigit():
        value = int(text)
        return datetime.fromtimestamp(value / 1000 if value > 10**11 else value, UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class PolymarketClient:
    """Synchronous Gamma + CLOB client (run it in a thread from async code)."""

    def __init__(
        self, gamma_url: str = GAMMA_URL, clob_url: str = CLOB_URL, *, timeout: float = 10.0
    ) -> None:
        self.gamma_url = gamma_url.rstrip("/")
        self.clob_url = clob_url.rstrip("/")
        self._http = httpx.Client(timeout=timeout)

    def market(self, slug: str) -> GammaMarket:
        """The market with this slug (``GET /markets?slug=``)."""
        body = self._get(f"{self.gamma_url}/markets", {"slug": slug}, f"market {slug}")
        items = body if isinstance(body, list) else [body]
        matches = [m for m in items if isinstance(m, dict) and m.get("slug") == slug]
        if not matches:
            raise PolymarketError(f"market {slug}: not found")
        return _parsed(lambda: parse_gamma_market(matches[0]), f"market {slug}")

    def book(self, token_id: str) -> Book:
        """The order book of one outcome token (``GET /book?token_id=``)."""
        body = self._get(f"{self.clob_url}/book", {"token_id": token_id}, f"book of {token_id}")
        return _parsed(lambda: parse_book(body, token_id), f"book of {token_id}")

    def _get(self, url: str, params: dict[str, str], what: str) -> Any:
        try:
            resp = self._http.get(url, params=params)
        except httpx.TimeoutException as exc:
            raise PolymarketError(f"{what}: timeout ({type(exc).__name__})") from exc
        except httpx.HTTPError as exc:
            raise PolymarketError(f"{what}: {type(exc).__name__}: {exc}") from exc
        try:
            body = resp.json()
        except ValueError:
            body = None
        if resp.status_code != 200:
            detail = body.get("error") if isinstance(body, dict) else None
            raise PolymarketError(
                f"{what}: HTTP {resp.status_code}" + (f": {detail}" if detail else ""),
                retry_after=retry_after_seconds(resp.headers.get("Retry-After"))
                if resp.status_code == 429
                else None,
            )
        if body is None:
            raise PolymarketError(f"{what}: answer is not JSON")
        return body

    def close(self) -> None:
        self._http.close()


def _parsed(parse: Callable[[], T], what: str) -> T:
    """Run a parser; an unexpected shape becomes a :class:`PolymarketError`, never a crash."""
    try:
        return parse()
    except (TypeError, KeyError, IndexError, AttributeError, ValueError) as exc:
        raise PolymarketError(f"{what}: malformed answer ({exc!r})") from exc
