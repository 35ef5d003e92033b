"""ib_async on its own thread: a blocking face for the kernel's synchronous broker port.

ib_async is asyncio code; the kernel calls its broker synchronously from its own event loop.
:class:`IBLink` runs an ``ib_async.IB`` on a dedicated thread and event loop, and every call
from the broker is a coroutine run there with a deadline. A lost connection is re-opened on the
next call; ib_async's start-up sync then fetches the account's open orders and executions, which
is how an order whose answer was lost is found again (by its ``orderRef``)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from phantomex.broker.ib_paper import ContractSpec, OrderSpec, load_ib_async, require_paper_accounts
from phantomex.broker.ib_settings import IBSettings

__all__ = [
    "IBExecution",
    "IBLink",
    "IBOrderState",
    "IBQuote",
    "IBView",
    "NotSent",
    "shared_link",
]

T = TypeVar("T")
FIRST_TICK_POLLS = 100  # x 20 ms
DONE = frozenset({"Filled", "Cancelled", "ApiCancelled", "Inactive"})


def _dec(value: float) -> Decimal:
    """ib_async hands prices and sizes over as floats: back to the decimal IB wrote."""
    return Decimal(repr(float(value)))


def _utc(at: datetime) -> datetime:
    """An execution's time in UTC (ib_async applies TWS's zone; a bare time is UTC, as sent)."""
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)


class NotSent(ConnectionError):
    """An order that was certainly not sent to IB."""


@dataclass(frozen=True, slots=True)
class IBExecution:
    exec_id: str
    order_ref: str
    symbol: str
    side: str  # BOT | SLD
    shares: Decimal
    price: Decimal
    commission: Decimal | None  # None until IB's commission report arrived
    time: datetime


@dataclass(frozen=True, slots=True)
class IBOrderState:
    order_ref: str
    order_id: int
    symbol: str
    side: str  # BUY | SELL
    status: str
    filled: Decimal
    remaining: Decimal
    error: str  # IB's last error text for the order (a rejection's reason)

    @property
    def done(self) -> bool:
        return self.status in DONE


@dataclass(frozen=True, slots=True)
class IBQuote:
    price: Decimal
    time: datetime  # of the last trade (a delayed one is about 15 minutes old)
    data_type: int  # IB's market data type: 1 live, 2 frozen, 3 delayed, 4 delayed frozen


@dataclass(frozen=True, slots=True)
class IBView:
    """What the connection knows of the account's orders and executions, by ``orderRef``."""

    executions: list[IBExecution]
    orders: dict[str, IBOrderState]


_SHARED: dict[tuple[str, int, int], IBLink] = {}
_SHARED_LOCK = threading.Lock()


def shared_link(settings: IBSettings) -> IBLink:
    """The one connection per gateway and client id (IB refuses a second connection with the
    same client id): the ``ib-paper`` venue's broker and the ``ib`` price source share it. Each
    holder closes it once; it disconnects when the last one did."""
    key = (settings.host, settings.port, settings.client_id)
    with _SHARED_LOCK:
        link = _SHARED.get(key)
        if link is not None and link.holders > 0:
            link.holders += 1
            return link
        link = _SHARED[key] = IBLink(settings)
        return link


class IBLink:
    def __init__(self, settings: IBSettings) -> None:
        self.settings = settings
        self.holders = 1  # the holders of a shared link (see shared_link)
        self._mod = load_ib_async()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="ib-link", daemon=True)
        self._thread.start()
        self._ib: Any = self.call(self._make_ib)
        self._contracts: dict[ContractSpec, Any] = {}
        self.accounts: list[str] = []
        self.connects = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    async def _make_ib(self) -> Any:
        return self._mod.IB()

    def call(
        self,
        fn: Callable[[], Coroutine[Any, Any, T]],
        timeout: float | None = None,
        *,
        retry: bool = False,
    ) -> T:
        """Run ``fn()`` on the link's loop and wait for it (TimeoutError past ``timeout``).
        With ``retry``, a connection found dead on the way is re-opened and ``fn`` run again
        (only for requests that change nothing at IB)."""
        wait = timeout if timeout is not None else self.settings.connect_timeout_s * 2
        try:
            return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(wait)
        except ConnectionError:
            if not retry:
                raise
            self.call(self._disconnect, timeout=10)
            return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(wait)

    # -- connection ------------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return bool(self._ib.isConnected())

    def connect(self) -> list[str]:
        """Connect (if not connected) and return the managed accounts; IBUnavailable unless
        every one is a paper account."""
        return self.call(self._ensure)

    async def _ensure(self) -> list[str]:
        if not self._ib.isConnected():
            s = self.settings
            await self._ib.connectAsync(
                s.host, s.port, clientId=s.client_id, timeout=s.connect_timeout_s
            )
            self.connects += 1
            self.accounts = list(self._ib.managedAccounts())
            try:
                require_paper_accounts(self.accounts)
            except Exception:
                self._ib.disconnect()
                raise
        return self.accounts

    def close(self) -> None:
        """Disconnect and stop the link's thread, once the last holder closed it."""
        with _SHARED_LOCK:
            self.holders = max(self.holders - 1, 0)
            if self.holders:
                return
            key = (self.settings.host, self.settings.port, self.settings.client_id)
            if _SHARED.get(key) is self:
                del _SHARED[key]
        if self._loop.is_running():
            self.call(self._disconnect, timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    async def _disconnect(self) -> None:
        self._ib.disconnect()

    # -- orders ----------------------------------------------------------------------------------
    def place(self, contract: ContractSpec, order: OrderSpec) -> int:
        """Send one order; returns IB's order id. :class:`NotSent` when it certainly was not
        sent (no connection, unknown contract, a refused account); TimeoutError when the send
        did not finish in time (its fate is unknown)."""

        async def run() -> int:
            try:
                await self._ensure()
                ib_contract = await self._qualified(contract)
                trade = self._ib.placeOrder(ib_contract, self._order(order))
            except Exception as exc:  # nothing was written for this order
                raise NotSent(f"{type(exc).__name__}: {exc}") from exc
            return int(trade.order.orderId)

        return self.call(run)

    async def _qualified(self, spec: ContractSpec) -> Any:
        if spec not in self._contracts:
            mod = self._mod
            if spec.sec_type == "STK":
                raw = mod.Stock(spec.symbol, spec.exchange, spec.currency)
            else:
                raw = mod.Crypto(spec.symbol, spec.exchange, spec.currency)
            found = await self._ib.qualifyContractsAsync(raw)
            if not found or found[0] is None:
                raise LookupError(f"IB knows no contract {spec.symbol} {spec.sec_type}")
            self._contracts[spec] = found[0]
        return self._contracts[spec]

    def _order(self, spec: OrderSpec) -> Any:
        mod, qty = self._mod, float(spec.quantity)
        kw = {"orderRef": spec.order_ref, "account": self.accounts[0], "tif": "DAY"}
        if spec.order_type == "LMT":
            return mod.LimitOrder(spec.action, qty, float(spec.limit_price or 0), **kw)
        if spec.order_type == "STP":
            return mod.StopOrder(spec.action, qty, float(spec.stop_price or 0), **kw)
        return mod.MarketOrder(spec.action, qty, **kw)

    def cancel(self, refs: Callable[[str], bool]) -> list[str]:
        """Cancel the open orders whose orderRef ``refs`` accepts; returns their orderRefs."""

        async def run() -> list[str]:
            return [t.order.orderRef for t in await self._cancel(refs)]

        return self.call(run, retry=True)

    def cancel_one(self, ref: str, wait_s: float) -> str | None:
        """Cancel the open order ``ref`` and wait up to ``wait_s`` for IB's answer; returns the
        order's status then (``Cancelled`` once IB confirmed it), None when IB has no open order
        of that orderRef (it filled, or was never placed)."""

        async def run() -> str | None:
            trades = await self._cancel(lambda r: r == ref)
            if not trades:
                return None
            deadline = self._loop.time() + wait_s
            while not trades[0].isDone() and self._loop.time() < deadline:
                await asyncio.sleep(0.02)
            return str(trades[0].orderStatus.status)

        return self.call(run, timeout=wait_s + self.settings.connect_timeout_s * 2, retry=True)

    async def _cancel(self, refs: Callable[[str], bool]) -> list[Any]:
        await self._ensure()
        await self._ib.reqOpenOrdersAsync()
        trades = [t for t in self._ib.openTrades() if refs(t.order.orderRef or "")]
        for trade in trades:
            self._ib.cancelOrder(trade.order)
        return trades

    def view(self, refresh: bool = False) -> IBView:
        """The orders and executions known on the connection (re-connecting when it was lost;
        ``refresh`` asks IB for its executions and open orders again)."""

        async def run() -> IBView:
            fresh = not self._ib.isConnected()
            await self._ensure()
            if refresh and not fresh:
                await self._ib.reqExecutionsAsync()
                await self._ib.reqOpenOrdersAsync()
            return self._view()

        return self.call(run, retry=True)

    def _view(self) -> IBView:
        executions = []
        for f in self._ib.fills():
            ex, report = f.execution, f.commissionReport
            executions.append(
                IBExecution(
                    exec_id=ex.execId,
                    order_ref=ex.orderRef or "",
                    symbol=f.contract.symbol,
                    side=ex.side,
                    shares=_dec(ex.shares),
                    price=_dec(ex.price),
                    commission=_dec(report.commission) if report.execId else None,
                    time=_utc(ex.time),
                )
            )
        orders = {}
        for trade in self._ib.trades():
            ref = trade.order.orderRef or ""
            errors = [e.message for e in trade.log if e.errorCode]
            orders[ref] = IBOrderState(
                ref,
                int(trade.order.orderId),
                trade.contract.symbol,
                trade.order.action,
                trade.orderStatus.status,
                _dec(trade.orderStatus.filled),
                _dec(trade.orderStatus.remaining),
                errors[-1] if errors else "",
            )
        return IBView(executions, orders)

    # -- account ---------------------------------------------------------------------------------
    def account(self) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
        """(cash by currency, position by symbol) of the paper account, asked afresh."""

        async def run() -> tuple[dict[str, Decimal], dict[str, Decimal]]:
            await self._ensure()
            positions = await self._ib.reqPositionsAsync()
            summary = await self._ib.accountSummaryAsync(self.accounts[0])
            cash = {v.currency: Decimal(v.value) for v in summary if v.tag == "TotalCashValue"}
            held = {p.contract.symbol: _dec(p.position) for p in positions if p.position}
            return cash, held

        return self.call(run, retry=True)

    def quotes(self, symbols: list[str], delayed: bool) -> dict[str, IBQuote]:
        """The last trade per stock from the connection's market data (subscribed on first use;
        ``delayed`` asks for IB's free delayed data, type 4: delayed, and the last delayed price
        frozen while the market is closed; otherwise type 2, live or frozen)."""

        async def run() -> dict[str, IBQuote]:
            await self._ensure()
            self._ib.reqMarketDataType(4 if delayed else 2)
            out = {}
            for symbol in symbols:
                contract = await self._qualified(ContractSpec("STK", symbol, "SMART", "USD"))
                ticker = self._ib.ticker(contract)
                if ticker is None:  # a new subscription: give IB a moment for its first tick
                    ticker = self._ib.reqMktData(contract)
                    for _ in range(FIRST_TICK_POLLS):
                        if ticker.delayedLastTimestamp or ticker.lastTimestamp:
                            break
                        await asyncio.sleep(0.02)
                stamp = ticker.delayedLastTimestamp or ticker.lastTimestamp
                price = ticker.last
                if stamp is not None and price == price and price > 0:  # NaN: no trade yet
                    out[symbol] = IBQuote(_dec(price), stamp, int(ticker.marketDataType))
            return out

        return self.call(run, retry=True)
