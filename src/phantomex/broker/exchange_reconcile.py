"""Compare the ledger with an exchange account: balances and open orders. Report, never adjust.

The agents on one venue share its account, so their wallets are added up: cash against the
quote currency (USDT), each position against its base asset. ``short`` means the ledger holds
more than the exchange does (the agents count on funds that aren't there); ``surplus`` means the
account holds more than the agents' wallets (funds not assigned to any agent)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from phantomex.broker.venues import CLIENT_ID_PREFIX
from phantomex.domain.models import Wallet
from phantomex.domain.money import ZERO, to_decimal

if TYPE_CHECKING:
    from phantomex.broker.ccxt_broker import CcxtBroker


@dataclass(frozen=True, slots=True)
class AssetCheck:
    asset: str
    ledger: Decimal
    exchange: Decimal

    @property
    def difference(self) -> Decimal:
        return self.exchange - self.ledger

    @property
    def status(self) -> str:
        if self.difference == 0:
            return "ok"
        return "short" if self.difference < 0 else "surplus"


@dataclass
class VenueReport:
    venue: str
    agents: list[str]
    assets: list[AssetCheck] = field(default_factory=list)
    open_orders: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    @property
    def differences(self) -> list[AssetCheck]:
        return [a for a in self.assets if a.status != "ok"]

    @property
    def clean(self) -> bool:
        return self.error is None and not self.differences and not self.open_orders

    def lines(self) -> list[str]:
        """One human-readable line per finding."""
        if self.error:
            return [f"{self.venue}: could not reconcile: {self.error}"]
        out = [
            f"{self.venue}: {a.asset} ledger {a.ledger} vs exchange {a.exchange} "
            f"({a.status} {a.difference:+})"
            for a in self.differences
        ]
        out += [
            f"{self.venue}: open order {o['id']} {o['side']} {o['amount']} {o['symbol']} "
            f"({'placed by PhantomEx' if o['ours'] else 'not placed by PhantomEx'}) "
            "is not in the ledger"
            for o in self.open_orders
        ]
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "venue": self.venue,
            "agents": self.agents,
            "clean": self.clean,
            "error": self.error,
            "assets": [
                {
                    "asset": a.asset,
                    "ledger": str(a.ledger),
                    "exchange": str(a.exchange),
                    "difference": str(a.difference),
                    "status": a.status,
                }
                for a in self.assets
            ],
            "open_orders": self.open_orders,
            "findings": self.lines(),
        }


def ledger_totals(wallets: list[Wallet], quote: str) -> dict[str, Decimal]:
    totals: dict[str, Decimal] = {quote: sum((w.cash for w in wallets), ZERO)}
    for wallet in wallets:
        for sym, pos in wallet.positions.items():
            totals[sym.upper()] = totals.get(sym.upper(), ZERO) + pos.quantity
    return totals


def reconcile_venue(broker: CcxtBroker, wallets: list[Wallet]) -> VenueReport:
    """Fetch the account's balances and open orders and compare them with ``wallets``."""
    report = VenueReport(broker.venue.name, sorted(w.agent_id for w in wallets))
    try:
        balance = broker.client.fetch_balance()
        broker.client.options["warnOnFetchOpenOrdersWithoutSymbol"] = False
        orders = broker.client.fetch_open_orders()
    except Exception as exc:  # a report, not a crash: the error is the finding
        report.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        return report
    totals = balance.get("total") or {}
    exchange = {str(k).upper(): to_decimal(v) for k, v in totals.items() if v is not None}
    ledger = ledger_totals(wallets, broker.quote)
    for asset in sorted(set(ledger) | {a for a, v in exchange.items() if v != 0}):
        report.assets.append(AssetCheck(asset, ledger.get(asset, ZERO), exchange.get(asset, ZERO)))
    for o in orders:
        cid = str(o.get("clientOrderId") or "")
        report.open_orders.append(
            {
                "id": str(o.get("id")),
                "client_order_id": cid,
                "symbol": o.get("symbol"),
                "side": o.get("side"),
                "type": o.get("type"),
                "amount": str(o.get("amount")),
                "price": None if o.get("price") is None else str(o.get("price")),
                "ours": cid.startswith(CLIENT_ID_PREFIX),
            }
        )
    return report
