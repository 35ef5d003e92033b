"""A fill posted for a hot path (:meth:`Ledger.post`: the live wallet back, no copy) and the
audit's in-place rebuild (:func:`fill_into`) give what :meth:`Ledger.apply` and
:func:`apply_fill` give; a refused fill changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from phantomex.domain.models import Deposit, Fill, Side, Wallet
from phantomex.ledger.ledger import Ledger, LedgerError, apply_deposit, apply_fill, fill_into
from phantomex.ledger.reconcile import rebuild

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def fill(n: int, side: str, qty: str, price: str, fee: str = "0.1") -> Fill:
    return Fill("a1", "BTC", Side(side), Decimal(qty), Decimal(price), Decimal(fee),
                T0 + timedelta(minutes=n), f"k{n}")  # fmt: skip


FILLS = [fill(1, "buy", "0.5", "100"), fill(2, "buy", "0.25", "120.5"),
         fill(3, "sell", "0.3", "110", "0.07"), fill(4, "sell", "0.45", "130")]  # fmt: skip
ALLOWANCE = Deposit("a1", Decimal(1000), T0, "k0", initial=True)


def test_post_and_apply_give_the_same_wallets_post_the_live_one() -> None:
    posting, applying = Ledger(), Ledger()
    for ledger in (posting, applying):
        ledger.open_wallet(ALLOWANCE)
    for f in FILLS:
        before = posting.view("a1")
        live = posting.post(f)
        copy = applying.apply(f)
        assert live is posting.view("a1") and live is not before
        assert copy == live and copy is not applying.view("a1")
    assert posting.view("a1").version == 5


def test_the_rebuild_in_place_is_the_chain_of_copies() -> None:
    wallet = apply_deposit(Wallet("a1"), ALLOWANCE)
    for f in FILLS:
        wallet = apply_fill(wallet, f)
    assert rebuild("a1", [ALLOWANCE, *FILLS]) == wallet


def test_a_refused_fill_leaves_the_wallet_as_it_was() -> None:
    wallet = apply_fill(apply_deposit(Wallet("a1"), ALLOWANCE), FILLS[0])
    before = wallet.copy()
    for bad in (fill(9, "sell", "5", "100"), fill(9, "buy", "100", "100"),
                fill(9, "sell", "0.1", "100", "50")):  # fmt: skip
        with pytest.raises(LedgerError):
            fill_into(wallet, bad)
        assert wallet == before
