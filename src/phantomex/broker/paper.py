"""Paper broker: simulated fills with slippage and fees, resting limit and stop orders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from phantomex.broker.base import OrderRejected
from phantomex.domain.models import (
    BUY_SIDE,
    LIMIT_ORDER,
    MARKET_ORDER,
    SELL_SIDE,
    STOP_ORDER,
    Bar,
    Fill,
    Order,
    Side,
    Snapshot,
    Tick,
    Wallet,
)
from phantomex.domain.money import BPS, ZERO, all_in_quantity, is_valid_price, quantize_down


@dataclass(frozen=True, slots=True)
class PaperBrokerConfig:
    fee_bps: Decimal = Decimal(10)  # per side, like a spot exchange's taker fee
    slippage_bps: Decimal = ZERO
    quantity_step: Decimal | None = None  # None: fractional quantities are not rounded
    #: "now": market orders fill at the current price (live trading, and backtests filling at
    #: the signal bar's close); "next_open": at the next bar's open (a decision on bar t's
    #: close fills at bar t+1's open).
    fill_timing: Literal["now", "next_open"] = "now"


class PaperBroker:
    """Fills against the wallet it is given; never changes it (the ledger does that)."""

    def __init__(self, config: PaperBrokerConfig | None = None) -> None:
        self.config = config or PaperBrokerConfig()
        self._resting: dict[str, Order] = {}
        self._resize: set[str] = set()  # resting market orders that may be resized at fill
        self._used_keys: set[str] = set()

    # -- the Broker port ------------------------------------------------------------------------
    @property
    def fee_bps(self) -> Decimal:
        return self.config.fee_bps

    def submit(
        self,
        order: Order,
        wallet: Wallet,
        snapshot: Snapshot,
        now: datetime,
        *,
        resize: bool = False,
    ) -> Fill | None:
        """Fill a market order at the snapshot price, or rest a limit/stop order (returns None).

        Raises OrderRejected when the order is invalid or the wallet cannot cover it; with
        ``resize`` an uncoverable order is shrunk to what the wallet can cover instead."""
        self._check_new(order)
        if order.type is MARKET_ORDER and self.config.fill_timing == "next_open":
            if resize:
                self._resize.add(order.id)
            self._used_keys.add(order.idempotency_key)
            self._resting[order.id] = order
            return None
        if order.type is MARKET_ORDER:
            if not is_valid_price(snapshot.price):
                raise OrderRejected(f"no valid price for {order.symbol}")
            price = self._slipped(order.side, snapshot.price)
            fill = self._fill(order, price, wallet, now, resize=resize)
            self._used_keys.add(order.idempotency_key)
            return fill
        trigger = order.limit_price if order.type is LIMIT_ORDER else order.stop_price
        if trigger is None or not is_valid_price(trigger):
            raise OrderRejected(f"{order.type} order needs a positive trigger price")
        self._used_keys.add(order.idempotency_key)
        self._resting[order.id] = order
        return None

    def on_tick(
        self, tick: Tick, wallets: dict[str, Wallet]
    ) -> list[tuple[Order, Fill | OrderRejected]]:
        """Fill resting orders the tick crossed; cancel those the wallet can't cover."""
        done: list[tuple[Order, Fill | OrderRejected]] = []
        for order in list(self._resting.values()):
            price = self._crossed(order, tick)
            if price is None:
                continue
            del self._resting[order.id]
            wallet = wallets.get(order.agent_id)
            if wallet is None:
                done.append((order, OrderRejected("the agent no longer exists")))
                continue
            bar = tick.bars.get(order.symbol)
            market = order.type is MARKET_ORDER
            when = bar.time if market and bar is not None else tick.time
            if market:
                price = self._slipped(order.side, price)
            resize = order.id in self._resize
            self._resize.discard(order.id)
            try:
                fill = self._fill(order, price, wallet, when, resize=resize)
            except OrderRejected as exc:
                done.append((order, exc))
                continue
            done.append((order, fill))
        return done

    def open_orders(self, agent_id: str | None = None) -> list[Order]:
        if agent_id is None:  # every one (asked on every tick)
            return list(self._resting.values())
        return [o for o in self._resting.values() if o.agent_id == agent_id]

    def cancel(self, order_id: str) -> Order | None:
        return self._resting.pop(order_id, None)

    def cancel_all(self, agent_id: str | None = None) -> list[Order]:
        # its own resting orders (a subclass's open_orders may list other venues' orders too)
        cancelled = [
            o for o in self._resting.values() if agent_id is None or o.agent_id == agent_id
        ]
        for order in cancelled:
            del self._resting[order.id]
        return cancelled

    def remember_keys(self, keys: set[str]) -> None:
        """Load the idempotency keys already used (from the store, on start-up)."""
        self._used_keys |= keys

    def restore_order(self, order: Order) -> None:
        """Put back a resting order loaded from the store."""
        self._used_keys.add(order.idempotency_key)
        self._resting[order.id] = order

    # -- internals ------------------------------------------------------------------------------
    def _check_new(self, order: Order) -> None:
        if order.idempotency_key in self._used_keys:
            raise OrderRejected(f"duplicate order: key {order.idempotency_key} was already used")
        if not order.quantity.is_finite() or order.quantity <= ZERO:
            raise OrderRejected(f"quantity must be positive, got {order.quantity}")

    def _slipped(self, side: Side, price: Decimal) -> Decimal:
        slip = price * self.config.slippage_bps / BPS
        return price + slip if side is BUY_SIDE else price - slip

    def fee_for(self, notional: Decimal) -> Decimal:
        return notional * self.config.fee_bps / BPS

    def _fill(
        self, order: Order, price: Decimal, wallet: Wallet, now: datetime, *, resize: bool
    ) -> Fill:
        qty = quantize_down(self._whole(order, price, wallet), self.config.quantity_step)
        buy = order.side is BUY_SIDE
        if buy and not order.whole:
            # an all-in (whole) order sized to the cash can overshoot it only by Decimal
            # rounding: trimmed below, never rejected (resize or not)
            cost = qty * price + self.fee_for(qty * price)
            if cost > wallet.cash:
                if not resize:
                    raise OrderRejected(
                        f"insufficient cash: buying {qty} {order.symbol} costs {cost:.2f}, "
                        f"cash is {wallet.cash:.2f}"
                    )
                qty = quantize_down(
                    all_in_quantity(wallet.cash, price, self.config.fee_bps),
                    self.config.quantity_step,
                )
        elif not buy:
            held = wallet.quantity(order.symbol)
            if qty > held:
                if not resize:
                    raise OrderRejected(
                        f"insufficient holdings: selling {qty} {order.symbol}, holding {held}"
                    )
                qty = held
        if qty <= ZERO:
            raise OrderRejected(f"order for {order.symbol} rounds to zero quantity")
        fee = self.fee_for(qty * price)
        if buy:
            # Decimal rounding of an all-in resize can overshoot cash in the last digit.
            while qty * price + fee > wallet.cash:
                qty = qty.next_minus()
                fee = self.fee_for(qty * price)
        return Fill(
            agent_id=order.agent_id,
            symbol=order.symbol,
            side=order.side,
            quantity=qty,
            price=price,
            fee=fee,
            time=now,
            idempotency_key=order.idempotency_key,
            order_id=order.id,
            decision_id=order.decision_id,
            reasoning=order.reason,
        )

    def _whole(self, order: Order, price: Decimal, wallet: Wallet) -> Decimal:
        """The order's quantity; a ``whole`` order is sized at the fill price."""
        if not order.whole:
            return order.quantity
        if order.side is SELL_SIDE:
            return wallet.quantity(order.symbol)
        return all_in_quantity(wallet.cash, price, self.config.fee_bps)

    @staticmethod
    def _crossed(order: Order, tick: Tick) -> Decimal | None:
        """The fill price if the tick crosses the order's trigger, else None."""
        bar: Bar | None = tick.bars.get(order.symbol)
        snap = tick.snapshots.get(order.symbol)
        if bar is not None:
            low, high, opening = bar.low, bar.high, bar.open
        elif snap is not None and is_valid_price(snap.price):
            low = high = opening = snap.price
        else:
            return None
        if order.type is MARKET_ORDER:  # a market order resting for the next open
            return opening
        if order.type is LIMIT_ORDER:
            assert order.limit_price is not None
            if order.side is BUY_SIDE and low <= order.limit_price:
                return min(opening, order.limit_price)
            if order.side is SELL_SIDE and high >= order.limit_price:
                return max(opening, order.limit_price)
        elif order.type is STOP_ORDER:
            assert order.stop_price is not None
            if order.side is BUY_SIDE and high >= order.stop_price:
                return max(opening, order.stop_price)
            if order.side is SELL_SIDE and low <= order.stop_price:
                return min(opening, order.stop_price)
        return None
