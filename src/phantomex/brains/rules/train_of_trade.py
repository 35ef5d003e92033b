"""Train of trade: a two-phase state machine per symbol, kept in ``ctx.state``.

WANT_TO_BUY: a buy target is set at ``reference * (1 - entry_drop_pct/100)`` where the reference is
the price when the target was set; if the price climbs more than ``reset_pct`` above the reference
the target is reset from the new price. Buy when the price is at or below the target.

HAVING_BOUGHT: the sell target is ``entry * (1 + take_profit_pct/100)`` where the entry is the
wallet position's average cost (fees included). Sell when the price is at or above it.

The phase follows the wallet: a position appearing (the buy filled) moves to HAVING_BOUGHT, a
position disappearing (sold, or closed by a risk exit) moves back to WANT_TO_BUY with a fresh
reference. The state holds only strings, so it survives a JSON round-trip exactly."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from pydantic import Field

from phantomex.brains.base import BrainContext
from phantomex.brains.rules._common import (
    RuleBrain,
    RuleParams,
    Signal,
    buy_blocked,
    current_price,
    fmt,
    holding,
    num,
)
from phantomex.domain.models import Action
from phantomex.domain.money import ONE, ZERO, to_decimal

WANT_TO_BUY = "want_to_buy"
HAVING_BOUGHT = "having_bought"
HUNDRED = Decimal(100)


class TrainOfTradeParams(RuleParams):
    entry_drop_pct: float = Field(
        default=1.0, gt=0, lt=100, description="Buy this many percent below the reference price."
    )
    take_profit_pct: float = Field(
        default=1.5,
        gt=0,
        le=1000,
        description="Sell this many percent above the entry (average cost).",
    )
    reset_pct: float = Field(
        default=2.0,
        gt=0,
        le=100,
        description=(
            "While waiting to buy, reset the reference and buy target when the price rises more "
            "than this many percent above the reference."
        ),
    )


def _decimal(value: Any) -> Decimal | None:
    try:
        result = to_decimal(value)
    except ValueError:
        return None
    return result if result > ZERO else None


class TrainOfTradeBrain(RuleBrain):
    kind: ClassVar[str] = "train_of_trade"
    title: ClassVar[str] = "Train of trade"
    description: ClassVar[str] = (
        "A buy-low / sell-high cycle: waits for the price to drop a set percentage below a "
        "reference price, buys, then sells at a take-profit above the entry and starts over. "
        "The reference resets when the price runs away upwards. Long only."
    )
    Params: ClassVar[type[TrainOfTradeParams]] = TrainOfTradeParams

    def __init__(self, params: TrainOfTradeParams) -> None:
        self.params = params
        self._drop = to_decimal(params.entry_drop_pct) / HUNDRED
        self._tp = to_decimal(params.take_profit_pct) / HUNDRED
        self._reset = to_decimal(params.reset_pct) / HUNDRED

    def describe(self) -> str:
        p = self.params
        return (
            f"Train of trade: buy {p.entry_drop_pct:g}% below reference, "
            f"take profit {p.take_profit_pct:g}%, reset after +{p.reset_pct:g}%"
        )

    def _symbol_states(self, ctx: BrainContext) -> dict[str, Any]:
        states = ctx.state.get("symbols")
        if not isinstance(states, dict):
            states = {}
            ctx.state["symbols"] = states
        return states

    def _want(self, price: Decimal) -> dict[str, str]:
        return {
            "phase": WANT_TO_BUY,
            "reference": str(price),
            "buy_target": str(price * (ONE - self._drop)),
        }

    def evaluate(self, ctx: BrainContext, symbol: str) -> Signal:
        price = current_price(ctx, symbol)
        if price is None:
            return Signal.hold(symbol, f"{symbol}: no valid price")
        states = self._symbol_states(ctx)
        previous = states.get(symbol)
        if not isinstance(previous, dict):
            previous = {}
        held = holding(ctx, symbol)
        if held:
            return self._having_bought(ctx, symbol, price, previous, states)
        return self._want_to_buy(ctx, symbol, price, previous, states)

    def _want_to_buy(
        self,
        ctx: BrainContext,
        symbol: str,
        price: Decimal,
        previous: dict[str, Any],
        states: dict[str, Any],
    ) -> Signal:
        reference = _decimal(previous.get("reference"))
        target = _decimal(previous.get("buy_target"))
        note = ""
        if previous.get("phase") == HAVING_BOUGHT:
            note = "position closed, new cycle: "
            reference = target = None
        if reference is None or target is None:
            state = self._want(price)
            note = note or "new buy target: "
        elif price > reference * (ONE + self._reset):
            state = self._want(price)
            note = (
                f"price ran {fmt((price / reference - ONE) * HUNDRED, 3)}% above reference, reset: "
            )
        else:
            state = {"phase": WANT_TO_BUY, "reference": str(reference), "buy_target": str(target)}
        states[symbol] = state
        target = Decimal(state["buy_target"])
        reference = Decimal(state["reference"])
        meta = {
            "symbol": symbol,
            "phase": WANT_TO_BUY,
            "price": num(price),
            "reference": num(reference),
            "buy_target": num(target),
        }
        if price <= target:
            if buy_blocked(ctx, symbol):
                return Signal(
                    symbol,
                    Action.HOLD,
                    f"{note}{symbol} {fmt(price)} <= buy target {fmt(target)} but no buying power",
                    meta=meta,
                )
            return Signal(
                symbol,
                Action.BUY,
                f"{note}{symbol} {fmt(price)} <= buy target {fmt(target)} "
                f"({self.params.entry_drop_pct:g}% below {fmt(reference)}): buy",
                strength=float((target - price) / target * HUNDRED),
                meta=meta,
            )
        return Signal(
            symbol,
            Action.HOLD,
            f"{note}{symbol} {fmt(price)} waiting for buy target {fmt(target)} "
            f"({self.params.entry_drop_pct:g}% below {fmt(reference)})",
            meta=meta,
        )

    def _having_bought(
        self,
        ctx: BrainContext,
        symbol: str,
        price: Decimal,
        previous: dict[str, Any],
        states: dict[str, Any],
    ) -> Signal:
        position = ctx.wallet.positions.get(symbol)
        entry = position.avg_cost if position is not None else ZERO
        note = "" if previous.get("phase") == HAVING_BOUGHT else "bought, "
        if entry <= ZERO:
            states[symbol] = {"phase": HAVING_BOUGHT}
            return Signal.hold(
                symbol, f"{symbol}: holding with unknown entry price", phase=HAVING_BOUGHT
            )
        target = entry * (ONE + self._tp)
        states[symbol] = {"phase": HAVING_BOUGHT, "entry": str(entry), "sell_target": str(target)}
        meta = {
            "symbol": symbol,
            "phase": HAVING_BOUGHT,
            "price": num(price),
            "entry": num(entry),
            "sell_target": num(target),
        }
        if price >= target:
            return Signal(
                symbol,
                Action.SELL,
                f"{note}{symbol} {fmt(price)} >= take-profit {fmt(target)} "
                f"({self.params.take_profit_pct:g}% above entry {fmt(entry)}): sell",
                strength=float((price - target) / target * HUNDRED),
                meta=meta,
            )
        return Signal(
            symbol,
            Action.HOLD,
            f"{note}{symbol} {fmt(price)} waiting for take-profit {fmt(target)} "
            f"(entry {fmt(entry)})",
            meta=meta,
        )
