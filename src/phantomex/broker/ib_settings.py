"""The ``[exchange.ib]`` settings table: where IB Gateway / TWS listens, and how long to wait."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["IB_PAPER", "IBSettings"]

#: The venue name of an Interactive Brokers paper account.
IB_PAPER = "ib-paper"


class IBSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="IB Gateway / TWS host.")
    port: int = Field(4002, ge=1, le=65535, description="API port (Gateway paper 4002, TWS 7497).")
    client_id: int = Field(17, ge=0, description="API client id PhantomEx connects with.")
    connect_timeout_s: float = Field(10.0, gt=0, description="Handshake and start-up sync limit.")
    fill_wait_s: float = Field(
        5.0, ge=0, description="How long an order waits for its fills before it rests."
    )
    calendar: str = Field("XNYS", description="Exchange calendar of the market hours (US stocks).")
    quote: str = Field("USD", description="The account currency wallets' cash stands for.")
    max_price_age_s: int = Field(
        1200, ge=1, description="Refuse orders on a price older than this (delayed data: 15 min)."
    )
