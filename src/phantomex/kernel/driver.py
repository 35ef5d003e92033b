"""The tick driver: feeds a kernel its market's ticks, for live trading, sessions and backtests.

Live trading takes one tick per transaction and reports a failing tick without stopping the
market; replays (sessions, backtests) group ticks into larger transactions and raise a failure.
Event skipping (:mod:`.skipping`) is an option of a lean replay: the ticks before the plan's
next event are passed over instead of visited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol, cast

from phantomex.domain.models import Bar, Snapshot, Tick, Wallet
from phantomex.kernel.bus import EventBus
from phantomex.kernel.events import ErrorRaised
from phantomex.kernel.skipping import EventPlan, SkippableFeed
from phantomex.kernel.state import KernelConfig
from phantomex.market.base import MarketFeed

log = logging.getLogger(__name__)

#: After a tick: whether to end the transaction (batch) early.
Observer = Callable[[Tick], bool | None]
#: Passed-over ticks: their times and each agent's equity at them.
SkipObserver = Callable[[Sequence[datetime], dict[str, list[Decimal]]], None]


class Driven(Protocol):
    """What the driver needs of a kernel (:class:`~phantomex.kernel.runtime.Kernel`)."""

    feed: MarketFeed
    config: KernelConfig
    bus: EventBus

    @property
    def now(self) -> datetime | None: ...

    def exclusive(self) -> asyncio.Lock: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def unit(self) -> AbstractContextManager[None]: ...

    async def step(self, tick: Tick) -> None: ...

    def flush(self) -> None: ...

    def plan_decisions(self) -> EventPlan | None: ...

    def agent_ids(self) -> list[str]: ...

    def wallet(self, agent_id: str) -> Wallet: ...

    def skip(
        self,
        times: Sequence[datetime],
        bars: Mapping[str, Sequence[Bar]],
        snapshots: Mapping[str, Snapshot],
        equity: Mapping[str, Sequence[Decimal]],
    ) -> None: ...


@dataclass
class TickDriver:
    """Drives ``kernel`` over its feed, ``batch`` ticks per store transaction."""

    kernel: Driven
    batch: int = 1
    #: live: a failing tick is logged and published as an ``error`` event, and the market goes
    #: on; a replay raises it
    report_errors: bool = False
    #: live: ticks at or before the kernel's clock were processed before a restart
    resume: bool = False
    observe: Observer | None = None
    #: event skipping (a lean replay of a finite feed; see :meth:`Kernel.plan_decisions`)
    skipping: bool = False
    on_skip: SkipObserver | None = None
    stopped: Callable[[], bool] = lambda: False

    def __post_init__(self) -> None:
        if self.skipping and (self.report_errors or self.resume):
            raise ValueError("event skipping is for a replay run from its start that raises")
        self.plan = self.kernel.plan_decisions() if self.skipping else None
        # a plan exists for such feeds only
        self._feed = cast(SkippableFeed, self.kernel.feed) if self.plan is not None else None
        self.ended = False

    async def run(self) -> None:
        """Drive until the feed ends or :attr:`stopped` says so."""
        while not await self.step_batch():
            pass

    async def step_batch(self) -> bool:
        """Take up to ``batch`` ticks in one transaction; returns whether the run has ended."""
        if self.plan is not None:
            return await self._planned_batch()
        k = self.kernel
        outer = k.transaction() if self.batch > 1 else contextlib.nullcontext()
        with outer:
            for _ in range(self.batch):
                if self.stopped():
                    self.ended = True
                    break
                tick = await k.feed.next_tick()
                if tick is None:
                    self.ended = True
                    break
                if self.resume and k.now is not None and tick.time <= k.now:
                    continue  # already processed before a restart
                if not await self._take(tick):
                    continue
                if self.observe is not None and self.observe(tick):
                    break
            if k.config.lean and (self.batch > 1 or self.ended):
                with k.unit() if self.batch == 1 else contextlib.nullcontext():
                    k.flush()
        return self.ended

    async def _take(self, tick: Tick) -> bool:
        k = self.kernel
        async with k.exclusive():
            try:
                with k.unit():
                    await k.step(tick)
            except Exception as exc:
                if not self.report_errors:
                    raise
                log.exception("tick %s failed", tick.time)  # the market keeps moving
                k.bus.emit(ErrorRaised(f"tick failed: {exc}"), tick.time)
                return False
        return True

    async def _planned_batch(self) -> bool:
        """A replay with a plan (a backtest, which raises a failing tick): up to ``batch``
        ticks, each after passing over the ticks before the plan's next event (the skip
        observer sees them before the next tick changes anything), under one lock and in one
        unit, the batch's transaction: a failure anywhere in it ends the run, so the batch is
        all or nothing, and its events follow its commit. A visited tick carries its bars
        only when the kernel reads them (:meth:`EventPlan.bars_read`; of bars given as
        columns), the observer sees it so."""
        k, feed, plan = self.kernel, self._feed, self.plan
        assert feed is not None and plan is not None
        step, observe, on_skip = k.step, self.observe, self.on_skip
        await asyncio.sleep(0)  # other tasks get a turn between batches (the feed does not wait)
        async with k.exclusive():
            with k.unit():
                for _ in range(self.batch):
                    if self.stopped():
                        self.ended = True
                        break
                    start = feed.cursor
                    stop = plan.next_event(start)
                    if stop > start:  # ticks to pass over before the next event
                        skipped = self._skip(start, stop)
                        if on_skip is not None:
                            on_skip(*skipped)
                    tick = feed.take(bars=plan.bars_read())  # the history has them anyway
                    if tick is None:
                        self.ended = True
                        break
                    await step(tick)
                    if observe is not None and observe(tick):
                        break
                if self.batch > 1 or self.ended:
                    k.flush()
        return self.ended

    def _skip(self, start: int, stop: int) -> tuple[Sequence[datetime], dict[str, list[Decimal]]]:
        """Pass over the ticks ``start`` to ``stop`` (excluded; the plan's next event is at
        ``stop``: nothing happens before it; inside the kernel's lock and a unit); returns
        their times and each agent's equity at them."""
        plan, k, feed = self.plan, self.kernel, self._feed
        assert plan is not None and feed is not None
        span = {a: plan.equity(k.wallet(a), start, stop) for a in k.agent_ids()}
        bars, snapshots = feed.skip_to(stop)
        times = plan.times[start:stop]
        k.skip(times, bars, snapshots, span)
        return times, span
