"""Where an agent's orders go, and the gates in front of real exchanges.

An agent trades on paper unless it is explicitly set to an exchange venue: ``<exchange>-testnet``
(the exchange's sandbox, e.g. ``binance-testnet``) or ``<exchange>`` (real money). Real money
also needs ``allow_real_money`` in the server settings. Every exchange order must fit a
per-order and a daily notional cap; an order over a cap is refused, never resized."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from phantomex.broker.ib_settings import IB_PAPER, IBSettings
from phantomex.domain.inputs import HttpUrl

PAPER = "paper"
#: Client order ids PhantomEx sends start with this (then 8 characters of the agent's id).
CLIENT_ID_PREFIX = "px"
TESTNET_SUFFIX = "-testnet"
STATE_KEY = "exchange_venues"


class ExchangeSettings(BaseModel):
    """The ``[exchange]`` table of the settings file."""

    model_config = ConfigDict(extra="forbid")

    allow_real_money: bool = Field(
        False, description="Let agents trade on real-money venues (never the default)."
    )
    order_cap_usd: Decimal = Field(
        Decimal(20), gt=0, description="Largest notional of one exchange order (quote units)."
    )
    daily_cap_usd: Decimal = Field(
        Decimal(100), gt=0, description="Largest total notional of exchange orders per UTC day."
    )
    quote: str = Field("USDT", description="The quote currency wallets' cash stands for.")
    timeout_ms: int = Field(10_000, ge=100, description="Per-request timeout.")
    max_price_age_s: int = Field(
        300, ge=1, description="Refuse to send an order priced from a quote older than this."
    )
    api_urls: dict[str, dict[str, HttpUrl]] = Field(
        default_factory=dict,
        description="Per-venue overrides of ccxt's urls['api'] entries (a proxy, a test server).",
    )
    ib: IBSettings = Field(
        default_factory=IBSettings, description="Interactive Brokers (the ib-paper venue)."
    )


@dataclass(frozen=True, slots=True)
class Venue:
    name: str  # binance-testnet
    exchange_id: str  # binance
    testnet: bool


def agent_prefix(agent_id: str) -> str:
    """The start of every client order id sent for this agent."""
    return f"{CLIENT_ID_PREFIX}{agent_id[:8]}"


def parse_venue(name: str) -> Venue | None:
    """``paper`` → None; ``binance-testnet`` → the binance sandbox; ``binance`` → real money;
    ``ib-paper`` → an Interactive Brokers paper account (``ib`` would be real money)."""
    name = name.strip().lower()
    if not name or name == PAPER:
        return None
    if name == IB_PAPER:  # an IB paper account: no real money (the account is checked, DU…)
        return Venue(name, "ib", True)
    if name.endswith(TESTNET_SUFFIX):
        return Venue(name, name.removesuffix(TESTNET_SUFFIX), True)
    return Venue(name, name, False)


def real_money_refusal(venue: Venue, settings: ExchangeSettings) -> str | None:
    """Why ``venue`` may not trade, or None."""
    if venue.testnet or settings.allow_real_money:
        return None
    return (
        f"venue {venue.name!r} trades real money, which is off: set allow_real_money = true in "
        f"the [exchange] settings (or use {venue.exchange_id}{TESTNET_SUFFIX})"
    )


@dataclass
class NotionalCaps:
    """Per-order and per-UTC-day notional caps for one venue (refuse, never resize)."""

    order_cap: Decimal
    daily_cap: Decimal
    day: date | None = None
    used: Decimal = Decimal(0)

    def refusal(self, notional: Decimal, now: datetime) -> str | None:
        self._roll(now)
        if notional > self.order_cap:
            return f"order notional {notional:.2f} is over the per-order cap {self.order_cap}"
        if self.used + notional > self.daily_cap:
            return (
                f"order notional {notional:.2f} would take today's exchange total to "
                f"{self.used + notional:.2f}, over the daily cap {self.daily_cap}"
            )
        return None

    def spend(self, notional: Decimal, now: datetime) -> None:
        self._roll(now)
        self.used += notional

    def _roll(self, now: datetime) -> None:
        if self.day != now.date():
            self.day, self.used = now.date(), Decimal(0)


@dataclass
class VenueBook:
    """Each agent's venue (absent: paper), kept in the store's state under ``exchange_venues``."""

    venues: dict[str, str] = field(default_factory=dict)

    def venue_of(self, agent_id: str) -> Venue | None:
        return parse_venue(self.venues.get(agent_id, PAPER))

    def to_state(self) -> dict[str, dict[str, str]]:
        return {"agents": dict(self.venues)}

    @classmethod
    def from_state(cls, state: dict[str, object] | None) -> VenueBook:
        agents = (state or {}).get("agents")
        return cls({str(k): str(v) for k, v in agents.items()} if isinstance(agents, dict) else {})
