"""The ``ib-paper`` venue: agents' market orders on an Interactive Brokers paper account.

The kernel's broker port is synchronous and a market order's fill is expected at once; IB fills
asynchronously, possibly in parts. The adapter: :meth:`IBBroker.submit` sends the order (after
the same refusals as the exchange venues, plus market hours and IB's paper-account rule) and
waits up to ``fill_wait_s`` for its executions. Every execution becomes one ledger fill at
IB's execution time and price, with IB's commission as the fee (exact decimals, key
``<order key>:<execId>``): the first is returned by ``submit``; the others, and any that arrive
later (a partial fill's rest, an order whose answer was lost, one still working when PhantomEx
restarted), are handed to the kernel by :meth:`on_tick` like a paper broker's resting orders.
An order with no execution yet rests (``submit`` returns None); :meth:`IBBroker.cancel`
cancels one that is working. Orders are journaled before they are sent
(:mod:`phantomex.broker.ib_orders`) and matched by ``orderRef``: an order is never sent twice."""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from phantomex.broker.base import OrderRejected
from phantomex.broker.ib_link import IBExecution, IBLink, IBView, NotSent
from phantomex.broker.ib_orders import Journal, Working
from phantomex.broker.ib_paper import contract_spec, order_spec
from phantomex.broker.preflight import refuse_unsendable
from phantomex.broker.venues import (
    ExchangeSettings,
    NotionalCaps,
    Venue,
    agent_prefix,
)
from phantomex.domain.models import (
    AssetClass,
    Fill,
    Instrument,
    Order,
    Side,
    Snapshot,
    Tick,
    Wallet,
)
from phantomex.domain.money import BPS, ZERO
from phantomex.market.calendars import CalendarError, session_at

log = logging.getLogger(__name__)

__all__ = ["IBBroker", "client_order_id"]

#: Buying needs this much cash on top of quantity * price (the fill moves, and the commission).
CASH_MARGIN_BPS = Decimal(100)
#: After a failed connect, wait this long (wall clock) before trying again from on_tick.
RETRY_SECONDS = 5.0
#: IB's statuses of an order cancelled before it was all executed.
CANCELLED = frozenset({"Cancelled", "ApiCancelled"})


def client_order_id(order: Order) -> str:
    """The ``orderRef`` IB echoes on the order and its executions: ``px`` + 8 characters of
    the agent + 24 of the order."""
    return f"{agent_prefix(order.agent_id)}{order.id[:24]}"


class IBBroker:
    """Market orders of the agents on the ``ib-paper`` venue, through one :class:`IBLink`."""

    def __init__(
        self, venue: Venue, link: IBLink, settings: ExchangeSettings, journal: Journal
    ) -> None:
        self.venue, self.link, self.settings, self.journal = venue, link, settings, journal
        self.ib = settings.ib
        self.quote = self.ib.quote.upper()
        self.caps = NotionalCaps(settings.order_cap_usd, settings.daily_cap_usd)
        self._used_keys: set[str] = set()
        self._ready: list[tuple[Order, Fill]] = []  # fills waiting for the next on_tick
        self._retry_at = 0.0

    # -- the broker port -------------------------------------------------------------------------
    def submit(
        self, order: Order, wallet: Wallet, snapshot: Snapshot, now: datetime, **_: object
    ) -> Fill | None:
        """Send a market order; its first fill, or None while IB has not executed it yet."""
        working = self._checked(order, wallet, snapshot, now)
        self.journal.add(working)  # before sending: a lost answer is looked up, never resent
        self._used_keys.add(order.idempotency_key)
        stock = _stock(order.symbol)
        sent = replace(order, quantity=working.quantity, whole=False)
        spec = replace(order_spec(sent, stock), order_ref=working.ref)
        try:
            self.link.place(contract_spec(stock), spec)
        except NotSent as exc:
            self.journal.remove(working.ref)
            raise OrderRejected(f"{self.venue.name}: the order was not placed ({exc})") from exc
        except TimeoutError as exc:  # it may have gone out: look it up, never resend
            if not self._lookup_after_loss(working, exc):
                raise OrderRejected(
                    f"{self.venue.name}: the order was not placed ({_describe(exc)})"
                ) from exc
        self.caps.spend(working.quantity * snapshot.price, now)
        fills, rejected = self._wait(working)
        if rejected is not None:
            raise rejected
        if not fills:
            return None  # working at IB: its executions come through on_tick
        first, *rest = fills
        self._ready.extend((working.order, f) for f in rest)
        return first

    def on_tick(
        self, tick: Tick, wallets: dict[str, Wallet]
    ) -> list[tuple[Order, Fill | OrderRejected]]:
        """Executions that arrived since the last call, and orders IB ended unfilled."""
        done: list[tuple[Order, Fill | OrderRejected]] = list(self._ready)
        self._ready = []
        if not self.journal.orders or time.monotonic() < self._retry_at:
            return done
        try:
            view = self.link.view()
        except Exception as exc:  # gateway away: the orders stay working, tried again later
            log.warning("%s: cannot reach IB (%s); retrying", self.venue.name, _describe(exc))
            self._retry_at = time.monotonic() + RETRY_SECONDS
            return done
        for working in list(self.journal.orders.values()):
            fills, finished = self._collect(working, view)
            done += [(working.order, f) for f in fills]
            if finished:
                self.journal.remove(working.ref)
                if not fills and not self._executed(working, view):
                    done.append((working.order, OrderRejected(self._why_unfilled(working, view))))
        return done

    def open_orders(self, agent_id: str | None = None) -> list[Order]:
        """Orders working at IB (or with executions not yet handed to the ledger)."""
        pending = [w.order for w in self.journal.orders.values()]
        pending += [o for o, _ in self._ready if o not in pending]
        return [o for o in pending if agent_id is None or o.agent_id == agent_id]

    def cancel_open_orders(self, agent_id: str | None = None) -> list[str]:
        """Cancel the open orders this connection sees (only the agent's own, by orderRef, when
        ``agent_id`` is given); returns their orderRefs."""
        if agent_id is None:
            return self.link.cancel(lambda _ref: True)
        prefix = agent_prefix(agent_id)
        return self.link.cancel(lambda ref: ref.startswith(prefix))

    def cancel(self, order_id: str) -> Order | None:
        """Cancel one working order (a person's cancel): the order once IB confirmed it
        cancelled; None when no order of this id is working at IB (it filled first).
        OrderRejected when IB cannot be reached or did not confirm within ``fill_wait_s``: the
        order may still be working, and stays listed. Executions that came before the cancel
        are booked on the next tick."""
        working = next((w for w in self.journal.orders.values() if w.order.id == order_id), None)
        if working is None:
            return None
        try:
            status = self.link.cancel_one(working.ref, self.ib.fill_wait_s)
            view = self.link.view()
        except Exception as exc:  # gateway away: the order stays working, and listed
            raise OrderRejected(
                f"{self.venue.name}: cannot cancel order {order_id} now ({_describe(exc)}); "
                "it may still be working at IB"
            ) from exc
        fills, finished = self._collect(working, view)
        self._ready.extend((working.order, f) for f in fills)
        if finished:
            self.journal.remove(working.ref)
        if status in CANCELLED:
            return working.order
        if status is None or finished:  # it filled before the cancel reached IB
            return None
        raise OrderRejected(
            f"{self.venue.name}: IB has not confirmed the cancel of order {order_id} "
            f"(status {status}); it may still be working"
        )

    def remember_keys(self, keys: set[str]) -> None:
        self._used_keys |= keys

    # -- internals -------------------------------------------------------------------------------
    def _checked(self, order: Order, wallet: Wallet, snap: Snapshot, now: datetime) -> Working:
        refuse_unsendable(
            self.venue, self.settings, order, snap, self._used_keys, now, self.ib.max_price_age_s
        )
        try:
            session = session_at(self.ib.calendar, now)
        except CalendarError as exc:
            raise OrderRejected(f"market hours unknown: {exc}") from exc
        if not session.open:
            raise OrderRejected(session.reason())
        qty = self._quantity(order, wallet, snap.price)
        refusal = self.caps.refusal(qty * snap.price, now)
        if refusal:
            raise OrderRejected(f"{self.venue.name}: {refusal}")
        return Working(order, qty, client_order_id(order))

    def _quantity(self, order: Order, wallet: Wallet, price: Decimal) -> Decimal:
        held = wallet.quantity(order.symbol)
        margin = 1 + CASH_MARGIN_BPS / BPS
        if order.whole:
            wanted = held if order.side is Side.SELL else max(wallet.cash, ZERO) / (price * margin)
        else:
            wanted = order.quantity
        if not wanted.is_finite() or wanted <= 0:
            raise OrderRejected(f"quantity must be positive, got {wanted}")
        qty = wanted.to_integral_value(ROUND_FLOOR)  # whole shares
        if qty <= 0:
            raise OrderRejected(f"{wanted} {order.symbol} is less than one share")
        if order.side is Side.SELL and qty > held:
            raise OrderRejected(
                f"insufficient holdings: selling {qty} {order.symbol}, holding {held}"
            )
        if order.side is Side.BUY and qty * price * margin > wallet.cash:
            raise OrderRejected(
                f"insufficient cash: buying {qty} {order.symbol} needs "
                f"{qty * price * margin:.2f} (with a {CASH_MARGIN_BPS / 100}% margin), "
                f"cash is {wallet.cash:.2f}"
            )
        return qty

    def _lookup_after_loss(self, working: Working, cause: BaseException) -> bool:
        """After a send whose fate is unknown: does IB know the order (open or executed)?"""
        try:
            view = self.link.view(refresh=True)
        except Exception:
            log.warning("%s: order %s: fate unknown (%s)", self.venue.name, working.ref, cause)
            return True  # keep it journaled: on_tick looks again, it is never resent
        known = working.ref in view.orders or self._executed(working, view)
        if not known:
            self.journal.remove(working.ref)
        return known

    def _wait(self, working: Working) -> tuple[list[Fill], OrderRejected | None]:
        deadline = time.monotonic() + self.ib.fill_wait_s
        fills: list[Fill] = []
        while True:
            try:
                view = self.link.view()
            except Exception as exc:  # e.g. the connection broke mid-order: on_tick goes on
                log.warning("%s: order %s: %s", self.venue.name, working.ref, _describe(exc))
                return fills, None
            new, finished = self._collect(working, view)
            fills += new
            if finished:
                self.journal.remove(working.ref)
                if not fills and not self._executed(working, view):
                    return [], OrderRejected(self._why_unfilled(working, view))
                return fills, None
            if time.monotonic() >= deadline:
                return fills, None
            time.sleep(0.02)

    def _collect(self, working: Working, view: IBView) -> tuple[list[Fill], bool]:
        """New fills of ``working`` (executions with their commission), and whether the order
        is finished (IB ended it, or all of it executed, and every execution is booked)."""
        mine = [e for e in view.executions if e.order_ref == working.ref]
        fills = []
        for ex in sorted(mine, key=lambda e: (e.time, e.exec_id)):
            key = f"{working.order.idempotency_key}:{ex.exec_id}"
            if ex.commission is None or key in self._used_keys:
                continue
            self._used_keys.add(key)
            fills.append(self._fill(working.order, ex, key))
        pending = any(e.commission is None for e in mine)
        executed = sum((e.shares for e in mine), ZERO)
        state = view.orders.get(working.ref)
        ended = state is None or state.done or executed >= working.quantity
        return fills, ended and not pending

    @staticmethod
    def _executed(working: Working, view: IBView) -> bool:
        return any(e.order_ref == working.ref for e in view.executions)

    def _why_unfilled(self, working: Working, view: IBView) -> str:
        state = view.orders.get(working.ref)
        if state is None:
            return f"{self.venue.name}: the order is not known to IB (not placed)"
        why = f": {state.error}" if state.error else ""
        return f"{self.venue.name} did not fill the order (status {state.status}{why})"

    @staticmethod
    def _fill(order: Order, ex: IBExecution, key: str) -> Fill:
        """One execution as a ledger fill: IB's time, price and commission."""
        assert ex.commission is not None
        return Fill(
            agent_id=order.agent_id,
            symbol=order.symbol,
            side=order.side,
            quantity=ex.shares,
            price=ex.price,
            fee=ex.commission,
            time=ex.time,
            idempotency_key=key,
            order_id=order.id,
            decision_id=order.decision_id,
            reasoning=order.reason,
        )


def _stock(symbol: str) -> Instrument:
    return Instrument(symbol.upper(), AssetClass.EQUITY, quote="USD", quantity_step=Decimal(1))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]}"
