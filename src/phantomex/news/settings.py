"""The ``[news]`` settings: the feeds a user chose, CryptoPanic (optional, with a key) and the
limits every fetch keeps to."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from phantomex.domain.inputs import HttpUrl, Ident

__all__ = ["CRYPTOPANIC_URL", "CryptoPanicSettings", "FeedSettings", "NewsSettings"]

CRYPTOPANIC_URL = "https://cryptopanic.com/api/developer/v2"


def _ticker(text: str) -> str:
    ticker = text.strip().upper()
    if not (ticker.isascii() and ticker.isalnum()):
        raise ValueError(f"not a ticker: {text!r}")
    return ticker


#: A ticker: ASCII letters and digits, upper-cased.
Ticker = Annotated[str, AfterValidator(_ticker)]


class FeedSettings(BaseModel):
    """One RSS 2.0 or Atom feed (a ``[[news.feeds]]`` table)."""

    model_config = ConfigDict(extra="forbid")

    name: Ident = Field(description="Short name, shown as the items' source.")
    url: HttpUrl = Field(description="The feed's address.")
    symbols: list[Ticker] = Field(
        default_factory=list, description="Tickers every item of this feed concerns."
    )


class CryptoPanicSettings(BaseModel):
    """CryptoPanic's posts API (``[news.cryptopanic]``); off without a token."""

    model_config = ConfigDict(extra="forbid")

    token: SecretStr | None = Field(None, description="Your CryptoPanic API token.")
    base_url: HttpUrl = Field(CRYPTOPANIC_URL, description="API root (a local server in tests).")
    currencies: list[Ticker] = Field(
        default_factory=list, description="Only posts about these tickers (default: all)."
    )
    kind: str = Field("news", pattern="^(news|media|all)$")


class NewsSettings(BaseModel):
    """News sources and the limits of a fetch (the ``[news]`` TOML table)."""

    model_config = ConfigDict(extra="forbid")

    feeds: list[FeedSettings] = Field(default_factory=list, description="RSS/Atom feeds.")
    cryptopanic: CryptoPanicSettings = Field(default_factory=CryptoPanicSettings)
    keywords: dict[Ticker, list[str]] = Field(
        default_factory=dict,
        description='Words that tag an item with a ticker, e.g. {BTC = ["bitcoin"]} (the '
        "ticker itself always counts).",
    )
    poll_seconds: float = Field(
        900.0,
        ge=0,
        description="The server reads every source this often (0: never; "
        "`phantomex news fetch` reads them once).",
    )
    timeout_seconds: float = Field(15.0, gt=0, le=300, description="Per request.")
    max_bytes: int = Field(
        5_000_000, ge=10_000, le=100_000_000, description="Largest answer read from a source."
    )
    max_items: int = Field(200, ge=1, le=10_000, description="Items kept per fetch of a source.")
