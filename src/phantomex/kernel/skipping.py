"""Event skipping for a lean replay of a finite feed (backtests).

Brains that declare vectorised signals (``may_act``: per bar, whether the brain may do anything
but hold while flat or while holding the symbol) let the kernel know in advance the ticks at
which an agent may act. An :class:`EventPlan` maps those flags onto the feed's ticks and finds,
from any tick on, the next one at which anything can happen:

- an agent may act there (its flags for its current position in each of its symbols);
- an order rests at the broker (it fills on the next tick);
- a risk exit may fire: a stop-loss or take-profit level crossed by a close (vectorised search,
  with a relative margin so rounding can only add candidates), or a max-hold deadline;
- always, while an agent holds a position under a drawdown or daily-loss limit (its equity is
  checked every tick), or when an agent is paused or not planned, or a forced exit of its waits
  for a tradable price, or the kill switch is on.

A plan exists only for data the price guard accepts bar by bar (:meth:`PriceGuard.quiet`), so
the guard never holds a symbol at a tick a plan passes over.

The ticks before that one change nothing but the clock, the prices and the marks, each due
agent's hold count and the risk state's day and peak: :meth:`Kernel.skip` applies exactly that,
with the equity of every skipped tick from :meth:`EventPlan.equity`. Each skipped tick is one at
which the kernel, visiting it, would have done the same.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Protocol, cast, runtime_checkable

import numpy as np

from phantomex.brains.base import Brain, SignalBrain, capable
from phantomex.domain.agent import Agent
from phantomex.domain.models import PAUSED, RUNNING, Bar, Order, Position, Snapshot, Tick, Wallet
from phantomex.domain.money import MAX_PRICE, ZERO, is_valid_price
from phantomex.domain.risk import RiskProfile, RiskState, exit_levels
from phantomex.market.base import MarketFeed

__all__ = ["EXIT_MARGIN", "EventPlan"]

#: Relative margin on stop-loss / take-profit levels: a close within it is a candidate tick (the
#: kernel then checks the level exactly, in Decimal).
EXIT_MARGIN = 1e-9

IntArray = np.ndarray


@runtime_checkable
class SkippableFeed(Protocol):
    """What event skipping needs from a feed (:class:`~phantomex.market.replay.ReplayFeed`)."""

    loop: bool

    @property
    def cursor(self) -> int: ...

    def skip_to(self, index: int) -> tuple[dict[str, Sequence[Bar]], dict[str, Snapshot]]: ...

    def take(self, *, bars: bool = True) -> Tick | None: ...

    def taken_bars(self, tick: Tick) -> dict[str, Sequence[Bar]] | None: ...

    def tick_times(self) -> list[datetime]: ...

    def bar_series(self, symbol: str) -> tuple[Sequence[int], list[Decimal], np.ndarray]: ...

    def symbol_bars(self, symbol: str) -> Sequence[Bar]: ...


class _Books(Protocol):
    def open_orders(self) -> Sequence[Order]: ...


class _Wallets(Protocol):
    def view(self, agent_id: str) -> Wallet: ...


class PlannedKernel(Protocol):
    """What a plan reads from the kernel (:class:`~phantomex.kernel.runtime.Kernel`)."""

    @property
    def feed(self) -> MarketFeed: ...
    @property
    def agents(self) -> Mapping[str, Agent]: ...
    @property
    def brains(self) -> Mapping[str, Brain]: ...
    @property
    def killed(self) -> bool: ...
    @property
    def broker(self) -> _Books: ...
    @property
    def ledger(self) -> _Wallets: ...


class EventPlan:
    """The ticks of a finite feed at which each planned agent may act (see the module)."""

    def __init__(self, kernel: PlannedKernel, feed: SkippableFeed) -> None:
        self.kernel = kernel
        self.feed = feed
        self.times: list[datetime] = feed.tick_times()
        n = len(self.times)
        self.closes: dict[str, np.ndarray] = {}  # per tick, forward-filled; NaN before the first
        self.marks: dict[str, list[Decimal | None]] = {}  # the same, exact (None before)
        for symbol in kernel.feed.instruments:
            where, bar_closes, floats = feed.bar_series(symbol)
            closes: list[Decimal | None] = list(bar_closes)
            spans = np.diff(np.append(_indices(where), n))
            every = spans.size == n - where[0]  # a bar at each tick from the first on
            valid = np.isfinite(floats) & (floats > 0) & (floats < float(MAX_PRICE))
            if not valid.all():  # the kernel marks only valid prices: keep the last valid one
                closes = [c if is_valid_price(c) else None for c in closes]
                for k in range(1, len(closes)):
                    closes[k] = closes[k] if closes[k] is not None else closes[k - 1]
            self.closes[symbol] = np.full(n, np.nan)
            self.closes[symbol][where[0] :] = floats if every else np.repeat(floats, spans)
            if not every:
                closes = np.repeat(np.array(closes, dtype=object), spans).tolist()
            none: list[Decimal | None] = [None]
            self.marks[symbol] = none * where[0] + closes
        # agent -> symbol -> (tick indices where it may act while flat, ... while holding), as
        # lists: one bisect per visit is cheaper on a list than on an array
        self.acts: dict[str, dict[str, tuple[list[int], list[int]]]] = {}
        # the same as flags per tick: agent -> symbol -> (may act while flat, ... while holding),
        # as bytes (0 or 1 per tick: read one at a time, cheaper than an array's items)
        self.flags: dict[str, dict[str, tuple[bytes, bytes]]] = {}
        self.unplanned: set[str] = set()
        shortest: float | None = None
        for agent in kernel.agents.values():
            planned = self._plan_agent(agent.id, agent.spec.symbols)
            if planned is not None:
                self.acts[agent.id] = {
                    symbol: (flat.tolist(), holding.tolist())
                    for symbol, (flat, holding) in planned.items()
                }
            if agent.spec.interval_seconds > 1 and shortest is None:
                gaps = (b - a for a, b in pairwise(self.times))
                shortest = min(gaps, default=timedelta(0)).total_seconds()
            # an agent deciding less often than every tick is not due at every one: not planned
            if planned is None or agent.spec.interval_seconds > (shortest or 1):
                self.unplanned.add(agent.id)

    def _plan_agent(
        self, agent_id: str, symbols: Sequence[str]
    ) -> dict[str, tuple[IntArray, IntArray]] | None:
        brain = self.kernel.brains[agent_id]
        if not capable(brain, SignalBrain):
            return None
        may_act = cast(SignalBrain, brain).may_act
        out: dict[str, tuple[IntArray, IntArray]] = {}
        for symbol in dict.fromkeys(symbols):
            closes = self.closes.get(symbol)
            if closes is None:
                continue  # not in the feed: the brain holds on it for want of a price
            first = int(np.argmax(np.isfinite(closes)))
            where = _indices(self.feed.bar_series(symbol)[0])
            bar_closes = closes[where]
            masks, marked = [], []
            for held in (False, True):
                flags = may_act(bar_closes, held=held)
                if flags is None:
                    return None
                # a tick without a bar of the symbol sees it as at its latest bar
                ticks = np.zeros(closes.size, dtype=np.bool_)
                ticks[first:] = np.repeat(flags, np.diff(np.append(where, closes.size)))
                masks.append(np.flatnonzero(ticks))
                marked.append(ticks)
            out[symbol] = (masks[0], masks[1])
            self.flags.setdefault(agent_id, {})[symbol] = (marked[0].tobytes(), marked[1].tobytes())
        return out

    # -- queries -------------------------------------------------------------------------------
    def may_act(self, agent_id: str, wallet: Wallet, when: datetime) -> bool | None:
        """Whether the agent may act at the tick ``when`` (None: not planned, ask the brain)."""
        if agent_id not in self.acts:
            return None
        i = self.feed.cursor - 1  # the tick being visited, as a rule
        if not (0 <= i < len(self.times) and self.times[i] == when):
            i = bisect_left(self.times, when)
            if i == len(self.times) or self.times[i] != when:
                return None
        positions = wallet.positions
        for symbol, ticks in self.flags.get(agent_id, {}).items():
            pos = positions.get(symbol)  # the flags for the position held (Wallet.quantity)
            if ticks[pos is not None and pos.quantity > ZERO][i]:
                return True
        return False

    def bars_read(self) -> bool:
        """Whether the next visited tick's bars are read: only when an order rests at the
        broker (it fills on them: at the open, or on the high and low). Otherwise nothing in
        the kernel reads a visited tick's bars: the price history takes them by position
        (:meth:`SkippableFeed.taken_bars`) and brains, risk checks and marks read the
        history and the snapshots."""
        return bool(self.kernel.broker.open_orders())

    def next_event(self, cursor: int) -> int:
        """The first tick index at or after ``cursor`` at which anything may happen."""
        n = len(self.times)
        k = self.kernel
        if cursor >= n or self.unplanned or k.killed or k.broker.open_orders():
            return cursor
        best = n
        for agent in k.agents.values():
            if agent.risk_state.pending_exits:
                return cursor  # a forced exit waits for a tradable price
            if agent.status is not RUNNING:
                if agent.status is PAUSED:
                    return cursor  # its pause may end at any tick
                continue
            wallet = k.ledger.view(agent.id)
            positions, profile = wallet.positions, agent.spec.risk
            if not positions and _limit_breached(profile, agent.risk_state, wallet):
                return cursor
            for symbol, masks in self.acts[agent.id].items():
                pos = positions.get(symbol)  # the ticks for the position held (Wallet.quantity)
                idx = masks[pos is not None and pos.quantity > ZERO]
                j = bisect_left(idx, cursor)
                if j < len(idx) and idx[j] < best:
                    best = idx[j]
            for symbol, pos in positions.items():
                best = min(best, self._next_exit(profile, pos, symbol, cursor, best))
            if best == cursor:
                return cursor
        return best

    def _next_exit(
        self, profile: RiskProfile, pos: Position, symbol: str, cursor: int, limit: int
    ) -> int:
        """The first tick in ``[cursor, limit)`` at which a risk exit of ``pos`` may fire
        (``limit`` when none)."""
        if profile.max_drawdown_pct is not None or profile.daily_loss_limit_pct is not None:
            return cursor  # equity limits are checked on every tick while holding
        if pos.quantity <= ZERO:
            return limit
        best = limit
        if profile.max_hold_minutes is not None and pos.opened_at is not None:
            deadline = pos.opened_at + timedelta(minutes=profile.max_hold_minutes)
            best = min(best, max(cursor, bisect_left(self.times, deadline)))
        closes = self.closes.get(symbol)
        if closes is None or (profile.stop_loss_pct is None and profile.take_profit_pct is None):
            return best
        if not pos.avg_cost > 0:
            return cursor
        stop, take = exit_levels(profile, pos.avg_cost)
        window = closes[cursor:best]
        hit = np.zeros(window.size, dtype=np.bool_)
        if stop is not None:
            hit |= window <= float(stop) * (1 + EXIT_MARGIN)
        if take is not None:
            hit |= window >= float(take) * (1 - EXIT_MARGIN)
        first = int(np.argmax(hit)) if hit.size else 0
        return cursor + first if hit.size and hit[first] else best

    def equity(self, wallet: Wallet, start: int, stop: int) -> list[Decimal]:
        """The wallet's equity at each tick in ``[start, stop)``, marked as the kernel marks it
        (:meth:`Wallet.equity`), for a wallet that does not change over them."""
        count = stop - start
        cash = wallet.cash
        if not wallet.positions:
            return [cash] * count
        none: list[Decimal | None] = [None]
        columns = [
            (
                pos.quantity,
                pos.cost,
                self.marks[symbol][start:stop] if symbol in self.marks else none * count,
            )
            for symbol, pos in wallet.positions.items()
        ]
        if len(columns) == 1:
            qty, cost, marks = columns[0]
            return [cash + (ZERO + (qty * m if m is not None else cost)) for m in marks]
        return [cash + sum((_value(c, t) for c in columns), ZERO) for t in range(count)]


def _indices(where: Sequence[int]) -> np.ndarray:
    """Tick indices as an array (a range without reading it number by number)."""
    if isinstance(where, range):
        return np.arange(where.start, where.stop, where.step, dtype=np.int64)
    return np.asarray(where, dtype=np.int64)


def _limit_breached(profile: RiskProfile, state: RiskState, wallet: Wallet) -> bool:
    """Whether a flat wallet's equity (its cash) is already beyond the drawdown or daily loss
    limit: a fill after this tick's check (at the close: fee and slippage) put it there, and
    the next tick's check fires the limit, so that tick must be visited."""
    equity = wallet.cash
    peak, start = state.peak_equity, state.day_start_equity
    if (
        profile.max_drawdown_pct is not None
        and peak is not None
        and peak > 0
        and (peak - equity) / peak * 100 >= profile.max_drawdown_pct
    ):
        return True
    return bool(
        profile.daily_loss_limit_pct is not None
        and start is not None
        and start > 0
        and (start - equity) / start * 100 >= profile.daily_loss_limit_pct
    )


def _value(column: tuple[Decimal, Decimal, list[Decimal | None]], t: int) -> Decimal:
    """A holding at its mark at ``t`` (at cost without one), as :meth:`Wallet.holdings_value`."""
    qty, cost, marks = column
    mark = marks[t]
    return qty * mark if mark is not None else cost
