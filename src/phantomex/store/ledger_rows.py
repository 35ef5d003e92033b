"""Writing a ledger entry with the wallet it produced, and reading wallets back."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, delete, insert, select, update

from phantomex.domain.models import Deposit, Fill, OrderStatus, Position, Side, Wallet
from phantomex.store.tables import DECISIONS, DEPOSITS, ORDERS, POSITIONS, TRADES, WALLETS
from phantomex.store.upsert import upsert


def write_entry(
    conn: Connection, entry: Fill | Deposit, wallet: Wallet, realized: Decimal | None = None
) -> None:
    """Insert a fill (marking its decision and order) or a deposit, and the wallet it made."""
    if isinstance(entry, Fill):
        conn.execute(
            insert(TRADES),
            [
                {
                    "agent_id": entry.agent_id,
                    "seq": wallet.version,
                    "decision_id": entry.decision_id,
                    "order_id": entry.order_id,
                    "symbol": entry.symbol,
                    "side": entry.side.value,
                    "quantity": entry.quantity,
                    "price": entry.price,
                    "fee": entry.fee,
                    "realized_pnl": realized if entry.side is Side.SELL else None,
                    "reasoning": entry.reasoning,
                    "idempotency_key": entry.idempotency_key,
                    "time": entry.time,
                }
            ],
        )
        if entry.decision_id:
            conn.execute(
                update(DECISIONS)
                .where(DECISIONS.c.id == entry.decision_id)
                .values(status="executed", price=entry.price, resolved_at=entry.time)
            )
        if entry.order_id:
            conn.execute(
                update(ORDERS)
                .where(ORDERS.c.id == entry.order_id)
                .values(status=OrderStatus.FILLED.value)
            )
    else:
        conn.execute(
            insert(DEPOSITS),
            [
                {
                    "agent_id": entry.agent_id,
                    "seq": wallet.version,
                    "amount": entry.amount,
                    "initial": entry.initial,
                    "idempotency_key": entry.idempotency_key,
                    "time": entry.time,
                }
            ],
        )
    upsert(
        conn,
        WALLETS,
        [
            {
                "agent_id": wallet.agent_id,
                "allowance": wallet.allowance,
                "cash": wallet.cash,
                "deposits": wallet.deposits,
                "realized_pnl": wallet.realized_pnl,
                "fees_paid": wallet.fees_paid,
                "version": wallet.version,
            }
        ],
        ("agent_id",),
    )
    conn.execute(delete(POSITIONS).where(POSITIONS.c.agent_id == wallet.agent_id))
    positions = [
        {
            "agent_id": wallet.agent_id,
            "symbol": pos.symbol,
            "quantity": pos.quantity,
            "cost": pos.cost,
            "opened_at": pos.opened_at,
        }
        for pos in wallet.positions.values()
    ]
    if positions:
        conn.execute(insert(POSITIONS), positions)


def read_wallets(conn: Connection) -> dict[str, Wallet]:
    """Every stored wallet with its positions."""
    wallets = {
        w.agent_id: Wallet(
            agent_id=w.agent_id,
            allowance=w.allowance,
            cash=w.cash,
            deposits=w.deposits,
            realized_pnl=w.realized_pnl,
            fees_paid=w.fees_paid,
            version=w.version,
        )
        for w in conn.execute(select(WALLETS))
    }
    for p in conn.execute(select(POSITIONS)):
        if p.agent_id in wallets:
            wallets[p.agent_id].positions[p.symbol] = Position(
                p.symbol, p.quantity, p.cost, p.opened_at
            )
    return wallets
