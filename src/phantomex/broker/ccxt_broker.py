"""A broker that sends market orders to a ccxt exchange (a testnet unless real money is allowed).

It sits behind the same port as the paper broker: ``submit`` returns the Fill the ledger applies.
The kernel calls ``submit`` synchronously, so this broker uses ccxt's blocking client; each call
is bounded by the client's timeout. Only market orders are sent (limit and stop orders are
refused with a reason); the quantity is rounded down to the exchange's lot size, and an order
over a notional cap is refused, never resized. The fill's price and fee are the exchange's own."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

import ccxt

from phantomex.broker.base import OrderRejected
from phantomex.broker.preflight import refuse_unsendable
from phantomex.broker.venues import (
    ExchangeSettings,
    NotionalCaps,
    Venue,
    agent_prefix,
)
from phantomex.domain.models import Fill, Order, Side, Snapshot, Wallet
from phantomex.domain.money import BPS, ZERO, to_decimal
from phantomex.market.symbols import to_pair

log = logging.getLogger(__name__)

#: Buying needs this much cash on top of quantity * price: the fill price moves from the quote.
CASH_MARGIN_BPS = Decimal(100)
#: Assumed fee when sizing a "whole" buy (the real fee comes from the fill).
FEE_ESTIMATE_BPS = Decimal(10)


def client_order_id(order: Order) -> str:
    """Our id on the exchange: ``px`` + 8 chars of the agent + 24 of the order (≤ 36, [0-9a-z])."""
    return f"{agent_prefix(order.agent_id)}{order.id[:24]}"


class CcxtBroker:
    """Market orders of the agents on one venue, through one (blocking) ccxt client."""

    def __init__(self, venue: Venue, client: Any, settings: ExchangeSettings) -> None:
        self.venue = venue
        self.client = client
        self.settings = settings
        self.quote = settings.quote.upper()
        self.caps = NotionalCaps(settings.order_cap_usd, settings.daily_cap_usd)
        self._used_keys: set[str] = set()

    def submit(self, order: Order, wallet: Wallet, snapshot: Snapshot, now: datetime) -> Fill:
        """Send a market order and return its fill; OrderRejected says why when it can't be."""
        refuse_unsendable(
            self.venue,
            self.settings,
            order,
            snapshot,
            self._used_keys,
            now,
            self.settings.max_price_age_s,
        )
        pair = to_pair(order.symbol, self.quote)
        qty = self._quantity(order, wallet, snapshot.price, pair)
        notional = qty * snapshot.price
        refusal = self.caps.refusal(notional, now)
        if refusal:
            raise OrderRejected(f"{self.venue.name}: {refusal}")
        self._used_keys.add(order.idempotency_key)
        answer = self._send(order, pair, qty)
        fill = self._fill(order, answer, now)
        self.caps.spend(fill.quantity * fill.price, now)
        return fill

    def remember_keys(self, keys: set[str]) -> None:
        self._used_keys |= keys

    def cancel_open_orders(self, agent_id: str | None = None) -> list[str]:
        """Cancel the open orders on the exchange account (only the agent's own, by their client
        id, when ``agent_id`` is given). Returns the exchange ids cancelled; failures are logged
        and raised once every order was tried."""
        self.client.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
        cancelled, failed = [], []
        for o in self.client.fetch_open_orders():
            cid = str(o.get("clientOrderId") or "")
            if agent_id is not None and not cid.startswith(agent_prefix(agent_id)):
                continue
            try:
                self.client.cancel_order(o["id"], o["symbol"])
                cancelled.append(str(o["id"]))
            except ccxt.BaseError as exc:
                log.error("%s: could not cancel order %s: %s", self.venue.name, o["id"], exc)
                failed.append(str(o["id"]))
        if failed:
            raise OrderRejected(f"{self.venue.name}: could not cancel orders {failed}")
        return cancelled

    # -- internals ------------------------------------------------------------------------------
    def _quantity(self, order: Order, wallet: Wallet, price: Decimal, pair: str) -> Decimal:
        held = wallet.quantity(order.symbol)
        if order.whole:
            wanted = (
                held
                if order.side is Side.SELL
                else max(wallet.cash, ZERO)
                / (price * (1 + (FEE_ESTIMATE_BPS + CASH_MARGIN_BPS) / BPS))
            )
        else:
            wanted = order.quantity
        if not wanted.is_finite() or wanted <= 0:
            raise OrderRejected(f"quantity must be positive, got {wanted}")
        try:
            self.client.load_markets()
            qty = to_decimal(self.client.amount_to_precision(pair, str(wanted)))
        except ccxt.BaseError as exc:
            raise OrderRejected(f"{self.venue.name}: {_describe(exc)}") from exc
        if qty <= 0:
            raise OrderRejected(f"{wanted} {order.symbol} is below the exchange's lot size")
        if order.side is Side.SELL and qty > held:
            raise OrderRejected(
                f"insufficient holdings: selling {qty} {order.symbol}, holding {held}"
            )
        if order.side is Side.BUY:
            need = qty * price * (1 + CASH_MARGIN_BPS / BPS)
            if need > wallet.cash:
                raise OrderRejected(
                    f"insufficient cash: buying {qty} {order.symbol} needs {need:.2f} "
                    f"(with a {CASH_MARGIN_BPS / 100}% margin), cash is {wallet.cash:.2f}"
                )
        return qty

    def _send(self, order: Order, pair: str, qty: Decimal) -> dict[str, Any]:
        try:
            answer = self.client.create_order(
                pair,
                "market",
                order.side.value,
                str(qty),
                params={"newClientOrderId": client_order_id(order)},
            )
        except (
            ccxt.InsufficientFunds,
            ccxt.InvalidOrder,
            ccxt.BadSymbol,
            ccxt.AuthenticationError,
            ccxt.PermissionDenied,
        ) as exc:
            raise OrderRejected(f"{self.venue.name} refused the order: {_describe(exc)}") from exc
        except (ccxt.RateLimitExceeded, ccxt.DDoSProtection) as exc:  # 429/418: not accepted
            raise OrderRejected(f"{self.venue.name} is rate limiting: {_describe(exc)}") from exc
        except ccxt.BaseError as exc:
            # a timeout or a 5xx leaves the order's fate unknown: ask the exchange by our id
            answer = self._look_up(order, pair, exc)
        if not isinstance(answer, dict):
            raise OrderRejected(f"{self.venue.name}: unreadable order answer")
        return answer

    def _look_up(self, order: Order, pair: str, cause: ccxt.BaseError) -> dict[str, Any]:
        """The order as the exchange knows it (with its trades, for the fees), after a send
        whose answer was lost. OrderRejected when it was never placed or still can't be told."""
        cid = client_order_id(order)
        try:
            found = self.client.fetch_order(cid, pair, params={"origClientOrderId": cid})
            if to_decimal(found.get("filled") or 0) > 0 and not found.get("trades"):
                found["trades"] = self.client.fetch_my_trades(pair, params={"orderId": found["id"]})
        except ccxt.OrderNotFound as exc:
            raise OrderRejected(
                f"{self.venue.name}: the order was not placed ({_describe(cause)})"
            ) from exc
        except (ccxt.BaseError, ValueError) as exc:
            raise OrderRejected(
                f"{self.venue.name}: order status unknown ({_describe(cause)}); it may have "
                f"executed - run `phantomex exchange reconcile` before trading on"
            ) from exc
        log.warning(
            "%s: order %s answer lost (%s); found it: %s",
            self.venue.name,
            cid,
            _describe(cause),
            found.get("status"),
        )
        return dict(found)

    def _fill(self, order: Order, answer: dict[str, Any], now: datetime) -> Fill:
        """The exchange's fill: price from its trades (else the average), fees in quote."""
        try:
            filled = to_decimal(answer.get("filled") or 0)
        except ValueError:
            filled = ZERO
        if filled <= 0:
            raise OrderRejected(
                f"{self.venue.name} did not fill the order (status {answer.get('status')})"
            )
        trades = [t for t in answer.get("trades") or [] if isinstance(t, dict)]
        if trades:
            cost = sum((to_decimal(t["price"]) * to_decimal(t["amount"]) for t in trades), ZERO)
            amount = sum((to_decimal(t["amount"]) for t in trades), ZERO)
            fees = [t["fee"] for t in trades if t.get("fee")]
        else:
            cost = to_decimal(answer.get("cost") or 0)
            amount = filled
            fees = answer.get("fees") or ([answer["fee"]] if answer.get("fee") else [])
        if amount <= 0 or cost <= 0:
            raise OrderRejected(f"{self.venue.name}: the fill has no price")
        price = cost / amount
        base = order.symbol.upper()
        fee, qty, notes = ZERO, amount, []
        for f in fees:
            currency, fee_cost = (
                str(f.get("currency") or "").upper(),
                to_decimal(f.get("cost") or 0),
            )
            if currency == self.quote:
                fee += fee_cost
            elif currency == base and order.side is Side.BUY:
                qty -= fee_cost  # the fee came out of what was bought
                fee += fee_cost * price
            elif fee_cost:
                notes.append(f"fee {fee_cost} {currency} not in the ledger")
        reasoning = order.reason + (f" [{'; '.join(notes)}]" if notes else "")
        if notes:
            log.warning("%s order %s: %s", self.venue.name, order.id, "; ".join(notes))
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
            reasoning=reasoning,
        )


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"
