"""Settlement of resolved markets: every position in a resolved outcome token is paid out.

A settlement is a recorded, fee-free sell of the whole position at the payout (1 for the winning
outcome, 0 for a losing one) applied through the :class:`Ledger`, so it is stored with the
wallet in one transaction and rebuilds exactly in a reconciliation. Its idempotency key
(``settle:<agent>:<symbol>:<wallet version>``) makes a repeated call a no-op."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from phantomex.domain.models import Fill, Side, Wallet
from phantomex.domain.money import ONE, ZERO
from phantomex.ledger.ledger import SETTLEMENT_PREFIX, Ledger, LedgerError

__all__ = ["settle_resolved", "settlement_fills"]


def settlement_fills(wallet: Wallet, payouts: Mapping[str, Decimal], now: datetime) -> list[Fill]:
    """The settlement of each position of ``wallet`` in a token of ``payouts`` (symbol ->
    payout in [0, 1])."""
    fills: list[Fill] = []
    for symbol, pos in sorted(wallet.positions.items()):
        payout = payouts.get(symbol)
        if payout is None or pos.quantity <= 0:
            continue
        if not ZERO <= payout <= ONE:
            raise LedgerError(f"payout of {symbol} must be within [0, 1], got {payout}")
        fills.append(
            Fill(
                agent_id=wallet.agent_id,
                symbol=symbol,
                side=Side.SELL,
                quantity=pos.quantity,
                price=payout,
                fee=ZERO,
                time=now,
                idempotency_key=f"{SETTLEMENT_PREFIX}{wallet.agent_id}:{symbol}:{wallet.version}",
                reasoning=f"settlement: {symbol} resolved, paid {payout} per share",
            )
        )
    return fills


def settle_resolved(ledger: Ledger, payouts: Mapping[str, Decimal], now: datetime) -> list[Fill]:
    """Settle every wallet's positions in resolved tokens; returns the fills applied.

    Call it once per tick after the prices are taken (``payouts`` from the feed's
    ``resolutions()``); it does nothing when no wallet holds a resolved token."""
    applied: list[Fill] = []
    if not payouts:
        return applied
    for agent_id in ledger.agent_ids():
        for fill in settlement_fills(ledger.wallet(agent_id), payouts, now):
            ledger.apply(fill)
            applied.append(fill)
    return applied
