"""Settings of the ``ccxt:<exchange>`` price source (the ``[ccxt]`` table); kept apart from the
feed so reading the configuration does not import ccxt."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CcxtSourceSettings(BaseModel):
    symbols: list[str] = Field(
        default_factory=lambda: ["BTC", "ETH", "SOL", "DOGE", "XRP"],
        description="Base symbols (BTC) or pairs (BTC/USDT) to follow.",
    )
    quote: str = Field("USDT", description="Quote currency of bare symbols.")
    timeframe: str = Field("1m", description="Candle size of the bars.")
    poll_seconds: float = Field(10.0, gt=0, description="Seconds between polls.")
    use_websocket: bool | None = Field(
        None, description="watch_tickers through ccxt.pro (None: where the exchange has it)."
    )
    warmup_bars: int = Field(60, ge=0, description="Candles of history fetched at start.")
