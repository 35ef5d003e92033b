"""Risk profiles: the limits that stand between every decision and the wallet."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from phantomex.domain.inputs import Number


class RiskProfile(BaseModel):
    """Per-agent limits. Percentages are of the agent's current equity; None disables a rule."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_allocation_pct: Number = Field(
        Decimal(25),
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="Largest buy, as % of equity (a buy without a size uses this much).",
    )
    max_position_pct: Number = Field(
        Decimal(50),
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="Largest holding of one symbol, as % of equity.",
    )
    stop_loss_pct: Number | None = Field(
        Decimal(5),
        gt=0,
        lt=100,
        allow_inf_nan=False,
        description="Close a position this % below its average cost.",
    )
    take_profit_pct: Number | None = Field(
        Decimal(10),
        gt=0,
        allow_inf_nan=False,
        description="Close a position this % above its average cost.",
    )
    max_hold_minutes: int | None = Field(
        None, gt=0, description="Close a position held longer than this."
    )
    daily_loss_limit_pct: Number | None = Field(
        Decimal(5),
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="Pause the agent until the next UTC day after losing this % of the "
        "day's start equity.",
    )
    max_drawdown_pct: Number | None = Field(
        Decimal(20),
        gt=0,
        le=100,
        allow_inf_nan=False,
        description="Close every position and stop the agent this % below its peak equity.",
    )
    cooldown_seconds: int = Field(60, ge=0, description="Minimum time between two trades.")
    max_price_age_seconds: int = Field(
        300, gt=0, description="Never trade on a price older than this."
    )
    min_order_notional: Number = Field(
        Decimal(1), ge=0, allow_inf_nan=False, description="Smallest order worth sending, in USD."
    )
    resize_to_fit: StrictBool = Field(
        True, description="Shrink an order to the limits and the cash instead of rejecting it."
    )


@dataclass(slots=True)
class RiskState:
    """What the risk engine remembers about one agent between ticks (persisted with the agent)."""

    peak_equity: Decimal | None = None
    day: date | None = None
    day_start_equity: Decimal | None = None
    last_trade_at: datetime | None = None
    paused_until: datetime | None = None
    #: Forced exits waiting for a tradable price: symbol -> (kind, quantity to sell).
    pending_exits: dict[str, tuple[str, Decimal]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "peak_equity": _s(self.peak_equity),
            "day": self.day.isoformat() if self.day else None,
            "day_start_equity": _s(self.day_start_equity),
            "last_trade_at": self.last_trade_at.isoformat() if self.last_trade_at else None,
            "paused_until": self.paused_until.isoformat() if self.paused_until else None,
            "pending_exits": {
                sym: {"kind": kind, "quantity": str(qty)}
                for sym, (kind, qty) in self.pending_exits.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> RiskState:
        data = data or {}

        def dec(key: str) -> Decimal | None:
            v = data.get(key)
            return Decimal(v) if v is not None else None

        def ts(key: str) -> datetime | None:
            v = data.get(key)
            return datetime.fromisoformat(v) if v else None

        day = data.get("day")
        pending = data.get("pending_exits") or {}
        return cls(
            peak_equity=dec("peak_equity"),
            day=date.fromisoformat(day) if day else None,
            day_start_equity=dec("day_start_equity"),
            last_trade_at=ts("last_trade_at"),
            paused_until=ts("paused_until"),
            pending_exits={
                sym: (exit_["kind"], Decimal(exit_["quantity"])) for sym, exit_ in pending.items()
            },
        )


def _s(value: Decimal | None) -> str | None:
    return str(value) if value is not None else None


def exit_due(profile: RiskProfile, avg_cost: Decimal, price: Decimal) -> tuple[str, Decimal] | None:
    """The stop-loss or take-profit exit a position bought at ``avg_cost`` hits at ``price``
    (``"stop_loss"`` or ``"take_profit"``, with the change from the average cost in %), or
    None. The one rule the risk engine applies and event skipping plans for (exact, Decimal)."""
    change = (price - avg_cost) / avg_cost * 100 if avg_cost > 0 else Decimal(0)
    if profile.stop_loss_pct is not None and change <= -profile.stop_loss_pct:
        return "stop_loss", change
    if profile.take_profit_pct is not None and change >= profile.take_profit_pct:
        return "take_profit", change
    return None


def exit_levels(profile: RiskProfile, avg_cost: Decimal) -> tuple[Decimal | None, Decimal | None]:
    """The prices at or below which :func:`exit_due` sees the stop-loss, and at or above which
    it sees the take-profit, of a position bought at ``avg_cost`` > 0 (None: no such rule)."""
    stop = profile.stop_loss_pct
    take = profile.take_profit_pct
    return (
        avg_cost * (1 - stop / 100) if stop is not None else None,
        avg_cost * (1 + take / 100) if take is not None else None,
    )
