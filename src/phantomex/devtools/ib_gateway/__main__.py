"""``python -m phantomex.devtools.ib_gateway``: serve a paper account in the foreground.

    python -m phantomex.devtools.ib_gateway --port 4002 --state ib-account.json \\
        --price AAPL=187.25 --price MSFT=421.10
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from pathlib import Path

from phantomex.devtools.ib_gateway.server import IBGateway


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m phantomex.devtools.ib_gateway")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4002, help="IB Gateway's paper port")
    parser.add_argument("--state", type=Path, default=Path("ib-account.json"))
    parser.add_argument("--account", default="DU1234567", help="a new account's id")
    parser.add_argument("--cash", default="100000", help="a new account's cash (USD)")
    parser.add_argument("--price", action="append", default=[], help="SYMBOL=PRICE")
    parser.add_argument("--realtime", action="store_true", help="serve live, not delayed, data")
    args = parser.parse_args(argv)
    gw = IBGateway(
        args.state,
        account=args.account,
        cash=args.cash,
        host=args.host,
        port=args.port,
        realtime_data=args.realtime,
    )
    with gw:
        for item in args.price:
            symbol, _, price = item.partition("=")
            gw.set_price(symbol, price)
        print(f"IB Gateway stand-in on {args.host}:{gw.port}, account in {args.state}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
