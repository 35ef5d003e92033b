"""Shared set-up for tests on the IB Gateway stand-in: a driven clock, settings, a broker."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from phantomex.broker.ib_broker import IBBroker
from phantomex.broker.ib_settings import IBSettings
from phantomex.broker.ib_venue import open_ib
from phantomex.broker.venues import ExchangeSettings, parse_venue
from phantomex.devtools.ib_gateway import IBGateway
from phantomex.store.repo import Store

D = Decimal
#: A Wednesday, 10:00 in New York (EST): NYSE is open.
OPEN = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
#: The same Wednesday at 17:00 New York: closed until Thursday 09:30.
CLOSED = datetime(2026, 12, 2, 22, 0, tzinfo=UTC)


@dataclass
class Clock:
    """The one clock of a test: the gateway's, the feed's and the kernel's."""

    now: datetime = OPEN

    def __call__(self) -> datetime:
        return self.now


def ib_settings(gw: IBGateway, **kw: object) -> ExchangeSettings:
    """Exchange settings pointing the ib-paper venue at ``gw`` (caps fit a few AAPL shares)."""
    ib = IBSettings(port=gw.port, client_id=17, fill_wait_s=2.0, connect_timeout_s=5.0)
    base: dict[str, object] = {
        "order_cap_usd": D(5000),
        "daily_cap_usd": D(50000),
        "ib": ib,
    }
    base.update(kw)
    return ExchangeSettings.model_validate(base)


def gateway(path: Path, clock: Clock, **kw: object) -> IBGateway:
    return IBGateway(path, clock=clock, **kw).start()


def broker(store: Store, settings: ExchangeSettings) -> IBBroker:
    venue = parse_venue("ib-paper")
    assert venue is not None
    return open_ib(venue, store, settings)
