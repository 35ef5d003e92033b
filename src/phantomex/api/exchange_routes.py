"""Exchange venues: API keys (write-only), an agent's venue, reconciliation, cancelling orders."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from phantomex.api.routes import K
from phantomex.api.schemas.exchanges import (
    AgentVenue,
    CancelledOrders,
    KeysDeleted,
    KeysStored,
    VenueReconciliation,
    VenueState,
)
from phantomex.api.schemas.wire import RENDER
from phantomex.broker.credentials import (
    Credentials,
    delete_credentials,
    save_credentials,
    venues_with_keys,
)
from phantomex.broker.router import VenueRouter
from phantomex.broker.venues import ExchangeSettings, parse_venue
from phantomex.domain.inputs import Ident
from phantomex.kernel import exchange_setup
from phantomex.kernel.runtime import Kernel, KernelError, NotFound
from phantomex.store.repo import Store

router = APIRouter(tags=["exchange"], default_response_class=RENDER)
Json = dict[str, Any]


class KeysIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(min_length=1, max_length=512)
    secret: SecretStr = Field(min_length=1, max_length=512)


class VenueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    venue: Ident = Field(description="paper, <exchange>-testnet or <exchange>.")


def _venues(k: Kernel) -> VenueRouter:
    if not isinstance(k.broker, VenueRouter):
        raise KernelError("exchange trading is not set up on this server", code="not_found")
    return k.broker


def _settings(request: Request) -> ExchangeSettings:
    settings: ExchangeSettings = request.app.state.settings.exchange
    return settings


def _exchange_venue(name: str) -> str:
    from phantomex.market import ccxt_client  # ccxt is slow to import: only when used

    venue = parse_venue(name)
    if venue is None:
        raise KernelError("paper needs no keys: name an exchange venue", field="venue")
    try:
        ccxt_client.check_exchange_id(venue.exchange_id)
    except ValueError as exc:
        raise KernelError(str(exc), field="venue") from exc
    return venue.name


def _sql(k: Kernel) -> Store:
    """The server's store (a server's kernel runs on SQL; only backtests run in memory)."""
    assert isinstance(k.store, Store)
    return k.store


@router.get("/api/exchange/venues", response_model=list[VenueState])
def venues(k: K) -> list[Json]:
    """Venues with keys or agents: whether they can trade (or why not) and their agents.
    Keys are never returned."""
    vr = _venues(k)
    names = set(vr.book.venues.values()) | set(venues_with_keys(_sql(k))) | set(vr.brokers)
    keyed = set(venues_with_keys(_sql(k)))
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
                    a for a, v in vr.book.venues.items() if v == name and a in k.agents
                ),
            }
        )
    return out


@router.put("/api/exchange/keys/{venue}", response_model=KeysStored)
async def put_keys(venue: Ident, body: KeysIn, k: K, request: Request) -> Json:
    """Store a venue's API key and secret, encrypted; they are never returned."""
    name = _exchange_venue(venue)
    vr = _venues(k)
    settings = _settings(request)
    creds = Credentials(body.api_key.get_secret_value(), body.secret.get_secret_value())
    async with k.lock:
        try:
            save_credentials(_sql(k), request.app.state.secrets, name, creds)
        except ValueError as exc:
            raise KernelError(str(exc), field="api_key") from exc
        exchange_setup.open_venue(vr, _sql(k), request.app.state.secrets, settings, name)
    return {"venue": name, "has_keys": True, "available": name in vr.brokers}


@router.delete("/api/exchange/keys/{venue}", response_model=KeysDeleted)
async def delete_keys(venue: Ident, k: K) -> Json:
    name = _exchange_venue(venue)
    vr = _venues(k)
    async with k.lock:
        if not delete_credentials(_sql(k), name):
            raise NotFound("keys of venue", name)
        vr.brokers.pop(name, None)
        vr.refusals[name] = "no API keys stored for it"
    return {"venue": name, "has_keys": False}


@router.put("/api/agents/{agent_id}/venue", response_model=AgentVenue)
async def set_venue(agent_id: Ident, body: VenueIn, k: K, request: Request) -> Json:
    """Put an agent on paper or an exchange venue; real-money venues need allow_real_money."""
    vr = _venues(k)
    async with k.lock:
        k.get(agent_id)
        try:
            venue = exchange_setup.set_agent_venue(
                vr, _sql(k), request.app.state.secrets, _settings(request), agent_id, body.venue
            )
        except ValueError as exc:
            raise KernelError(str(exc), field="venue") from exc
    return {"agent_id": agent_id, "venue": venue}


@router.get("/api/exchange/reconcile", response_model=list[VenueReconciliation])
def reconcile(k: K) -> list[Json]:
    """The ledger against each exchange account (balances, open orders); nothing is adjusted."""
    vr = _venues(k)
    wallets = {a: k.ledger.wallet(a) for a in k.ledger.agent_ids()}
    return [r.as_dict() for r in exchange_setup.reconcile_all(vr, wallets)]


@router.post("/api/exchange/cancel-open-orders", response_model=CancelledOrders)
def cancel_open_orders(k: K) -> Json:
    """Cancel every open order on every exchange account (also done by the global kill)."""
    return {"cancelled": _venues(k).cancel_exchange_orders()}
