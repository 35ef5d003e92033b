"""One tick: prices → resting orders → approvals → risk supervision → due agents decide."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from phantomex.domain.models import RUNNING, Bar, Snapshot, Tick
from phantomex.domain.money import is_valid_price
from phantomex.kernel.events import PricesUpdated
from phantomex.kernel.execution import Execution
from phantomex.kernel.journal import Journal
from phantomex.kernel.pipeline import DecisionPipeline
from phantomex.kernel.skipping import EventPlan, SkippableFeed
from phantomex.kernel.state import KernelState
from phantomex.kernel.supervisor import RiskSupervisor
from phantomex.kernel.unit import UnitOfWork
from phantomex.market.base import ResolvingFeed
from phantomex.store.port import CLOCK_KEY


class TickProcessor:
    """Takes the market's ticks (or passes over those where nothing can happen)."""

    def __init__(
        self,
        state: KernelState,
        journal: Journal,
        work: UnitOfWork,
        execution: Execution,
        supervisor: RiskSupervisor,
        pipeline: DecisionPipeline,
    ) -> None:
        self.state = state
        self.journal = journal
        self.work = work
        self.execution = execution
        self.supervisor = supervisor
        self.pipeline = pipeline
        self._instruments = lambda: state.feed.instruments  # read only when the guard asks

    async def step(self, tick: Tick) -> None:
        s = self.state
        tick = self.take_prices(tick)
        now = tick.time
        self.execution.settle_resolved(now)
        if s.config.persist_snapshots:
            s.store.save_snapshots(list(tick.snapshots.values()))
        if not s.config.lean:
            s.store.set_state(CLOCK_KEY, {"time": now.isoformat()})
            s.bus.emit(PricesUpdated(self.journal.prices()), now)
        self.execution.fill_resting(tick)
        self.pipeline.approvals.expire_due()
        self.supervisor.tick()
        if s.killed:
            return
        await self.pipeline.tick(now)

    def take_prices(self, tick: Tick) -> Tick:
        """Take the prices the guard accepts from ``tick`` (a suspect symbol keeps its last
        accepted price and mark); returns the tick as the guard passed it on. With an event
        plan the guard accepts every price of the data (:meth:`PriceGuard.quiet` said so):
        the tick is taken as it is, the guard following its prices."""
        s = self.state
        s.now = tick.time
        s.ticks += 1
        if s.plan is not None:
            s.guard.follow(tick.snapshots, self._instruments)
            spans = s.plan.feed.taken_bars(tick)  # its bars as positions in the feed's data
            if spans is None:
                s.history.append(tick.bars.values())
            else:
                for symbol, span in spans.items():
                    s.history.extend(symbol, span)
            self._mark(tick.snapshots)
            return tick
        screened = s.guard.screen(tick, self._instruments)
        s.history.append(screened.history)
        self._mark(screened.tick.snapshots)
        for event in screened.events:
            self.journal.risk_event(None, event.kind, event.symbol, event.detail)
        return screened.tick

    def _mark(self, snapshots: Mapping[str, Snapshot]) -> None:
        """Take accepted prices: the latest snapshots, and marks where the price is valid."""
        s = self.state
        for sym, snap in snapshots.items():
            s.prices[sym] = snap
            if is_valid_price(snap.price):
                s.marks[sym] = snap.price

    def warm_up(self) -> None:
        """Feed the warm-up bars into the history (and prices) without trading on them. After a
        restart these are the bars just before the restored clock, which stays where it was."""
        s = self.state
        restored = s.now
        for tick in s.feed.warmup():
            self.take_prices(tick)
        if restored is not None and (s.now is None or s.now < restored):
            s.now = restored

    def plan_decisions(self) -> EventPlan | None:
        """Event skipping for a lean replay of a finite feed (see :mod:`.skipping`): at a due
        tick where an agent's brain certainly holds, the agent holds without asking it (the hold
        is counted and its decision schedule kept); a backtest driver may also pass over whole
        runs of ticks with :meth:`skip`. Returns the plan, None when the feed or the mode does
        not allow one, or when the price guard would hold a symbol somewhere in the data (a
        plan reads the raw bars; visiting every tick is exact)."""
        s = self.state
        s.plan = None
        feed = s.feed
        if (
            s.config.lean
            and isinstance(feed, SkippableFeed)
            and not feed.loop
            and not isinstance(feed, ResolvingFeed)
            and self._quiet(feed)
        ):
            s.plan = EventPlan(self.state, feed)
        return s.plan

    def _quiet(self, feed: SkippableFeed) -> bool:
        """Whether the price guard accepts every bar of the feed: a plan can pass over ticks
        only when visiting them would not have held a symbol or kept a bar from the history."""
        instruments = self.state.feed.instruments
        return self.state.guard.quiet({s: feed.symbol_bars(s) for s in instruments}, instruments)

    def skip(
        self,
        times: Sequence[datetime],
        bars: Mapping[str, Sequence[Bar]],
        snapshots: Mapping[str, Snapshot],
        equity: Mapping[str, Sequence[Decimal]],
    ) -> None:
        """Pass over ticks at which nothing can happen (the plan's :meth:`EventPlan.next_event`
        says so): their ``bars`` join the history, the clock, prices and marks move to the last
        of them, each due agent holds once per tick and its risk state follows ``equity`` (the
        agent's equity at each of the ticks)."""
        if not times:
            return
        s = self.state
        s.now = times[-1]
        s.ticks += len(times)
        for symbol, series in bars.items():
            s.history.extend(symbol, series)
        s.guard.follow(snapshots, self._instruments)
        self._mark(snapshots)
        for agent in s.agents.values():
            if agent.status is not RUNNING:
                continue
            s.risk.advance(agent.risk_state, equity[agent.id], times)
            self.work.save_agent(agent)
            agent.last_decided_at = s.now
            s.holds[agent.id] += len(times)
