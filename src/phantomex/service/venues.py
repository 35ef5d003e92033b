"""Exchange venues as a front end sees them: their keys (write-only), an agent's venue, the
ledger reconciled against each exchange account, and cancelling exchange orders. Commands take
the kernel's lock themselves, as in :mod:`phantomex.service.commands`."""

from __future__ import annotations

from typing import Any

from phantomex.broker.credentials import (
    Credentials,
    delete_credentials,
    save_credentials,
    venues_with_keys,
)
from phantomex.broker.router import VenueRouter
from phantomex.broker.venues import ExchangeSettings, parse_venue
from phantomex.kernel import exchange_setup
from phantomex.kernel.runtime import Kernel, KernelError, NotFound
from phantomex.secrets import SecretBox
from phantomex.store.repo import Store


class Venues:
    """The exchange venues of one server: its kernel, its SQL store (where the keys are kept,
    encrypted with ``box``) and its exchange settings."""

    def __init__(
        self, kernel: Kernel, store: Store, box: SecretBox, settings: ExchangeSettings
    ) -> None:
        self._k, self._store, self._box, self._settings = kernel, store, box, settings

    def router(self) -> VenueRouter:
        """The venue router (KernelError when exchange trading is not set up)."""
        broker = self._k.broker
        if not isinstance(broker, VenueRouter):
            raise KernelError("exchange trading is not set up on this server", code="not_found")
        return broker

    # -- queries ----------------------------------------------------------------------------------
    def venues(self) -> list[dict[str, Any]]:
        """Venues with keys or agents: whether they can trade (or why not) and their agents."""
        vr = self.router()
        keyed = set(venues_with_keys(self._store))
        names = set(vr.book.venues.values()) | keyed | set(vr.brokers)
        live = {a.id for a in self._k.agent_list()}
        out = []
        for name in sorted(names):
            venue = parse_venue(name)
            out.append(
                {
                    "venue": name,
                    "exchange": venue.exchange_id if venue else None,
                    "testnet": venue.testnet if venue else None,
                    "has_keys": name in keyed,
                    "available": name in vr.brokers,
                    "refusal": vr.refusals.get(name),
                    "agents": sorted(
                        a for a, v in vr.book.venues.items() if v == name and a in live
                    ),
                }
            )
        return out

    def reconcile(self) -> list[dict[str, Any]]:
        """The ledger against each exchange account (balances, open orders); nothing changes."""
        reports = exchange_setup.reconcile_all(self.router(), self._k.wallets())
        return [r.as_dict() for r in reports]

    # -- commands ---------------------------------------------------------------------------------
    async def put_keys(self, venue: str, creds: Credentials) -> bool:
        """Store a venue's API key and secret, encrypted; returns whether the venue can trade."""
        vr = self.router()
        async with self._k.exclusive():
            try:
                save_credentials(self._store, self._box, venue, creds)
            except ValueError as exc:
                raise KernelError(str(exc), field="api_key") from exc
            exchange_setup.open_venue(vr, self._store, self._box, self._settings, venue)
        return venue in vr.brokers

    async def delete_keys(self, venue: str) -> None:
        vr = self.router()
        async with self._k.exclusive():
            if not delete_credentials(self._store, venue):
                raise NotFound("keys of venue", venue)
            vr.brokers.pop(venue, None)
            vr.refusals[venue] = "no API keys stored for it"

    async def set_agent_venue(self, agent_id: str, venue: str) -> str:
        """Put an agent on paper or an exchange venue; returns the venue's name."""
        vr = self.router()
        async with self._k.exclusive():
            self._k.get(agent_id)
            try:
                return exchange_setup.set_agent_venue(
                    vr, self._store, self._box, self._settings, agent_id, venue
                )
            except ValueError as exc:
                raise KernelError(str(exc), field="venue") from exc

    def cancel_exchange_orders(self) -> dict[str, list[str]]:
        """Cancel every open order on every exchange account (also done by the global kill)."""
        return self.router().cancel_exchange_orders()
