"""Exchange venues: ``/api/exchange/*`` and ``PUT /api/agents/{agent_id}/venue``."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from phantomex.api.schemas.wire import RESPONSE


class VenueState(BaseModel):
    model_config = RESPONSE

    venue: str
    exchange: str | None = Field(description="The ccxt exchange id; None for paper.")
    testnet: bool | None
    has_keys: bool
    available: bool = Field(description="Whether orders can be sent there now.")
    refusal: str | None = Field(description="Why it is not available.")
    agents: list[str]


class KeysStored(BaseModel):
    model_config = RESPONSE

    venue: str
    has_keys: bool
    available: bool


class KeysDeleted(BaseModel):
    model_config = RESPONSE

    venue: str
    has_keys: bool


class AgentVenue(BaseModel):
    model_config = RESPONSE

    agent_id: str
    venue: str


class AssetCheck(BaseModel):
    model_config = RESPONSE

    asset: str
    ledger: str = Field(description="A decimal as text.")
    exchange: str = Field(description="A decimal as text.")
    difference: str = Field(description="exchange - ledger, a decimal as text.")
    status: Literal["ok", "short", "surplus"]


class VenueReconciliation(BaseModel):
    model_config = RESPONSE

    venue: str
    agents: list[str]
    clean: bool
    error: str | None
    assets: list[AssetCheck]
    open_orders: list[dict[str, Any]] = Field(description="Exchange orders not in the ledger.")
    findings: list[str] = Field(description="One readable line per difference.")


class CancelledOrders(BaseModel):
    model_config = RESPONSE

    cancelled: dict[str, list[str]] = Field(description="Exchange order ids, per venue.")
