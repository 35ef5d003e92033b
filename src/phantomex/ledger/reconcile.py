"""Reconciliation: rebuild every wallet from its stored fills and deposits and compare."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from phantomex.domain.models import Deposit, Fill, Wallet
from phantomex.domain.money import money_math
from phantomex.ledger.ledger import LedgerError, apply_deposit, fill_into


@dataclass(frozen=True, slots=True)
class Mismatch:
    agent_id: str
    field: str
    expected: str  # rebuilt from the history
    actual: str  # the wallet being checked

    def __str__(self) -> str:
        return f"agent {self.agent_id}: {self.field} is {self.actual}, history says {self.expected}"


@money_math
def rebuild(agent_id: str, entries: Iterable[Fill | Deposit]) -> Wallet:
    """Replay ``entries`` (in the order they were applied) onto an empty wallet (the fills
    in place, as :func:`apply_fill` applies each to a copy)."""
    wallet = Wallet(agent_id=agent_id)
    for entry in entries:
        if isinstance(entry, Fill):
            fill_into(wallet, entry)
        else:
            wallet = apply_deposit(wallet, entry)
    return wallet


def compare(expected: Wallet, actual: Wallet) -> list[Mismatch]:
    """Every field (and every position) in which ``actual`` differs from ``expected``."""
    out: list[Mismatch] = []
    aid = actual.agent_id
    for name in ("allowance", "cash", "deposits", "realized_pnl", "fees_paid", "version"):
        e, a = getattr(expected, name), getattr(actual, name)
        if e != a:
            out.append(Mismatch(aid, name, str(e), str(a)))
    for sym in sorted(set(expected.positions) | set(actual.positions)):
        ep, ap = expected.positions.get(sym), actual.positions.get(sym)
        for name in ("quantity", "cost"):
            e = getattr(ep, name) if ep else 0
            a = getattr(ap, name) if ap else 0
            if e != a:
                out.append(Mismatch(aid, f"{sym}.{name}", str(e), str(a)))
    return out


def reconcile(
    wallets: dict[str, Wallet],
    entries: dict[str, list[Fill | Deposit]],
    *others: dict[str, Wallet],
) -> list[Mismatch]:
    """Check each wallet against its history; a wallet or a history alone is a mismatch. Each
    of ``others`` (more sets of wallets: the stored ones beside the live ones) is checked the
    same way, against the same rebuild, its mismatches after those of the sets before it."""
    sets = (wallets, *others)
    found: list[list[Mismatch]] = [[] for _ in sets]
    agents = sorted(set(entries).union(*sets))
    for agent_id in agents:
        try:
            expected: Wallet | None = rebuild(agent_id, entries.get(agent_id, []))
            problem = None
        except LedgerError as exc:
            expected, problem = None, Mismatch(agent_id, "history", "a valid history", str(exc))
        for out, checked in zip(found, sets, strict=True):
            if agent_id not in checked and agent_id not in entries:
                continue  # an agent of another set only
            if expected is None:
                assert problem is not None
                out.append(problem)
                continue
            actual = checked.get(agent_id)
            if actual is None:
                out.append(Mismatch(agent_id, "wallet", "present", "missing"))
                continue
            out.extend(compare(expected, actual))
    return [m for out in found for m in out]
