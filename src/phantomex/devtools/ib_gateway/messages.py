"""Messages of the TWS API at the server version the stand-in speaks (176), field for field as
ib_async's decoder reads them (``ib_async/decoder.py``), and the requests it parses (as
``ib_async/client.py`` writes them). Incoming ids are the API's ``OUT`` codes, outgoing its
``IN`` codes."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from phantomex.devtools.ib_gateway.account import Execution, GatewayOrder

__all__ = [
    "SERVER_VERSION",
    "Contract",
    "In",
    "Out",
    "Stock",
    "account_value",
    "commission_report",
    "contract_details",
    "error",
    "exec_details",
    "open_order",
    "order_status",
    "parse_contract",
    "parse_place_order",
    "portfolio",
    "position",
    "tick_price",
]

SERVER_VERSION = 176
UNSET = ""  # IB writes an unset double as an empty field when the client asked so


class Out:
    """Request ids the client sends (``EClient``)."""

    REQ_MKT_DATA, CANCEL_MKT_DATA, PLACE_ORDER, CANCEL_ORDER, REQ_OPEN_ORDERS = 1, 2, 3, 4, 5
    REQ_ACCT_DATA, REQ_EXECUTIONS, REQ_IDS, REQ_CONTRACT_DATA = 6, 7, 8, 9
    REQ_AUTO_OPEN_ORDERS, REQ_ALL_OPEN_ORDERS, REQ_MANAGED_ACCTS = 15, 16, 17
    REQ_GLOBAL_CANCEL, REQ_CURRENT_TIME, REQ_MARKET_DATA_TYPE = 58, 49, 59
    REQ_POSITIONS, REQ_ACCOUNT_SUMMARY, CANCEL_ACCOUNT_SUMMARY, CANCEL_POSITIONS = 61, 62, 63, 64
    REQ_ACCOUNT_UPDATES_MULTI, CANCEL_ACCOUNT_UPDATES_MULTI = 76, 77
    START_API, REQ_COMPLETED_ORDERS = 71, 99


class In:
    """Message ids the server sends (``EDecoder``)."""

    TICK_PRICE, TICK_SIZE, ORDER_STATUS, ERR_MSG, OPEN_ORDER, ACCT_VALUE = 1, 2, 3, 4, 5, 6
    PORTFOLIO_VALUE, ACCT_UPDATE_TIME, NEXT_VALID_ID, CONTRACT_DATA, EXECUTION_DATA = (
        7,
        8,
        9,
        10,
        11,
    )
    MANAGED_ACCTS, TICK_STRING, CURRENT_TIME, CONTRACT_DATA_END, OPEN_ORDER_END = 15, 46, 49, 52, 53
    ACCT_DOWNLOAD_END, EXECUTION_DATA_END, MARKET_DATA_TYPE, COMMISSION_REPORT = 54, 55, 58, 59
    POSITION_DATA, POSITION_END, ACCOUNT_SUMMARY, ACCOUNT_SUMMARY_END = 61, 62, 63, 64
    ACCOUNT_UPDATE_MULTI, ACCOUNT_UPDATE_MULTI_END, TICK_REQ_PARAMS = 73, 74, 81
    COMPLETED_ORDERS_END = 102


@dataclass(frozen=True, slots=True)
class Contract:
    """The 12 contract fields ib_async writes (``conId`` .. ``tradingClass``)."""

    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str


@dataclass(frozen=True, slots=True)
class Stock:
    """A stock the gateway knows (its contract details)."""

    con_id: int
    symbol: str
    primary_exchange: str
    long_name: str
    currency: str = "USD"
    min_tick: Decimal = Decimal("0.01")

    def fields(self, exchange: str = "SMART") -> list[object]:
        """The contract as openOrder / position / execDetails write it (after conId)."""
        return [self.symbol, "STK", "", 0, "", "", exchange, self.currency, self.symbol, "NMS"]


def parse_contract(fields: list[str]) -> Contract:
    """The 12 contract fields of a request, from ``conId``."""
    con_id = int(fields[0] or 0)
    return Contract(con_id, fields[1], fields[2], fields[7], fields[8], fields[9])


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    order_id: int
    contract: Contract
    action: str
    quantity: Decimal
    order_type: str
    limit_price: Decimal | None
    aux_price: Decimal | None
    tif: str
    account: str
    order_ref: str


def _dec(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def parse_place_order(fields: list[str]) -> PlaceOrder:
    """The order fields of PLACE_ORDER (no version field since server version 145)."""
    contract = parse_contract(fields[2:14])
    action, qty, kind, lmt, aux, tif, _oca, account, _oc, _origin, ref = fields[16:27]
    return PlaceOrder(
        int(fields[1]),
        contract,
        action,
        Decimal(qty),
        kind,
        _dec(lmt),
        _dec(aux),
        tif,
        account,
        ref,
    )


# -- outgoing ------------------------------------------------------------------------------------
def error(req_id: int, code: int, text: str) -> list[object]:
    return [In.ERR_MSG, 2, req_id, code, text, ""]  # advancedOrderRejectJson since 166


def order_status(o: GatewayOrder) -> list[object]:
    return [
        In.ORDER_STATUS, o.order_id, o.status, o.filled, o.remaining, o.avg_price, o.perm_id,
        0, o.last_price, o.client_id, "", "",
    ]  # fmt: skip


def open_order(o: GatewayOrder, stock: Stock, account: str) -> list[object]:
    """OPEN_ORDER as the decoder's ``openOrder`` unpacks it at server version 176."""
    lmt = o.limit_price if o.limit_price is not None else UNSET
    aux = o.aux_price if o.aux_price is not None else UNSET
    head: list[object] = [In.OPEN_ORDER, o.order_id, stock.con_id, *stock.fields()]
    head += [o.action, o.quantity, o.order_type, lmt, aux, o.tif, "", account, "O", 0, o.order_ref]
    head += [o.client_id, o.perm_id, 0, 0, 0, "", "", "", "", ""]  # ..goodAfterTime, _, fa*
    head += [""]  # faProfile (< 177)
    head += ["", "", "", "", "", 0, "", 0, 0, "", "", "", "", ""]  # modelCode .. stockRangeUpper
    head += ["", 0, 0, 0, "", 0, 0, 0, "", 0, 0, "", 0, "", ""]  # displaySize .. deltaNeutral*
    head += [0, 0, "", "", "", "", ""]  # continuousUpdate .. comboLegsDescrip
    head += [0, 0, 0]  # combo legs, order combo legs, smart combo routing params
    head += ["", "", ""]  # scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement
    head += [""]  # hedgeType
    head += [0, "", "", 0, 0]  # optOutSmartRouting, clearingAccount/Intent, notHeld, dnc
    head += [""]  # algoStrategy
    head += [0, 0, o.status] + [""] * 9 + ["", "", "", "USD", ""]  # solicited .. warningText
    head += [0, 0]  # randomizeSize, randomizePrice
    head += [0]  # conditions
    head += ["", "", "", "", "", "", "", 0, "", "", "", "", 0, 0, "", 0]  # adjusted* .. priceMgmt
    head += ["", 0, 0]  # duration (159), postToAts (160), autoCancelParent (162)
    head += ["", "", "", "", ""]  # minTradeQty .. midOffsetAtHalf (170)
    return head


def exec_details(req_id: int, ex: Execution, stock: Stock, account: str) -> list[object]:
    return [
        In.EXECUTION_DATA, req_id, ex.order_id, stock.con_id, *stock.fields(), ex.exec_id,
        ex.time, account, "ISLAND", ex.side, ex.shares, ex.price, ex.perm_id, ex.client_id, 0,
        ex.cum_qty, ex.avg_price, ex.order_ref, "", "", "", 1,
    ]  # fmt: skip


def commission_report(ex: Execution, currency: str) -> list[object]:
    return [In.COMMISSION_REPORT, 1, ex.exec_id, ex.commission, currency, "", "", ""]


def position(account: str, stock: Stock, qty: Decimal, avg_cost: Decimal) -> list[object]:
    return [In.POSITION_DATA, 3, account, stock.con_id, *stock.fields(""), qty, avg_cost]


def portfolio(
    stock: Stock, qty: Decimal, price: Decimal, avg_cost: Decimal, account: str
) -> list[object]:
    """PORTFOLIO_VALUE: exactly the 20 fields ``updatePortfolio`` unpacks."""
    value = qty * price
    unrealized = value - qty * avg_cost
    return [
        In.PORTFOLIO_VALUE, 8, stock.con_id, stock.symbol, "STK", "", 0, "", "",
        stock.primary_exchange, stock.currency, stock.symbol, "NMS", qty, price, value, avg_cost,
        unrealized, 0, account,
    ]  # fmt: skip


def account_value(key: str, value: object, currency: str, account: str) -> list[object]:
    return [In.ACCT_VALUE, 2, key, value, currency, account]


def contract_details(req_id: int, stock: Stock) -> list[object]:
    """CONTRACT_DATA as ``contractDetails`` unpacks it at server version >= 164."""
    return [
        In.CONTRACT_DATA, req_id, stock.symbol, "STK", "", 0, "", "SMART", stock.currency,
        stock.symbol, "NMS", "NMS", stock.con_id, stock.min_tick, "",
        "ACTIVETIM,AD,ALERT,ALLOC,LMT,MKT,STP", f"SMART,{stock.primary_exchange}", 1, 0,
        stock.long_name, stock.primary_exchange, "", "Technology", "Computers", "Computers",
        "US/Eastern", "", "", "", "", 0, 1, "", "", "26", "", "COMMON", "1", "1", "100",
    ]  # fmt: skip


def tick_price(req_id: int, tick_type: int, price: Decimal, size: int = 100) -> list[object]:
    return [In.TICK_PRICE, 6, req_id, tick_type, price, size, 0]
