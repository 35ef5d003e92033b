"""The IB Gateway stand-in at the socket level: the handshake and framing of the TWS API, and
what ib_async itself makes of the gateway's answers."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from ib_async import IB, Contract, MarketOrder, Stock
from ib_helpers import CLOSED, OPEN, Clock, gateway

from phantomex.devtools.ib_gateway import IBGateway, Partial

D = Decimal


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[IBGateway]:
    g = gateway(tmp_path / "account.json", Clock(OPEN))
    yield g
    g.stop()


def frame(text: str) -> bytes:
    return struct.pack(">I", len(text)) + text.encode()


def read_frame(sock: socket.socket) -> list[str]:
    size = struct.unpack(">I", _exactly(sock, 4))[0]
    return _exactly(sock, size).decode().split("\0")[:-1]


def _exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        assert chunk, "the gateway closed the connection"
        data += chunk
    return data


def test_handshake_and_start_api_on_the_wire(gw: IBGateway) -> None:
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(b"API\0" + frame("v157..178"))
        assert read_frame(sock) == ["176", "20261202 15:00:00 UTC"]  # version, connection time
        sock.sendall(frame("71\x002\x005\x00\x00"))  # startApi(clientId=5)
        assert read_frame(sock) == ["9", "1", "1"]  # nextValidId
        assert read_frame(sock) == ["15", "1", "DU1234567"]  # managedAccounts
        notice = read_frame(sock)
        assert notice[:4] == ["4", "2", "-1", "2104"]  # "Market data farm connection is OK"


def test_a_bad_handshake_is_dropped(gw: IBGateway) -> None:
    with socket.create_connection(("127.0.0.1", gw.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\n\r\n")
        assert sock.recv(10) == b""  # closed, no answer


def test_ib_async_reads_every_answer(gw: IBGateway) -> None:
    """Through ib_async's own client: contract details, an unknown contract (error 200), a
    partial fill with its commission reports, positions and account values, a second client
    id already in use (error 326)."""
    gw.set_price("AAPL", "187.25")

    async def session() -> None:
        ib = IB()
        await ib.connectAsync("127.0.0.1", gw.port, clientId=3, timeout=10)
        assert ib.client.serverVersion() == 176 and ib.managedAccounts() == ["DU1234567"]
        aapl, unknown = await ib.qualifyContractsAsync(
            Stock("AAPL", "SMART", "USD"), Stock("NOPE", "SMART", "USD")
        )
        assert isinstance(aapl, Contract) and aapl.conId == 265598
        assert aapl.primaryExchange == "NASDAQ"
        assert unknown is None
        gw.script(Partial(D(4)))
        trade = ib.placeOrder(aapl, MarketOrder("BUY", 10, orderRef="pxtest"))
        await _until(lambda: trade.orderStatus.filled == 4)
        assert trade.orderStatus.status == "Submitted" and trade.orderStatus.remaining == 6
        gw.set_price("AAPL", "187.5")
        await _until(lambda: trade.orderStatus.status == "Filled")
        await _until(lambda: all(f.commissionReport.execId for f in trade.fills))
        assert [(f.execution.shares, f.execution.price) for f in trade.fills] == [
            (4.0, 187.25),
            (6.0, 187.5),
        ]
        assert [f.commissionReport.commission for f in trade.fills] == [1.0, 1.0]
        assert {f.execution.orderRef for f in trade.fills} == {"pxtest"}
        await _until(lambda: bool(ib.positions()))
        (pos,) = ib.positions()
        assert pos.position == 10
        cash = {v.tag: v.value for v in ib.accountValues() if v.currency == "USD"}
        assert cash["TotalCashValue"] == "98124.00"  # 100000 - 749 - 1125 - 2 commissions
        other = IB()
        with pytest.raises((ConnectionError, asyncio.TimeoutError, TimeoutError)):
            await other.connectAsync("127.0.0.1", gw.port, clientId=3, timeout=3)
        ib.disconnect()

    asyncio.run(session())
    acct = gw.account()
    assert acct.cash == D("98124.00") and acct.positions["AAPL"].quantity == 10


async def _until(done: object, seconds: float = 20) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not done():  # type: ignore[operator]
        assert loop.time() < deadline, "the gateway never answered"
        await asyncio.sleep(0.02)


def test_an_order_after_the_close_works_from_the_open(tmp_path: Path) -> None:
    """Like IB: a DAY market order sent outside the regular session is accepted (PreSubmitted)
    and executes at the first price of the next session."""
    clock = Clock(CLOSED)
    g = gateway(tmp_path / "account.json", clock)
    try:
        g.set_price("AAPL", "187.25")

        async def session() -> None:
            ib = IB()
            await ib.connectAsync("127.0.0.1", g.port, clientId=4, timeout=10)
            (aapl,) = await ib.qualifyContractsAsync(Stock("AAPL", "SMART", "USD"))
            assert isinstance(aapl, Contract)
            trade = ib.placeOrder(aapl, MarketOrder("BUY", 3))
            await _until(lambda: trade.orderStatus.status == "PreSubmitted")
            g.set_price("AAPL", "187.30")  # still closed: nothing happens
            clock.now = CLOSED + timedelta(hours=17)  # Thursday 10:00 New York
            g.set_price("AAPL", "186.90")
            await _until(lambda: trade.orderStatus.status == "Filled")
            assert trade.orderStatus.avgFillPrice == 186.9
            ib.disconnect()

        asyncio.run(session())
    finally:
        g.stop()
