"""One API client connection: the handshake, then requests answered as IB Gateway does."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from decimal import Decimal

from phantomex.devtools.ib_gateway import messages as m
from phantomex.devtools.ib_gateway.account import GatewayOrder
from phantomex.devtools.ib_gateway.behaviour import Disconnect, Reject
from phantomex.devtools.ib_gateway.state import GatewayState
from phantomex.devtools.ib_gateway.wire import (
    ProtocolError,
    encode,
    read_frame,
    read_handshake,
    tws_time,
)

log = logging.getLogger(__name__)

__all__ = ["Session"]

#: tick types: bid, ask, last - live and delayed
LIVE_TICKS, DELAYED_TICKS = (1, 2, 4), (66, 67, 68)
DELAY = timedelta(minutes=15)  # delayed data lags the market this much
FARM_NOTICES = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)


class Session:
    def __init__(
        self, state: GatewayState, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.state, self.reader, self.writer = state, reader, writer
        self.client_id = -1
        self.data_type = 1  # what the client asked for (reqMarketDataType)
        self.tickers: dict[int, str] = {}  # reqId -> symbol
        self.served: dict[int, int] = {}  # reqId -> the market data type last announced
        self.account_updates = False
        self.position_updates = False
        self.handlers = {
            m.Out.START_API: self.start_api,
            m.Out.REQ_IDS: self.req_ids,
            m.Out.REQ_CONTRACT_DATA: self.contract_data,
            m.Out.PLACE_ORDER: self.place_order,
            m.Out.CANCEL_ORDER: self.cancel_order,
            m.Out.REQ_GLOBAL_CANCEL: self.global_cancel,
            m.Out.REQ_OPEN_ORDERS: self.open_orders,
            m.Out.REQ_ALL_OPEN_ORDERS: self.open_orders,
            m.Out.REQ_COMPLETED_ORDERS: self.completed_orders,
            m.Out.REQ_EXECUTIONS: self.executions,
            m.Out.REQ_POSITIONS: self.positions,
            m.Out.REQ_ACCT_DATA: self.account_data,
            m.Out.REQ_ACCOUNT_UPDATES_MULTI: self.account_multi,
            m.Out.REQ_ACCOUNT_SUMMARY: self.account_summary,
            m.Out.REQ_MARKET_DATA_TYPE: self.market_data_type,
            m.Out.REQ_MKT_DATA: self.mkt_data,
            m.Out.CANCEL_MKT_DATA: self.cancel_mkt_data,
            m.Out.REQ_CURRENT_TIME: self.current_time,
            m.Out.REQ_MANAGED_ACCTS: self.managed_accounts,
        }

    # -- transport -------------------------------------------------------------------------------
    def send(self, fields: list[object]) -> None:
        if not self.writer.is_closing():
            self.writer.write(encode(fields))

    def close(self) -> None:
        self.writer.close()

    async def serve(self) -> None:
        try:
            await read_handshake(self.reader)
            connected = tws_time(self.state.clock())
            self.send([m.SERVER_VERSION, connected])
            while True:
                fields = await read_frame(self.reader)
                self.state.received.append(fields)
                handler = self.handlers.get(int(fields[0]))
                if handler is None:
                    log.debug("ib gateway: ignoring request %s", fields[0])
                    continue
                handler(fields)
                await self.writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ProtocolError, ValueError) as exc:
            log.debug("ib gateway: session of client %s ends: %r", self.client_id, exc)
        finally:
            if self in self.state.sessions:
                self.state.sessions.remove(self)
            self.writer.close()

    # -- requests --------------------------------------------------------------------------------
    @property
    def account_id(self) -> str:
        return self.state.account.account_id

    def start_api(self, f: list[str]) -> None:
        self.client_id = int(f[2])
        if any(s.client_id == self.client_id for s in self.state.sessions):
            self.send(m.error(-1, 326, "Unable to connect as the client id is already in use."))
            self.close()
            return
        self.state.sessions.append(self)
        self.send([m.In.NEXT_VALID_ID, 1, self.state.account.next_order_id])
        self.send([m.In.MANAGED_ACCTS, 1, self.account_id])
        for code, text in FARM_NOTICES:
            self.send(m.error(-1, code, text))

    def req_ids(self, _f: list[str]) -> None:
        self.send([m.In.NEXT_VALID_ID, 1, self.state.account.next_order_id])

    def managed_accounts(self, _f: list[str]) -> None:
        self.send([m.In.MANAGED_ACCTS, 1, self.account_id])

    def current_time(self, _f: list[str]) -> None:
        self.send([m.In.CURRENT_TIME, 1, int(self.state.clock().timestamp())])

    def contract_data(self, f: list[str]) -> None:
        req_id, contract = int(f[2]), m.parse_contract(f[3:15])
        stock = self.state.stock(contract.symbol)
        if stock is None or contract.sec_type not in ("STK", ""):
            self.send(m.error(req_id, 200, "No security definition has been found for the request"))
            return
        self.send(m.contract_details(req_id, stock))
        self.send([m.In.CONTRACT_DATA_END, 1, req_id])

    def place_order(self, f: list[str]) -> None:
        p = m.parse_place_order(f)
        acct = self.state.account
        stock = self.state.stock(p.contract.symbol)
        if stock is None:
            self.send(m.error(p.order_id, 200, "No security definition has been found"))
            return
        if p.account and p.account != acct.account_id:
            self.send(m.error(p.order_id, 321, f"Error validating request: account {p.account}"))
            return
        mine = [o for o in acct.orders.values() if o.client_id == self.client_id]
        if p.order_id < acct.next_order_id and any(o.order_id == p.order_id for o in mine):
            self.send(m.error(p.order_id, 103, "Duplicate order id"))
            return
        if p.quantity <= 0:
            self.send(m.error(p.order_id, 434, "The order size cannot be zero."))
            return
        behaviour = self.state.next_behaviour()
        if isinstance(behaviour, Reject):
            self.send(m.error(p.order_id, 201, f"Order rejected - reason:{behaviour.reason}"))
            return
        order = GatewayOrder(
            p.order_id, acct.next_perm_id, self.client_id, stock.symbol, p.action, p.quantity,
            p.order_type, p.limit_price, p.aux_price, p.tif or "DAY", p.order_ref,
            status="Submitted" if self.state.trading() else "PreSubmitted",
        )  # fmt: skip
        acct.next_perm_id += 1
        acct.next_order_id = max(acct.next_order_id, p.order_id + 1)
        acct.orders[order.perm_id] = order
        self.state.save()
        if isinstance(behaviour, Disconnect):
            price = self.state.prices.get(stock.symbol)
            if price is not None and self.state.trading():
                acct.apply(order, order.quantity, price, tws_time(self.state.clock()))
                self.state.save()
            for s in list(self.state.sessions):
                s.close()
            return
        self.send(m.open_order(order, stock, acct.account_id))
        self.send(m.order_status(order))
        self.state.start_order(order, behaviour)

    def _order(self, order_id: int) -> GatewayOrder | None:
        for o in self.state.account.orders.values():
            if o.order_id == order_id and o.client_id == self.client_id:
                return o
        return None

    def cancel_order(self, f: list[str]) -> None:
        order = self._order(int(f[2]))
        if order is None or order.done:
            self.send(
                m.error(int(f[2]), 10148, "OrderId that needs to be cancelled cannot be cancelled")
            )
            return
        self._cancel(order)

    def _cancel(self, order: GatewayOrder) -> None:
        order.status = "Cancelled"
        self.state.save()
        for s in self.state.sessions:
            s.send(m.order_status(order))
            if s.client_id == order.client_id:
                s.send(m.error(order.order_id, 202, "Order Canceled - reason:"))

    def global_cancel(self, _f: list[str]) -> None:
        for order in list(self.state.account.orders.values()):
            if not order.done:
                self._cancel(order)

    def open_orders(self, _f: list[str]) -> None:
        acct = self.state.account
        for order in acct.orders.values():
            if not order.done and order.client_id == self.client_id:
                self.send(m.open_order(order, self.state.stocks[order.symbol], acct.account_id))
                self.send(m.order_status(order))
        self.send([m.In.OPEN_ORDER_END, 1])

    def completed_orders(self, _f: list[str]) -> None:
        self.send([m.In.COMPLETED_ORDERS_END])  # completed orders are served by reqExecutions

    def executions(self, f: list[str]) -> None:
        req_id, acct = int(f[2]), self.state.account
        symbol = f[6]
        for ex in acct.executions:
            if symbol and ex.symbol != symbol:
                continue
            stock = self.state.stocks[ex.symbol]
            self.send(m.exec_details(req_id, ex, stock, acct.account_id))
            self.send(m.commission_report(ex, acct.currency))
        self.send([m.In.EXECUTION_DATA_END, 1, req_id])

    def positions(self, _f: list[str]) -> None:
        self.position_updates = True  # until cancelPositions: every change is sent
        for symbol in self.state.account.positions:
            self.send_position(symbol)
        self.send([m.In.POSITION_END, 1])

    def send_position(self, symbol: str) -> None:
        pos = self.state.account.positions.get(symbol)
        qty, avg = (pos.quantity, pos.avg_cost) if pos else (Decimal(0), Decimal(0))
        self.send(m.position(self.account_id, self.state.stocks[symbol], qty, avg))

    def _values(self) -> list[tuple[str, object, str]]:
        acct = self.state.account
        stocks = sum(
            (p.quantity * self.state.prices.get(s, p.avg_cost) for s, p in acct.positions.items()),
            Decimal(0),
        )
        net = acct.cash + stocks
        return [
            ("AccountType", "INDIVIDUAL", ""),
            ("TotalCashValue", acct.cash, acct.currency),
            ("CashBalance", acct.cash, acct.currency),
            ("NetLiquidation", net, acct.currency),
            ("GrossPositionValue", stocks, acct.currency),
            ("AvailableFunds", acct.cash, acct.currency),
            ("BuyingPower", acct.cash * 4, acct.currency),
        ]

    def account_data(self, f: list[str]) -> None:
        self.account_updates = f[2] == "1"
        if not self.account_updates:
            return
        for key, value, cur in self._values():
            self.send(m.account_value(key, value, cur, self.account_id))
        for symbol in self.state.account.positions:
            self.send_portfolio(symbol)
        self.send([m.In.ACCT_UPDATE_TIME, 1, self.state.clock().strftime("%H:%M")])
        self.send([m.In.ACCT_DOWNLOAD_END, 1, self.account_id])

    def send_portfolio(self, symbol: str) -> None:
        acct = self.state.account
        if self.position_updates:
            self.send_position(symbol)
        if not self.account_updates:
            return
        pos = acct.positions.get(symbol)
        stock = self.state.stocks[symbol]
        qty = pos.quantity if pos else Decimal(0)
        avg = pos.avg_cost if pos else Decimal(0)
        price = self.state.prices.get(symbol, avg)
        self.send(m.portfolio(stock, qty, price, avg, acct.account_id))
        for key, value, cur in self._values():
            self.send(m.account_value(key, value, cur, acct.account_id))

    def account_multi(self, f: list[str]) -> None:
        req_id = int(f[2])
        for key, value, cur in self._values():
            self.send([m.In.ACCOUNT_UPDATE_MULTI, 1, req_id, self.account_id, "", key, value, cur])
        self.send([m.In.ACCOUNT_UPDATE_MULTI_END, 1, req_id])

    def account_summary(self, f: list[str]) -> None:
        req_id = int(f[2])
        for key, value, cur in self._values():
            self.send([m.In.ACCOUNT_SUMMARY, 1, req_id, self.account_id, key, value, cur])
        self.send([m.In.ACCOUNT_SUMMARY_END, 1, req_id])

    def market_data_type(self, f: list[str]) -> None:
        self.data_type = int(f[2])

    def mkt_data(self, f: list[str]) -> None:
        req_id, contract = int(f[2]), m.parse_contract(f[3:15])
        stock = self.state.stock(contract.symbol)
        if stock is None:
            self.send(m.error(req_id, 200, "No security definition has been found for the request"))
            return
        self.tickers[req_id] = stock.symbol
        if self.delayed and self.data_type == 1:
            self.send(m.error(req_id, 10167, "Requested market data is not subscribed. "
                              "Displaying delayed market data."))  # fmt: skip
        self.send([m.In.TICK_REQ_PARAMS, req_id, stock.min_tick, "9c0001", 3])
        self.send_ticks(stock.symbol, only=req_id)

    @property
    def delayed(self) -> bool:
        """IB serves live data when the account has it, whatever type was asked for (type 3
        means "delayed if there is no live data"); delayed data otherwise."""
        return not self.state.realtime_data

    @property
    def serving_type(self) -> int:
        """The market data type served now: 1 live or 3 delayed; outside the regular session,
        to a client that asked for frozen data (type 2 or 4), the last price frozen (2 or 4)."""
        served = 3 if self.delayed else 1
        if self.data_type in (2, 4) and not self.state.trading():
            served += 1
        return served

    def cancel_mkt_data(self, f: list[str]) -> None:
        self.tickers.pop(int(f[2]), None)
        self.served.pop(int(f[2]), None)

    def send_ticks(self, symbol: str, only: int | None = None) -> None:
        price = self.state.prices.get(symbol)
        if price is None:
            return
        types = DELAYED_TICKS if self.delayed else LIVE_TICKS
        tick = self.state.stocks[symbol].min_tick
        served = self.serving_type
        for req_id, sym in self.tickers.items():
            if sym != symbol or (only is not None and req_id != only):
                continue
            if self.served.get(req_id) != served:  # TWS says so when the type changes
                self.served[req_id] = served
                self.send([m.In.MARKET_DATA_TYPE, 1, req_id, served])
            for tick_type, value in zip(types, (price - tick, price + tick, price), strict=True):
                self.send(m.tick_price(req_id, tick_type, value))
            at = self.state.clock() - (DELAY if self.delayed else timedelta(0))
            stamp = 88 if self.delayed else 45  # (delayed) last timestamp
            self.send([m.In.TICK_STRING, 6, req_id, stamp, int(at.timestamp())])
