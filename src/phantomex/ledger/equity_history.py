"""An agent's equity over time, rebuilt from its stored ledger entries and the stored prices.

The equity at a time ``t`` is the wallet after every entry up to ``t`` (replayed in the order
the ledger applied them) with its holdings marked at each symbol's latest valid price at or
before ``t`` (at cost while none is known, as :meth:`Wallet.holdings_value` does). ``funding``
is the allowance plus the deposits up to ``t``: a return on funding does not count a deposit as
profit.

Equity is sampled at evenly spaced times (so a long history costs about as much as a short one)
and at every deposit in the range (so each deposit has its own point, right after it)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from phantomex.domain.models import Deposit, Fill, Wallet
from phantomex.domain.money import is_valid_price
from phantomex.ledger.ledger import apply_deposit, apply_fill

__all__ = ["EquityPoint", "compress", "equity_points", "sample_times", "valid_marks"]


@dataclass(frozen=True, slots=True)
class EquityPoint:
    time: datetime
    equity: Decimal
    funding: Decimal  # allowance + deposits so far: what was put in


def sample_times(
    since: datetime, until: datetime, points: int, extra: Iterable[datetime] = ()
) -> list[datetime]:
    """``since``, ``until``, the ``extra`` times between them and at most ``points`` times in
    between on a lattice: the multiples (since the epoch) of the smallest power-of-two number of
    seconds that keeps them within ``points``. Sorted, without repeats.

    On the lattice, histories of similar length share their sample times, so one price lookup
    per symbol and time serves every agent whose history starts about the same time."""
    if until < since:
        return []
    span = (until - since).total_seconds()
    step = 2 ** max(0, math.ceil(math.log2(span / points))) if span > 0 else 1
    first = math.ceil(since.timestamp() / step)
    last = math.floor(until.timestamp() / step)
    grid = {datetime.fromtimestamp(k * step, UTC) for k in range(first, last + 1)}
    grid |= {since, until}
    grid.update(t for t in extra if since <= t <= until)
    return sorted(grid)


def valid_marks(prices: Sequence[Decimal | None]) -> list[Decimal | None]:
    """Prices that fail validation are replaced by the last valid one before them (the kernel
    never marks at an invalid price either)."""
    out: list[Decimal | None] = []
    last: Decimal | None = None
    for price in prices:
        if is_valid_price(price):
            last = price
        out.append(last)
    return out


def equity_points(
    agent_id: str,
    entries: Sequence[Fill | Deposit],
    times: Sequence[datetime],
    marks: Mapping[str, Mapping[datetime, Decimal | None]],
) -> list[EquityPoint]:
    """The equity and funding at each of ``times`` (ascending) from ``entries`` (in the order
    they were applied); ``marks[symbol][t]`` is the symbol's price at ``t`` (None or missing when
    none is known). Times before the first entry have no point."""
    wallet = Wallet(agent_id=agent_id)
    out: list[EquityPoint] = []
    i = 0
    for t in times:
        while i < len(entries) and entries[i].time <= t:
            entry = entries[i]
            wallet = (
                apply_fill(wallet, entry)
                if isinstance(entry, Fill)
                else apply_deposit(wallet, entry)
            )
            i += 1
        if i == 0:
            continue
        known: dict[str, Decimal] = {}
        for symbol, series in marks.items():
            price = series.get(t)
            if price is not None:
                known[symbol] = price
        out.append(EquityPoint(t, wallet.equity(known), wallet.funding))
    return out


def compress(points: Sequence[EquityPoint]) -> list[EquityPoint]:
    """Drop the inner points of runs with the same equity and funding (their ends stay)."""
    out: list[EquityPoint] = []
    for p in points:
        if (
            len(out) >= 2
            and out[-1].equity == p.equity == out[-2].equity
            and out[-1].funding == p.funding == out[-2].funding
        ):
            out[-1] = p
        else:
            out.append(p)
    return out
