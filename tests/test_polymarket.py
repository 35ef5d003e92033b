"""Polymarket: Gamma and CLOB parsing, the displayed-price rule, the feed against a local server
with the documented answers, and settlement of resolved markets through the ledger."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fakeapi import FakeAPI, Reply, Request, fixture

from phantomex.broker.paper import PaperBroker
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Action, AssetClass, Decision, Fill, Side, Tick, Wallet
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.ledger.ledger import LedgerError, apply_fill
from phantomex.ledger.settlement import settle_resolved, settlement_fills
from phantomex.market.polymarket import (
    MarketRef,
    PolymarketFeed,
    polymarket_feed_from_settings,
)
from phantomex.market.polymarket_api import (
    Book,
    PolymarketError,
    displayed_price,
    parse_book,
    parse_gamma_market,
)
from phantomex.store.repo import Store

D = Decimal
MARKET = fixture("polymarket/gamma_market_item_captured.json")
SLUG = MARKET["slug"]
UP_TOKEN, DOWN_TOKEN = json.loads(MARKET["clobTokenIds"])
BOOK_CAPTURED = fixture("polymarket/clob_book_captured.json")
BOOK_DOCS = fixture("polymarket/clob_book_docs.json")
BOOK_TIME = datetime(2024, 10, 13, 6, 3, 38, 260000, tzinfo=UTC)  # the capture's timestamp
NOW = BOOK_TIME + timedelta(seconds=30)


def resolved(up: str, down: str, *, closed: bool = True) -> dict[str, Any]:
    market = copy.deepcopy(MARKET)
    market.update(closed=closed, acceptingOrders=False, outcomePrices=json.dumps([up, down]))
    return market


def docs_book_at_capture_time() -> dict[str, Any]:
    book = copy.deepcopy(BOOK_DOCS)
    book["timestamp"] = BOOK_CAPTURED["timestamp"]
    return book


# -- parsing ----------------------------------------------------------------------------------


def test_gamma_market_json_string_fields_are_decoded() -> None:
    market = parse_gamma_market(MARKET)
    assert [o.name for o in market.outcomes] == ["Up", "Down"]
    assert [o.token_id for o in market.outcomes] == [UP_TOKEN, DOWN_TOKEN]
    assert [o.price for o in market.outcomes] == [D("0.505"), D("0.495")]
    assert market.condition_id.startswith("0x78443f96")
    assert not market.closed and market.accepting_orders and market.payouts is None


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"outcomePrices": '["1.2", "-0.2"]'}, r"outside \[0, 1\]"),
        ({"outcomePrices": '["0.5"]'}, "2 outcomes, 1 prices, 2 token ids"),
        ({"outcomes": "Up, Down"}, "outcomes is not a JSON array"),
        ({"clobTokenIds": None}, "clobTokenIds is not a list"),
        ({"outcomePrices": '["NaN", "0.5"]'}, "not a finite number"),
    ],
)
def test_bad_gamma_markets_are_clear_errors(patch: dict[str, Any], message: str) -> None:
    with pytest.raises(PolymarketError, match=message):
        parse_gamma_market({**MARKET, **patch})


def test_resolution_needs_closed_and_exact_payouts() -> None:
    assert parse_gamma_market(resolved("1", "0")).payouts == {"Up": D(1), "Down": D(0)}
    assert parse_gamma_market(resolved("0", "1")).payouts == {"Up": D(0), "Down": D(1)}
    assert parse_gamma_market(resolved("0.5", "0.5")).payouts is None  # awaiting / 50-50
    assert parse_gamma_market(resolved("1", "0", closed=False)).payouts is None


def test_book_best_levels_ignore_the_order_they_come_in() -> None:
    book = parse_book(BOOK_CAPTURED, "t")
    # the capture lists bids ascending and asks descending: best levels are the last ones
    assert (book.best_bid, book.best_ask) == (D("0.1"), D("0.14"))
    assert book.time == BOOK_TIME and book.last_trade is None
    docs = parse_book(BOOK_DOCS, "t")  # the docs list them the other way round
    assert (docs.best_bid, docs.best_ask, docs.last_trade) == (D("0.45"), D("0.46"), D("0.45"))


def test_book_prices_outside_zero_one_are_rejected() -> None:
    with pytest.raises(PolymarketError, match=r"1800.50 is outside \[0, 1\]"):
        parse_book(fixture("polymarket/clob_book_docs_older_summary_page.json"), "t")
    crossed = {**BOOK_DOCS, "bids": [{"price": "0.5", "size": "1"}]}
    with pytest.raises(PolymarketError, match="crossed"):
        parse_book(crossed, "t")


def test_iso_timestamps_of_the_older_docs_parse() -> None:
    body = {**fixture("polymarket/clob_book_docs_older_summary_page.json"), "bids": [], "asks": []}
    assert parse_book(body, "t").time == datetime(2023, 10, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("bid", "ask", "last", "shown"),
    [
        ("0.10", "0.14", None, "0.12"),  # midpoint
        ("0.40", "0.50", "0.3", "0.45"),  # spread exactly 0.10: still the midpoint
        ("0.40", "0.51", "0.3", "0.3"),  # wider: the last trade
        ("0.40", "0.51", None, None),  # wider and no trade yet: no price
        (None, "0.51", "0.47", "0.47"),  # one-sided book: the last trade
        (None, None, None, None),
    ],
)
def test_displayed_price_rule(
    bid: str | None, ask: str | None, last: str | None, shown: str | None
) -> None:
    book = Book(
        "t",
        D(bid) if bid else None,
        D(ask) if ask else None,
        D(last) if last else None,
        None,
    )
    assert displayed_price(book) == (D(shown) if shown else None)


# -- the feed against a local server ----------------------------------------------------------


class Venue:
    """The fake Gamma + CLOB: the market (changeable) and one book per token."""

    def __init__(self, api: FakeAPI) -> None:
        self.market: dict[str, Any] | None = MARKET
        self.books: dict[str, Reply] = {
            UP_TOKEN: Reply(body=BOOK_CAPTURED),
            DOWN_TOKEN: Reply(body=docs_book_at_capture_time()),
        }
        api.route("GET", "/markets", self._markets)
        api.route("GET", "/book", self._book)

    def _markets(self, request: Request) -> Reply:
        found = self.market is not None and request.arg("slug") == self.market["slug"]
        return Reply(body=[self.market] if found else [])

    def _book(self, request: Request) -> Reply:
        no_book = Reply(404, {"error": "No orderbook exists for the requested token id"})
        return self.books.get(request.arg("token_id") or "", no_book)


@pytest.fixture
def venue() -> Iterator[tuple[FakeAPI, Venue]]:
    with FakeAPI() as api:
        yield api, Venue(api)


def make_feed(api: FakeAPI, now: datetime = NOW, **kw: Any) -> PolymarketFeed:
    settings = {
        "markets": [f"BTC5M={SLUG}"],
        "gamma_url": api.url,
        "clob_url": api.url,
        **kw,
    }
    return polymarket_feed_from_settings(settings, clock=lambda: now)


def test_feed_instruments_are_outcome_tokens(venue: tuple[FakeAPI, Venue]) -> None:
    api, _ = venue
    feed = make_feed(api)
    assert set(feed.instruments) == {"BTC5M:UP", "BTC5M:DOWN"}
    up = feed.instruments["BTC5M:UP"]
    assert (up.asset_class, up.venue, up.calendar) == (AssetClass.PREDICTION, "polymarket", None)
    assert api.calls("/markets")[0].arg("slug") == SLUG


def test_long_slug_needs_an_alias(venue: tuple[FakeAPI, Venue]) -> None:
    api, venue_ = venue
    long_slug = "will-the-price-of-bitcoin-be-above-100k-on-december-31"
    venue_.market = {**MARKET, "slug": long_slug}
    with pytest.raises(ValueError, match="give the market a short alias"):
        polymarket_feed_from_settings(
            {"markets": [long_slug], "gamma_url": api.url, "clob_url": api.url}
        )
    assert MarketRef.parse(f"BTC100K={long_slug}") == MarketRef(long_slug, "BTC100K")
    venue_.market = MARKET
    plain = polymarket_feed_from_settings(
        {"markets": [SLUG], "gamma_url": api.url, "clob_url": api.url}
    )
    assert set(plain.instruments) == {f"{SLUG.upper()}:UP", f"{SLUG.upper()}:DOWN"}


def test_unknown_slug_is_a_clear_error(venue: tuple[FakeAPI, Venue]) -> None:
    api, _ = venue
    with pytest.raises(PolymarketError, match="market nope: not found"):
        polymarket_feed_from_settings(
            {"markets": ["nope"], "gamma_url": api.url, "clob_url": api.url}
        )


def test_poll_prices_each_token_by_the_displayed_price(venue: tuple[FakeAPI, Venue]) -> None:
    api, _ = venue
    tick = make_feed(api).poll()
    assert tick.time == NOW
    up, down = tick.snapshots["BTC5M:UP"], tick.snapshots["BTC5M:DOWN"]
    assert (up.price, up.time) == (D("0.12"), BOOK_TIME)  # (0.10 + 0.14) / 2
    assert (down.price, down.time) == (D("0.455"), BOOK_TIME)
    assert [r.arg("token_id") for r in api.calls("/book")] == [UP_TOKEN, DOWN_TOKEN]


def test_missing_book_and_rate_limit_are_recorded_with_backoff(
    venue: tuple[FakeAPI, Venue],
) -> None:
    api, venue_ = venue
    feed = make_feed(api, poll_seconds=5)
    known = feed.poll().snapshots
    venue_.books[UP_TOKEN] = Reply(
        429, {"error": "Too Many Requests"}, headers={"Retry-After": "12"}
    )
    tick = feed.poll()
    assert tick.snapshots == known  # kept with their old times: they go stale
    health = feed.health()[0]
    assert health.last_error == f"book of {UP_TOKEN}: HTTP 429: Too Many Requests"
    assert feed.next_delay == 12
    del venue_.books[UP_TOKEN]
    feed.poll()
    assert health.last_error == (
        f"book of {UP_TOKEN}: HTTP 404: No orderbook exists for the requested token id"
    )
    assert feed.next_delay == 20 and health.consecutive_errors == 2


def test_timeout_and_empty_gamma_answer(venue: tuple[FakeAPI, Venue]) -> None:
    api, venue_ = venue
    feed = make_feed(api, timeout_seconds=0.3)
    venue_.books[DOWN_TOKEN] = Reply(body=BOOK_DOCS, delay=2.0)
    feed.poll()
    assert feed.health()[0].last_error == f"book of {DOWN_TOKEN}: timeout (ReadTimeout)"
    venue_.market = None  # Gamma answers [] for the slug
    feed.poll()
    assert feed.health()[0].last_error == f"market {SLUG}: not found"


def test_malformed_book_is_an_error_not_a_crash(venue: tuple[FakeAPI, Venue]) -> None:
    api, venue_ = venue
    feed = make_feed(api)
    venue_.books[UP_TOKEN] = Reply(body={"bids": "0.5", "asks": []})
    feed.poll()
    assert feed.health()[0].last_error == f"book of {UP_TOKEN}: bids is not a list"
    venue_.books[UP_TOKEN] = Reply(body=[{"price": "0.5"}])
    feed.poll()
    assert feed.health()[0].last_error == f"book of {UP_TOKEN}: not an object"


def test_closed_market_gets_no_new_prices(venue: tuple[FakeAPI, Venue]) -> None:
    api, venue_ = venue
    feed = make_feed(api)
    first = feed.poll().snapshots
    venue_.market = resolved("0.6", "0.4")  # closed, not yet resolved
    calls = len(api.calls("/book"))
    assert feed.poll().snapshots == first and feed.resolutions() == {}
    assert len(api.calls("/book")) == calls  # books are not read for a closed market


def test_resolved_market_is_priced_at_its_payouts(venue: tuple[FakeAPI, Venue]) -> None:
    api, venue_ = venue
    feed = make_feed(api)
    venue_.market = resolved("0", "1")
    tick = feed.poll()
    assert feed.resolutions() == {"BTC5M:UP": D(0), "BTC5M:DOWN": D(1)}
    assert tick.snapshots["BTC5M:UP"].price == 0 and tick.snapshots["BTC5M:DOWN"].price == 1


# -- settlement -------------------------------------------------------------------------------


def test_only_settlements_may_be_priced_zero() -> None:
    wallet = Wallet("a", allowance=D(10), cash=D(10))
    buy = Fill("a", "X:YES", Side.BUY, D(4), D("0.5"), D(0), NOW, "order:1")
    wallet = apply_fill(wallet, buy)
    zero = Fill("a", "X:YES", Side.SELL, D(4), D(0), D(0), NOW, "order:2")
    with pytest.raises(LedgerError, match="price must be positive"):
        apply_fill(wallet, zero)
    (settle,) = settlement_fills(wallet, {"X:YES": D(0)}, NOW)
    settled = apply_fill(wallet, settle)
    assert settled.positions == {} and settled.cash == D(8) and settled.realized_pnl == D(-2)
    with pytest.raises(LedgerError, match=r"within \[0, 1\]"):
        settlement_fills(wallet, {"X:YES": D(2)}, NOW)
    assert settlement_fills(wallet, {"OTHER:YES": D(1)}, NOW) == []


@pytest.mark.asyncio
async def test_settlement_pays_out_and_reconciles(
    venue: tuple[FakeAPI, Venue], tmp_path: Path
) -> None:
    api, venue_ = venue
    feed = make_feed(api)
    store = Store(f"sqlite:///{tmp_path / 'phantomex.db'}")
    kernel = Kernel(store, feed, PaperBroker(), config=KernelConfig(persist_snapshots=True))
    kernel.load()
    risk = RiskProfile(cooldown_seconds=0, daily_loss_limit_pct=None, max_drawdown_pct=None)
    ups = kernel.create_agent(
        AgentSpec(name="ups", brain="rsi", symbols=["BTC5M:UP"], risk=risk, allowance=D(1000))
    )
    downs = kernel.create_agent(
        AgentSpec(name="downs", brain="rsi", symbols=["BTC5M:DOWN"], risk=risk, allowance=D(1000))
    )
    await kernel.step(feed.poll())
    kernel.place(ups.id, Decision(Action.BUY, "BTC5M:UP", quantity=D(500)))
    kernel.place(downs.id, Decision(Action.BUY, "BTC5M:DOWN", quantity=D(400)))
    up_cost = kernel.ledger.wallet(ups.id).positions["BTC5M:UP"].cost
    down_cost = kernel.ledger.wallet(downs.id).positions["BTC5M:DOWN"].cost
    assert up_cost == D(500) * D("0.12") * D("1.001")  # price plus the 10 bps paper fee

    venue_.market = resolved("1", "0")  # Up won
    trades: list[dict[str, Any]] = []
    kernel.bus.subscribe(lambda event: trades.append(event.data) if event.type == "trade" else None)
    tick = feed.poll()
    with kernel.unit():
        await kernel.step(Tick(NOW + timedelta(minutes=1), tick.snapshots))  # settles first
    assert [(t["trade"]["symbol"], t["trade"]["price"], t["trade"]["fee"]) for t in trades] == [
        ("BTC5M:UP", "1", "0"),
        ("BTC5M:DOWN", "0", "0"),
    ]  # paid out at 1 and 0: not sold by the take-profit or stop-loss at the payout price
    up_wallet, down_wallet = kernel.ledger.wallet(ups.id), kernel.ledger.wallet(downs.id)
    assert up_wallet.positions == {} and down_wallet.positions == {}
    assert up_wallet.cash == D(1000) - up_cost + D(500)
    assert up_wallet.realized_pnl == D(500) - up_cost
    assert down_wallet.cash == D(1000) - down_cost and down_wallet.realized_pnl == -down_cost

    with kernel.unit():
        assert settle_resolved(kernel.ledger, feed.resolutions(), tick.time) == []  # once only
    assert kernel.audit() == []  # live and stored wallets rebuild exactly from the history
    rows, _ = store.trades(limit=10)
    settled = {r["symbol"]: r for r in rows if r["side"] == "sell"}
    assert settled["BTC5M:DOWN"]["price"] == D(0)
    assert settled["BTC5M:UP"]["reasoning"].startswith("settlement: BTC5M:UP resolved")

    # a buy of the losing token after resolution waits for a valid price: 0 is none
    rec = kernel.place(downs.id, Decision(Action.BUY, "BTC5M:DOWN", quantity=D(10)))
    assert rec.status == "held" and "price 0 is not a positive finite price" in rec.reason
