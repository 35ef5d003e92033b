"""The stand-in served on a loopback port from a background thread (its own event loop)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

from phantomex.devtools.ib_gateway.account import Account
from phantomex.devtools.ib_gateway.behaviour import Behaviour
from phantomex.devtools.ib_gateway.session import Session
from phantomex.devtools.ib_gateway.state import GatewayState

__all__ = ["IBGateway"]

T = TypeVar("T")


class IBGateway:
    """A paper account behind the TWS socket API::

        with IBGateway(tmp_path / "account.json") as gw:
            gw.set_price("AAPL", "187.25")
            gw.script(Partial(Decimal(2)), Disconnect())
            ib.connect("127.0.0.1", gw.port, clientId=1)
            gw.restart()          # same port, same account (from the file)

    The account (cash, positions, orders, executions, the next order id) lives in ``path``,
    so a restarted gateway - or a new one on the same file - serves the same account."""

    def __init__(
        self,
        path: Path,
        *,
        account: str = "DU1234567",
        cash: Decimal | str = "100000",
        host: str = "127.0.0.1",
        port: int = 0,
        realtime_data: bool = False,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.path, self.host, self.port = path, host, port
        self.state = GatewayState.open(path, account, Decimal(cash))
        self.state.realtime_data = realtime_data
        if clock is not None:
            self.state.clock = clock
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> IBGateway:
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            ready.set()
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="ib-gateway", daemon=True)
        self._thread.start()
        ready.wait()
        self._loop = loop
        self._server = self._call(self._listen())
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _listen(self) -> asyncio.Server:
        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await Session(self.state, reader, writer).serve()

        return await asyncio.start_server(on_client, self.host, self.port, reuse_address=True)

    def stop(self) -> None:
        """Close the port and every connection; the account stays in its file."""
        if self._loop is None:
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        self._loop.close()
        self._loop = None

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        for s in list(self.state.sessions):
            s.close()
        await self._server.wait_closed()
        self.state.save()

    def restart(self) -> None:
        """Stop, then serve the account again from its file on the same port."""
        received, clock, realtime = self.state.received, self.state.clock, self.state.realtime_data
        prices, script = dict(self.state.prices), self.state.script
        self.stop()
        self.state = GatewayState.open(self.path, "", Decimal(0))
        self.state.received, self.state.clock, self.state.realtime_data = received, clock, realtime
        self.state.prices, self.state.script = prices, script
        self.start()

    def __enter__(self) -> IBGateway:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- control (thread-safe) -------------------------------------------------------------------
    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def _do(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            result = fn()
            for s in list(self.state.sessions):
                if not s.writer.is_closing():
                    await s.writer.drain()
            return result

        return self._call(run())

    def set_price(self, symbol: str, price: Decimal | str) -> None:
        """The market moves: working orders it crosses fill, subscribers get ticks."""
        self._do(lambda: self.state.on_price(symbol.upper(), Decimal(price)))

    def script(self, *behaviours: Behaviour) -> None:
        """What to do with the next orders, one behaviour each (then: fill at once)."""
        self._do(lambda: self.state.script.extend(behaviours))

    def drop_connections(self) -> None:
        """Close every client connection (a network break; the gateway keeps running)."""

        def drop() -> None:
            for s in list(self.state.sessions):
                s.close()

        self._do(drop)

    def account(self) -> Account:
        """A copy of the account as it is now."""

        def snapshot() -> Account:
            self.state.save()
            return Account.load(self.path)

        return self._do(snapshot)

    def requests(self, message_id: int) -> list[list[str]]:
        """The requests received with this message id (e.g. 3: placeOrder)."""
        return self._do(lambda: [f for f in self.state.received if f[0] == str(message_id)])

    @property
    def connected_clients(self) -> list[int]:
        return self._do(lambda: [s.client_id for s in self.state.sessions])
