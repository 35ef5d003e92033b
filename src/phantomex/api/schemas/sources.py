"""``GET /api/sources``: each market source's health and the age of its prices."""

from __future__ import annotations

from pydantic import BaseModel, Field

from phantomex.api.schemas.wire import RESPONSE


class SuspectPrice(BaseModel):
    """Why the price guard holds a symbol's price as suspect."""

    model_config = RESPONSE

    since: str = Field(description="ISO 8601.")
    reason: str
    last_accepted: str | None = Field(description="A decimal as text.")
    price: str | None = Field(description="The suspect price, a decimal as text.")
    confirmations: int
    needed: int


class PriceAge(BaseModel):
    model_config = RESPONSE

    price: str | None = Field(description="The last accepted price, a decimal as text.")
    time: str | None = Field(description="ISO 8601.")
    age_seconds: float | None = Field(description="On the kernel's clock.")
    stale: bool
    suspect: bool
    suspect_detail: SuspectPrice | None


class SourceState(BaseModel):
    model_config = RESPONSE

    source: str
    last_update: str | None = Field(description="ISO 8601 (wall clock).")
    age_seconds: float | None
    stale: bool
    stale_after_seconds: float
    errors: int
    consecutive_errors: int
    last_error: str | None
    last_error_at: str | None
    symbols: list[str]
    prices: dict[str, PriceAge] = Field(description="By symbol.")


class SourcesReport(BaseModel):
    model_config = RESPONSE

    sources: list[SourceState]
