"""Plain domain types shared by every layer. No I/O, no framework imports."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from phantomex.domain.direct_init import direct_init
from phantomex.domain.money import ZERO


class AssetClass(enum.StrEnum):
    CRYPTO = "crypto"
    EQUITY = "equity"
    PREDICTION = "prediction"


class Side(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"


class Action(enum.StrEnum):
    BUY = "buy"
    SELL = "sell"
    HOLD = "hold"


class OrderType(enum.StrEnum):
    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"


class OrderStatus(enum.StrEnum):
    OPEN = "open"
    FILLED = "filled"
    CANCELLED = "cancelled"
    REJECTED = "rejected"


class Mode(enum.StrEnum):
    AUTONOMOUS = "autonomous"
    ADVISORY = "advisory"


class AgentStatus(enum.StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    STOPPED = "stopped"
    ERROR = "error"


class DecisionStatus(enum.StrEnum):
    HELD = "held"
    REJECTED = "rejected"
    PENDING = "pending"
    APPROVED = "approved"
    EXPIRED = "expired"
    EXECUTED = "executed"


# The members read on every tick, decision and trade, bound once: Python 3.11 reads a member
# through its class by way of EnumType.__getattr__'s hook, 5-10x the cost of a global (3.12
# drops the hook).
BUY_SIDE, SELL_SIDE = Side.BUY, Side.SELL
BUY_ACTION, SELL_ACTION, HOLD_ACTION = Action.BUY, Action.SELL, Action.HOLD
MARKET_ORDER, LIMIT_ORDER, STOP_ORDER = OrderType.MARKET, OrderType.LIMIT, OrderType.STOP
ORDER_OPEN, ORDER_FILLED = OrderStatus.OPEN, OrderStatus.FILLED
AUTONOMOUS, ADVISORY = Mode.AUTONOMOUS, Mode.ADVISORY
RUNNING, PAUSED = AgentStatus.RUNNING, AgentStatus.PAUSED


@dataclass(frozen=True, slots=True)
class Instrument:
    """A tradable thing: ``symbol`` is the base asset (``BTC``), priced in ``quote``."""

    symbol: str
    asset_class: AssetClass = AssetClass.CRYPTO
    quote: str = "USD"
    quantity_step: Decimal | None = None  # lot size; None = unrounded fractional quantities
    venue: str | None = None  # where it trades: "NASDAQ", "NYSE", "polymarket", ...
    calendar: str | None = None  # exchange-calendars name ("XNYS"); None = around the clock


@direct_init  # built on every visited tick
@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV candle. ``time`` is its open time (UTC); it closes at ``time + period``."""

    symbol: str
    time: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: Decimal


@direct_init  # built on every visited tick
@dataclass(frozen=True, slots=True)
class Snapshot:
    """The latest known price of a symbol at ``time`` with its 24-hour change in percent."""

    symbol: str
    time: datetime
    price: Decimal
    change_24h_pct: Decimal | None = None


@direct_init  # built on every visited tick
@dataclass(frozen=True, slots=True)
class Tick:
    """Everything the market says at one moment of the kernel's clock.

    ``time`` is the clock: for bar feeds the close time of the bars in ``bars``. ``snapshots``
    holds the latest price per symbol (its ``time`` tells how fresh it is)."""

    time: datetime
    snapshots: dict[str, Snapshot]
    bars: dict[str, Bar] = field(default_factory=dict)


@direct_init  # built on every decision
@dataclass(frozen=True, slots=True)
class Decision:
    """What a brain wants to do. ``quantity`` or ``notional`` sizes a buy/sell; both None = let
    risk size it (all-in buy / all-out sell)."""

    action: Action
    symbol: str | None = None
    quantity: Decimal | None = None
    notional: Decimal | None = None
    reasoning: str = ""
    confidence: float | None = None
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    order_type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None  # the limit of a limit order
    stop_price: Decimal | None = None  # the trigger of a stop order
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def hold(cls, reasoning: str, **meta: Any) -> Decision:
        return cls(action=Action.HOLD, reasoning=reasoning, meta=dict(meta))


@direct_init  # built on every trade
@dataclass(frozen=True, slots=True)
class Order:
    """An instruction to the broker. ``idempotency_key`` is unique forever: it never fills twice."""

    id: str
    agent_id: str
    symbol: str
    side: Side
    quantity: Decimal
    idempotency_key: str
    type: OrderType = OrderType.MARKET
    limit_price: Decimal | None = None
    stop_price: Decimal | None = None
    decision_id: str | None = None
    reason: str = ""
    created_at: datetime | None = None
    whole: bool = False  # size at fill time: a buy spends all the cash, a sell the whole holding


@direct_init  # built on every trade
@dataclass(frozen=True, slots=True)
class Fill:
    """An executed order: ``price`` already includes slippage; ``fee`` is in the quote currency."""

    agent_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    fee: Decimal
    time: datetime
    idempotency_key: str
    order_id: str | None = None
    decision_id: str | None = None
    reasoning: str = ""

    @property
    def notional(self) -> Decimal:
        return self.quantity * self.price


@dataclass(frozen=True, slots=True)
class Deposit:
    agent_id: str
    amount: Decimal
    time: datetime
    idempotency_key: str
    initial: bool = False  # the allowance the wallet was opened with


@dataclass(slots=True)
class Position:
    """Holdings of one symbol. ``cost`` is the total cost basis (buy notional plus buy fees).

    Realized + unrealized P&L adds up to equity minus funding up to Decimal's 28th significant
    digit (a partial sell's share of the basis is a division); the reconciliation is exact."""

    symbol: str
    quantity: Decimal = ZERO
    cost: Decimal = ZERO
    opened_at: datetime | None = None

    @property
    def avg_cost(self) -> Decimal:
        return self.cost / self.quantity if self.quantity else ZERO

    def value(self, mark: Decimal) -> Decimal:
        return self.quantity * mark

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        return self.quantity * mark - self.cost


@dataclass(slots=True)
class Wallet:
    """An agent's paper account: ``allowance`` is the starting stake, ``deposits`` the rest."""

    agent_id: str
    allowance: Decimal = ZERO
    cash: Decimal = ZERO
    deposits: Decimal = ZERO
    realized_pnl: Decimal = ZERO
    fees_paid: Decimal = ZERO
    positions: dict[str, Position] = field(default_factory=dict)
    version: int = 0  # number of ledger entries applied; entries are stored with their version

    def copy(self) -> Wallet:
        return Wallet(  # positional: a copy is made on every fill
            self.agent_id,
            self.allowance,
            self.cash,
            self.deposits,
            self.realized_pnl,
            self.fees_paid,
            {
                s: Position(p.symbol, p.quantity, p.cost, p.opened_at)
                for s, p in self.positions.items()
            },
            self.version,
        )

    def quantity(self, symbol: str) -> Decimal:
        pos = self.positions.get(symbol)
        return pos.quantity if pos else ZERO

    @property
    def funding(self) -> Decimal:
        """Everything put into the wallet: the allowance plus later deposits."""
        return self.allowance + self.deposits

    def holdings_value(self, marks: dict[str, Decimal]) -> Decimal:
        """Every holding at its mark (at cost basis when no mark is known)."""
        total = ZERO  # as sum(..., ZERO) adds, without its generator (marked on every tick)
        for s, p in self.positions.items():
            total += p.quantity * marks[s] if s in marks else p.cost
        return total

    def equity(self, marks: dict[str, Decimal]) -> Decimal:
        return self.cash + self.holdings_value(marks)

    def unrealized_pnl(self, marks: dict[str, Decimal]) -> Decimal:
        return self.holdings_value(marks) - sum((p.cost for p in self.positions.values()), ZERO)
