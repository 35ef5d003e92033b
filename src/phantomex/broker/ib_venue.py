"""Opening the ``ib-paper`` venue (its link, journal and broker) and reconciling the ledger
with the paper account: the agents' wallets on the venue are added up - cash against the
account's cash, each position against IB's position. Differences are reported, never adjusted."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from phantomex.broker.exchange_reconcile import AssetCheck, VenueReport, ledger_totals
from phantomex.broker.ib_broker import IBBroker
from phantomex.broker.ib_link import shared_link
from phantomex.broker.ib_orders import STATE_KEY, Journal
from phantomex.broker.ib_paper import IBUnavailable
from phantomex.broker.venues import CLIENT_ID_PREFIX, ExchangeSettings, Venue
from phantomex.domain.models import Wallet
from phantomex.domain.money import ZERO

if TYPE_CHECKING:
    from phantomex.store.repo import Store

log = logging.getLogger(__name__)

__all__ = ["is_ib", "open_ib", "reconcile_ib"]


def is_ib(venue: Venue) -> bool:
    return venue.exchange_id == "ib"


def open_ib(venue: Venue, store: Store, settings: ExchangeSettings) -> IBBroker:
    """The venue's broker. IBUnavailable when the account is not a paper account (or ib_async
    is missing); a gateway that is not up yet is only logged: the link connects on first use."""
    link = shared_link(settings.ib)  # the ``ib`` price source may hold it too
    try:
        link.connect()
    except IBUnavailable:
        link.close()
        raise
    except Exception as exc:
        log.warning("%s: IB Gateway not reachable yet (%s); connecting on first use", venue, exc)
    journal = Journal(
        lambda: store.get_state(STATE_KEY), lambda state: store.set_state(STATE_KEY, state)
    )
    return IBBroker(venue, link, settings, journal)


def reconcile_ib(broker: IBBroker, wallets: list[Wallet]) -> VenueReport:
    """Compare the account's cash and positions (asked afresh) with ``wallets``; orders still
    working at IB are listed as open orders."""
    report = VenueReport(broker.venue.name, sorted(w.agent_id for w in wallets))
    try:
        cash, held = broker.link.account()
        view = broker.link.view(refresh=True)
    except Exception as exc:  # a report, not a crash: the error is the finding
        report.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        return report
    ledger = ledger_totals(wallets, broker.quote)
    account = {broker.quote: cash.get(broker.quote, ZERO), **held}
    for asset in sorted(set(ledger) | {a for a, v in account.items() if v != 0}):
        report.assets.append(AssetCheck(asset, ledger.get(asset, ZERO), account.get(asset, ZERO)))
    for ref, state in sorted(view.orders.items()):
        if not state.done:
            report.open_orders.append(
                {
                    "id": str(state.order_id),
                    "client_order_id": ref,
                    "symbol": state.symbol,
                    "side": state.side.lower(),
                    "type": "market",
                    "amount": str(state.remaining),
                    "price": None,
                    "ours": ref.startswith(CLIENT_ID_PREFIX),
                }
            )
    return report
