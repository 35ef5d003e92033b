"""The ``[exchange.ib]`` settings table: where IB Gateway / TWS listens, how long to wait, and
what the ``ib`` price source reads on the same connection."""

from __future__ import annotations

from typing import Literal

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
    symbols: list[str] = Field(
        default_factory=list, description="Stocks the ``ib`` price source feeds (e.g. ['AAPL'])."
    )
    market_data: Literal["delayed", "realtime"] = Field(
        "delayed",
        description="Ask IB for free delayed data (type 3/4) or the account's real-time data.",
    )
    poll_seconds: float = Field(60.0, ge=0, description="How often the ``ib`` source ticks.")
