"""Exchange venues: API keys (write-only), an agent's venue, reconciliation, cancelling orders."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from phantomex.api.deps import service
from phantomex.api.schemas.exchanges import (
    AgentVenue,
    CancelledOrders,
    KeysDeleted,
    KeysStored,
    VenueReconciliation,
    VenueState,
)
from phantomex.api.schemas.wire import RENDER
from phantomex.broker.credentials import Credentials
from phantomex.broker.venues import parse_venue
from phantomex.domain.inputs import Ident
from phantomex.kernel.runtime import KernelError
from phantomex.service import Venues

router = APIRouter(tags=["exchange"], default_response_class=RENDER)
Json = dict[str, Any]


class KeysIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(min_length=1, max_length=512)
    secret: SecretStr = Field(min_length=1, max_length=512)


class VenueIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    venue: Ident = Field(description="paper, <exchange>-testnet or <exchange>.")


def _venues(request: Request) -> Venues:
    return service(request).venues()


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


@router.get("/api/exchange/venues", response_model=list[VenueState])
def venues(request: Request) -> list[Json]:
    """Venues with keys or agents: whether they can trade (or why not) and their agents.
    Keys are never returned."""
    return _venues(request).venues()


@router.put("/api/exchange/keys/{venue}", response_model=KeysStored)
async def put_keys(venue: Ident, body: KeysIn, request: Request) -> Json:
    """Store a venue's API key and secret, encrypted; they are never returned."""
    name = _exchange_venue(venue)
    creds = Credentials(body.api_key.get_secret_value(), body.secret.get_secret_value())
    available = await _venues(request).put_keys(name, creds)
    return {"venue": name, "has_keys": True, "available": available}


@router.delete("/api/exchange/keys/{venue}", response_model=KeysDeleted)
async def delete_keys(venue: Ident, request: Request) -> Json:
    name = _exchange_venue(venue)
    await _venues(request).delete_keys(name)
    return {"venue": name, "has_keys": False}


@router.put("/api/agents/{agent_id}/venue", response_model=AgentVenue)
async def set_venue(agent_id: Ident, body: VenueIn, request: Request) -> Json:
    """Put an agent on paper or an exchange venue; real-money venues need allow_real_money."""
    venue = await _venues(request).set_agent_venue(agent_id, body.venue)
    return {"agent_id": agent_id, "venue": venue}


@router.get("/api/exchange/reconcile", response_model=list[VenueReconciliation])
def reconcile(request: Request) -> list[Json]:
    """The ledger against each exchange account (balances, open orders); nothing is adjusted."""
    return _venues(request).reconcile()


@router.post("/api/exchange/cancel-open-orders", response_model=CancelledOrders)
def cancel_open_orders(request: Request) -> Json:
    """Cancel every open order on every exchange account (also done by the global kill)."""
    return {"cancelled": _venues(request).cancel_exchange_orders()}
