"""The ledger: the only place where cash and holdings change."""

from __future__ import annotations

from collections.abc import Callable

from phantomex.domain.models import BUY_SIDE, SELL_SIDE, Deposit, Fill, Position, Wallet
from phantomex.domain.money import ZERO, is_valid_price, money_math


class LedgerError(ValueError):
    """A fill or deposit that would break a wallet invariant (and so was not applied)."""


#: Idempotency-key prefix of a settlement: a fee-free sell at a resolved market's payout.
SETTLEMENT_PREFIX = "settle:"


#: Called with the entry, the wallet before it and the wallet it produces, before the live wallet
#: is replaced. A store persists them in one transaction; if it raises, the live wallet stays.
CommitHook = Callable[[Fill | Deposit, Wallet, Wallet], None]


@money_math
def apply_fill(wallet: Wallet, fill: Fill) -> Wallet:
    """Return the wallet that results from ``fill``; ``wallet`` itself is not modified.

    Buys add notional plus fee to the position's cost basis. Sells remove the sold share of the
    cost basis and book ``proceeds - fee - removed basis`` as realized P&L."""
    new = wallet.copy()
    fill_into(new, fill)
    return new


def fill_into(wallet: Wallet, fill: Fill) -> None:
    """Apply ``fill`` to ``wallet`` itself (one of the caller's own, whose positions no other
    wallet shares), in the caller's :data:`MONEY_CONTEXT` (see :func:`apply_fill`). Every
    check comes before the first change: a LedgerError leaves the wallet as it was."""
    if fill.agent_id != wallet.agent_id:
        raise LedgerError(f"fill for agent {fill.agent_id} applied to wallet {wallet.agent_id}")
    if not fill.quantity.is_finite() or fill.quantity <= ZERO:
        raise LedgerError(f"fill quantity must be positive, got {fill.quantity}")
    if not is_valid_price(fill.price) and not (is_settlement(fill) and fill.price == ZERO):
        raise LedgerError(f"fill price must be positive, got {fill.price}")
    if not fill.fee.is_finite() or fill.fee < ZERO:
        raise LedgerError(f"fee must be zero or positive, got {fill.fee}")
    notional = fill.quantity * fill.price
    pos = wallet.positions.get(fill.symbol) or Position(fill.symbol)
    if fill.side is BUY_SIDE:
        cost = notional + fill.fee
        if cost > wallet.cash:
            raise LedgerError(f"buy costs {cost} but cash is {wallet.cash}")
        wallet.cash -= cost
        if pos.quantity == ZERO:
            pos.opened_at = fill.time
        pos.quantity += fill.quantity
        pos.cost += cost
    else:
        if fill.quantity > pos.quantity:
            raise LedgerError(
                f"sell of {fill.quantity} {fill.symbol} exceeds holding of {pos.quantity}"
            )
        proceeds = notional - fill.fee
        if proceeds < ZERO:
            raise LedgerError(f"fee {fill.fee} exceeds sale proceeds {notional}")
        removed = (
            pos.cost if fill.quantity == pos.quantity else pos.cost * fill.quantity / pos.quantity
        )
        wallet.cash += proceeds
        wallet.realized_pnl += proceeds - removed
        pos.quantity -= fill.quantity
        pos.cost -= removed
    wallet.version += 1
    wallet.fees_paid += fill.fee
    if pos.quantity == ZERO:
        wallet.positions.pop(fill.symbol, None)
    else:
        wallet.positions[fill.symbol] = pos


def is_settlement(fill: Fill) -> bool:
    """A payout of a resolved market (the only fill that may be priced 0: a losing outcome)."""
    return fill.side is SELL_SIDE and fill.idempotency_key.startswith(SETTLEMENT_PREFIX)


@money_math
def apply_deposit(wallet: Wallet, deposit: Deposit) -> Wallet:
    """Return the wallet after adding ``deposit`` (to the allowance when it is the initial one)."""
    if not deposit.amount.is_finite() or deposit.amount <= 0:
        raise LedgerError(f"deposit must be a positive amount, got {deposit.amount}")
    new = wallet.copy()
    new.version += 1
    new.cash += deposit.amount
    if deposit.initial:
        new.allowance += deposit.amount
    else:
        new.deposits += deposit.amount
    return new


class Ledger:
    """Holds the live wallets. ``apply`` and ``deposit`` are the only ways they change."""

    def __init__(self, on_commit: CommitHook | None = None) -> None:
        self._wallets: dict[str, Wallet] = {}
        self._on_commit = on_commit

    def open_wallet(
        self, allowance: Deposit, persist: Callable[[Wallet], None] | None = None
    ) -> Wallet:
        """Open a wallet funded with its allowance; ``persist`` stores it (with the agent)
        in one transaction before it goes live."""
        if allowance.agent_id in self._wallets:
            raise LedgerError(f"wallet for {allowance.agent_id} already exists")
        if not allowance.initial:
            raise LedgerError("a wallet opens with its allowance (an initial deposit)")
        wallet = apply_deposit(Wallet(agent_id=allowance.agent_id), allowance)
        if persist is not None:
            persist(wallet)
        self._wallets[wallet.agent_id] = wallet
        return wallet.copy()

    def restore(self, wallet: Wallet) -> None:
        """Load a wallet previously persisted by the store (on start-up)."""
        self._wallets[wallet.agent_id] = wallet.copy()

    def close_wallet(self, agent_id: str) -> None:
        self._wallets.pop(agent_id, None)

    def wallet(self, agent_id: str) -> Wallet:
        """A copy of the live wallet: callers cannot change it behind the ledger's back."""
        try:
            return self._wallets[agent_id].copy()
        except KeyError:
            raise LedgerError(f"no wallet for agent {agent_id}") from None

    def view(self, agent_id: str) -> Wallet:
        """The live wallet itself, for hot read-only paths (marking equity, planning events).
        The ledger never changes a wallet in place (each entry swaps in a new one), so it stays a
        consistent snapshot; callers must not modify it."""
        try:
            return self._wallets[agent_id]
        except KeyError:
            raise LedgerError(f"no wallet for agent {agent_id}") from None

    def has_wallet(self, agent_id: str) -> bool:
        return agent_id in self._wallets

    def agent_ids(self) -> list[str]:
        return list(self._wallets)

    def apply(self, fill: Fill) -> Wallet:
        """Apply a fill: validate, persist through the commit hook, then swap in the new wallet
        (returns a copy of it)."""
        return self.post(fill).copy()

    def post(self, fill: Fill) -> Wallet:
        """:meth:`apply`, returning the new live wallet itself (read-only, as :meth:`view`)."""
        new = apply_fill(self.view(fill.agent_id), fill)
        self._commit(fill, new)
        return new

    def deposit(self, deposit: Deposit) -> Wallet:
        new = apply_deposit(self.view(deposit.agent_id), deposit)
        self._commit(deposit, new)
        return new.copy()

    def _commit(self, entry: Fill | Deposit, new: Wallet) -> None:
        if self._on_commit is not None:
            self._on_commit(entry, self._wallets[new.agent_id], new)
        self._wallets[new.agent_id] = new
