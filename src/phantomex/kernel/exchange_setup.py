"""Wire exchange trading from the settings and the store: brokers per venue, agents' venues,
start-up reconciliation. ccxt is imported only once a venue is used (it is slow to import)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from phantomex.broker.exchange_reconcile import VenueReport, reconcile_venue
from phantomex.broker.ib_broker import IBBroker
from phantomex.broker.ib_paper import IBUnavailable
from phantomex.broker.ib_venue import is_ib, open_ib, reconcile_ib
from phantomex.broker.paper import PaperBrokerConfig
from phantomex.broker.router import VenueRouter
from phantomex.broker.venues import (
    PAPER,
    STATE_KEY,
    ExchangeSettings,
    VenueBook,
    parse_venue,
    real_money_refusal,
)
from phantomex.domain.models import Wallet
from phantomex.kernel.bus import Event
from phantomex.kernel.events import RiskRaised
from phantomex.secrets import SecretBox

if TYPE_CHECKING:
    from phantomex.kernel.runtime import Kernel
    from phantomex.store.repo import Store

log = logging.getLogger(__name__)

ClientFactory = Callable[..., Any]


def build_router(
    config: PaperBrokerConfig,
    store: Store,
    box: SecretBox,
    settings: ExchangeSettings,
    client_factory: ClientFactory | None = None,
) -> VenueRouter:
    """The broker for the kernel: paper for every agent, plus one exchange broker per venue
    that has keys (and, for real money, permission). Today's exchange notional counts against
    the daily caps after a restart."""
    book = VenueBook.from_state(store.get_state(STATE_KEY))
    router = VenueRouter(config, book, {})
    from phantomex.broker.credentials import venues_with_keys  # SQL: only when trading live

    for name in sorted(set(book.venues.values()) | set(venues_with_keys(store))):
        try:
            open_venue(router, store, box, settings, name, client_factory)
        except Exception as exc:  # e.g. keys that no longer decrypt: the venue can't trade
            log.warning("venue %s cannot trade: %s", name, exc)
            router.refusals[name] = f"cannot open the venue: {exc or type(exc).__name__}"
    _seed_daily_use(router, store, datetime.now(UTC))
    return router


def open_venue(
    router: VenueRouter,
    store: Store,
    box: SecretBox,
    settings: ExchangeSettings,
    name: str,
    client_factory: ClientFactory | None = None,
) -> None:
    """(Re)build the broker of venue ``name``; when it can't trade, record why instead."""
    from phantomex.broker.ccxt_broker import CcxtBroker
    from phantomex.market import ccxt_client

    venue = parse_venue(name)
    if venue is None:
        return
    refusal = real_money_refusal(venue, settings)
    if refusal is None and isinstance(router.brokers.get(venue.name), IBBroker):
        return  # open: its connection (which may feed prices too) and journal stay
    old = router.brokers.pop(venue.name, None)
    if isinstance(old, IBBroker):
        old.link.close()
    if refusal is None and is_ib(venue):
        try:
            router.brokers[venue.name] = open_ib(venue, store, settings)
            router.refusals.pop(venue.name, None)
            return
        except IBUnavailable as exc:
            refusal = str(exc)
    from phantomex.broker.credentials import load_credentials  # SQL: only when trading live

    creds = None if refusal else load_credentials(store, box, venue.name)
    if refusal is None and creds is None:
        refusal = "no API keys stored for it"
    if refusal is None and creds is not None:
        try:
            client = (client_factory or ccxt_client.sync_client)(
                venue.exchange_id,
                sandbox=venue.testnet,
                api_urls=settings.api_urls.get(venue.name),
                api_key=creds.api_key,
                secret=creds.secret,
                timeout_ms=settings.timeout_ms,
            )
        except ValueError as exc:
            refusal = str(exc)
        else:
            router.brokers[venue.name] = CcxtBroker(venue, client, settings)
            router.refusals.pop(venue.name, None)
            return
    assert refusal is not None
    router.refusals[venue.name] = refusal


def set_agent_venue(
    router: VenueRouter,
    store: Store,
    box: SecretBox,
    settings: ExchangeSettings,
    agent_id: str,
    name: str,
    client_factory: ClientFactory | None = None,
) -> str:
    """Put an agent on ``paper`` or an exchange venue (explicitly; ValueError saying why not)."""
    from phantomex.market import ccxt_client

    venue = parse_venue(name)
    if venue is None:
        router.book.venues.pop(agent_id, None)
        store.set_state(STATE_KEY, router.book.to_state())
        return PAPER
    if not is_ib(venue):
        ccxt_client.check_exchange_id(venue.exchange_id)
    refusal = real_money_refusal(venue, settings)
    if refusal:
        raise ValueError(refusal)
    open_venue(router, store, box, settings, venue.name, client_factory)
    if venue.name not in router.brokers:
        raise ValueError(f"venue {venue.name!r}: {router.refusals.get(venue.name)}")
    router.book.venues[agent_id] = venue.name
    store.set_state(STATE_KEY, router.book.to_state())
    return venue.name


def reconcile_all(router: VenueRouter, wallets: dict[str, Wallet]) -> list[VenueReport]:
    """A report per venue in use (or with keys); venues that can't trade report why."""
    by_venue: dict[str, list[Wallet]] = {}
    for agent_id, venue in router.book.venues.items():
        if agent_id in wallets:
            by_venue.setdefault(venue, []).append(wallets[agent_id])
    reports = []
    for name in sorted(set(by_venue) | set(router.brokers)):
        broker = router.brokers.get(name)
        mine = by_venue.get(name, [])
        if broker is None:
            agents = sorted(w.agent_id for w in mine)
            why = router.refusals.get(name, "not available")
            reports.append(VenueReport(name, agents, error=why))
            continue
        if isinstance(broker, IBBroker):
            reports.append(reconcile_ib(broker, mine))
        else:
            reports.append(reconcile_venue(broker, mine))
    return reports


def report_findings(reports: list[VenueReport], record: Callable[[str, str], None]) -> None:
    """Log every finding and pass it to ``record(venue, line)`` (a risk event in the kernel)."""
    for report in reports:
        for line in report.lines():
            log.warning("exchange reconciliation: %s", line)
            record(report.venue, line)


def _seed_daily_use(router: VenueRouter, store: Store, now: datetime) -> None:
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    for agent_id, venue in router.book.venues.items():
        broker = router.brokers.get(venue)
        if broker is None:
            continue
        rows, _ = store.trades(agent_id, limit=1000)
        used = sum((Decimal(r["notional"]) for r in rows if r["time"] >= day_start), Decimal(0))
        if used:
            broker.caps.spend(used, now)


def follow_kill_switch(router: VenueRouter) -> Callable[[Event], None]:
    """A bus subscriber: the global kill switch (a ``kill`` risk event for no single agent)
    cancels every open order on every exchange account. Per-agent kills reach the exchange
    through ``cancel_all(agent_id)``, which the kernel already calls."""

    def on_event(event: Event) -> None:
        data = event.data
        if event.type == "risk" and data.get("kind") == "kill" and data.get("agent_id") is None:
            router.cancel_exchange_orders()

    return on_event


def attach(kernel: Kernel) -> list[VenueReport]:
    """Start-up wiring for a kernel whose broker is a VenueRouter: follow the kill switch and
    reconcile the ledger against the exchanges. Every finding is logged and stored as a
    ``reconcile`` risk event; the ledger is never adjusted."""
    router = kernel.broker
    if not isinstance(router, VenueRouter):
        return []
    kernel.bus.subscribe(follow_kill_switch(router))
    if not router.book.venues:
        return []
    wallets = {a: kernel.ledger.wallet(a) for a in kernel.ledger.agent_ids()}
    reports = reconcile_all(router, wallets)
    now = kernel.clock.now()

    def record(venue: str, line: str) -> None:
        kernel.store.add_risk_event("reconcile", line, now, None, None)
        kernel.bus.emit(RiskRaised(None, "reconcile", None, line), now)

    report_findings(reports, record)
    return reports
