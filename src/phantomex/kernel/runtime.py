"""The kernel: one tick loop for live and replayed markets.

Per tick: marks → resting orders → risk bookkeeping and forced exits → due agents decide →
risk check → advisory queue or broker → ledger (one transaction with the store) → events.

:class:`Kernel` is the facade; the work is done by its parts: the unit of work
(:mod:`.unit`), the agent registry (:mod:`.registry`), the tick (:mod:`.ticks`), the decision
pipeline (:mod:`.pipeline`), execution (:mod:`.execution`), the risk supervisor
(:mod:`.supervisor`) and the approval queue (:mod:`.approval_queue`), over a shared
:class:`~.state.KernelState`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from phantomex.brains.base import Brain
from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.brains.llm.types import EndpointConfig
from phantomex.broker.base import Broker
from phantomex.domain.agent import Agent, AgentSpec
from phantomex.domain.clock import Clock, WallClock
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import Bar, Decision, Mode, Order, Snapshot, Tick, Wallet
from phantomex.kernel.bus import EventBus
from phantomex.kernel.driver import TickDriver
from phantomex.kernel.execution import Execution
from phantomex.kernel.journal import Journal
from phantomex.kernel.llm_endpoints import save_endpoint
from phantomex.kernel.pipeline import DecisionPipeline
from phantomex.kernel.registry import AgentRegistry
from phantomex.kernel.skipping import EventPlan
from phantomex.kernel.state import KernelConfig, KernelError, KernelState, NotFound
from phantomex.kernel.supervisor import RiskSupervisor
from phantomex.kernel.ticks import TickProcessor
from phantomex.kernel.unit import UnitOfWork, atomic
from phantomex.kernel.views import AgentView, PriceView
from phantomex.ledger.ledger import Ledger
from phantomex.ledger.reconcile import Mismatch
from phantomex.market.base import MarketFeed
from phantomex.problems import Problems
from phantomex.risk.engine import RiskEngine
from phantomex.secrets import SecretBox
from phantomex.store.port import KernelStore

__all__ = ["Kernel", "KernelConfig", "KernelError", "NotFound"]

log = logging.getLogger(__name__)


class Kernel:
    """Owns the live state: agents, brains, wallets (through the ledger), prices and approvals.
    ``clock`` is a person's time: approvals expire on it, and it dates what happens before the
    first tick."""

    def __init__(
        self,
        store: KernelStore,
        feed: MarketFeed,
        broker: Broker,
        *,
        bus: EventBus | None = None,
        config: KernelConfig | None = None,
        llm: LLMRuntime | None = None,
        clock: Clock | None = None,
        problems: Problems | None = None,
    ) -> None:
        clock = clock or WallClock()
        s = self.state = KernelState(
            store=store,
            feed=feed,
            broker=broker,
            bus=bus or EventBus(clock),
            config=config or KernelConfig(),
            clock=clock,
            llm=llm,
            risk=RiskEngine(fee_bps=broker.fee_bps),
            ledger=Ledger(on_commit=store.commit_entry),
        )
        # the shared collaborators and containers, read by front ends and tests
        self.store, self.feed, self.broker, self.bus, self.llm = store, feed, broker, s.bus, llm
        self.config, self.clock, self.risk, self.ledger = s.config, s.clock, s.risk, s.ledger
        self.history, self.guard, self.holds, self.lock = s.history, s.guard, s.holds, s.lock
        self.agents, self.brains, self.prices, self.marks = s.agents, s.brains, s.prices, s.marks
        self._journal = journal = Journal(s)
        self._work = UnitOfWork(s, reload=lambda: self._registry.load())
        self._execution = Execution(s, journal, self._work)
        self._pipeline = DecisionPipeline(s, journal, self._work, self._execution)
        self._approvals = self._pipeline.approvals
        self.problems = problems or Problems()  # what start-up skipped (see load())
        self._registry = AgentRegistry(s, journal, self._approvals, self.problems)
        self._supervisor = RiskSupervisor(s, journal, self._work, self._execution, self._approvals)
        self._ticks = TickProcessor(
            s, journal, self._work, self._execution, self._supervisor, self._pipeline
        )
        self._stopping = False
        if llm is not None:
            llm.watch(self)  # models stay loaded while this kernel's agents are due to call them

    @property
    def now(self) -> datetime | None:
        """Market time: the last tick's (None before the first, unless begun at a time)."""
        return self.state.now

    @property
    def killed(self) -> bool:
        return self.state.killed

    @property
    def ticks(self) -> int:
        return self.state.ticks

    def llm_intervals(self) -> Iterator[tuple[str, str, float]]:
        """The schedule the LLM runtime keeps models warm for (see the pipeline's)."""
        return self._pipeline.llm_intervals()

    # -- start-up and the tick loop ---------------------------------------------------------------
    def load(self) -> None:
        """Restore agents, wallets, resting orders, the clock and the kill switch from the store.
        An agent that cannot be read or run is skipped and listed in :attr:`problems`."""
        self._registry.load()
        self._work.restore_clock()
        self._supervisor.restore()

    def begin_at(self, start: datetime) -> None:
        """Set market time to ``start`` before a replay's first tick (agents and deposits
        created now are dated then)."""
        self.state.now = start

    def unit(self) -> AbstractContextManager[None]:
        """One store transaction for a tick or a command (see :class:`.unit.UnitOfWork`)."""
        return self._work.unit()

    def warm_up(self) -> None:
        self._ticks.warm_up()

    def plan_decisions(self) -> EventPlan | None:
        return self._ticks.plan_decisions()

    def skip(
        self,
        times: Sequence[datetime],
        bars: Mapping[str, Sequence[Bar]],
        snapshots: Mapping[str, Snapshot],
        equity: Mapping[str, Sequence[Decimal]],
    ) -> None:
        self._ticks.skip(times, bars, snapshots, equity)

    async def run(self) -> None:
        """Consume the feed until it ends or :meth:`stop` is called (live: a failing tick is
        reported and the market goes on; ticks seen before a restart are passed over)."""
        driver = TickDriver(self, report_errors=True, resume=True, stopped=lambda: self._stopping)
        await driver.run()

    def stop(self) -> None:
        self._stopping = True
        self.feed.close()
        for task in list(self._pipeline.inflight.values()):
            task.cancel()

    async def step(self, tick: Tick) -> None:
        await self._ticks.step(tick)

    def flush(self) -> None:
        self._work.flush()

    def exclusive(self) -> asyncio.Lock:
        """The kernel's lock: hold it to change anything the kernel owns, or to write beside
        it (a session's results) without interleaving with a tick."""
        return self.lock

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One store transaction around many units (a replay's batch of ticks); their events
        go out once it commits (dropped if it fails)."""
        with self.bus.held(), self.store.unit():
            yield

    def close(self) -> None:
        """Close the store (a replay's own kernel, when it ends)."""
        self.store.close()

    # -- reads for drivers, sessions and backtests ------------------------------------------------
    def agent_ids(self) -> list[str]:
        return list(self.agents)

    def wallet(self, agent_id: str) -> Wallet:
        """The agent's wallet (a read-only view)."""
        return self.ledger.view(agent_id)

    def decisions(self, agent_id: str, limit: int) -> list[DecisionRecord]:
        """The agent's latest ``limit`` decisions, newest first."""
        return self.store.decisions(agent_id, limit=limit)

    def trades(self, agent_id: str) -> list[dict[str, Any]]:
        """Every fill of the agent, in the order it happened."""
        rows, _ = self.store.trades(agent_id, limit=10**9)
        return sorted(rows, key=lambda r: (r["time"], r["seq"]))

    # -- decisions and approvals ------------------------------------------------------------------
    @atomic
    def place(self, agent_id: str, decision: Decision) -> DecisionRecord:
        return self._pipeline.place(agent_id, decision)

    async def trade_now(self, agent_id: str) -> DecisionRecord:
        return await self._pipeline.trade_now(agent_id)

    def thinking(self) -> dict[str, asyncio.Task[None]]:
        """The slow (LLM) decisions still thinking, by agent."""
        return self._pipeline.inflight

    def abandon(self, agent: Agent, reason: str) -> DecisionRecord:
        """Record a hold for a decision that will never end (inside a unit)."""
        return self._pipeline.abandon(agent, reason)

    def pending(self) -> list[DecisionRecord]:
        return self._approvals.pending()

    @atomic
    def approve(self, decision_id: str) -> DecisionRecord:
        return self._approvals.approve(decision_id)

    @atomic
    def reject(self, decision_id: str) -> DecisionRecord:
        return self._approvals.reject(decision_id)

    # -- agents -----------------------------------------------------------------------------------
    @atomic
    def create_agent(self, spec: AgentSpec, *, brain: Brain | None = None) -> Agent:
        """A new agent; ``brain`` replaces the one its spec names (backtests' instruments)."""
        return self._registry.create(spec, brain)

    def get(self, agent_id: str) -> Agent:
        return self.state.agent(agent_id)

    def find(self, agent_id: str) -> Agent | None:
        """The agent, or None when there is none of that id (deleted)."""
        return self.agents.get(agent_id)

    @atomic
    def delete_agent(self, agent_id: str) -> None:
        self._registry.delete(agent_id)

    @atomic
    def set_mode(self, agent_id: str, mode: Mode) -> Agent:
        return self._registry.set_mode(agent_id, mode)

    @atomic
    def pause(self, agent_id: str) -> Agent:
        return self._registry.pause(agent_id)

    @atomic
    def resume(self, agent_id: str) -> Agent:
        return self._registry.resume(agent_id)

    @atomic
    def deposit(self, agent_id: str, amount: Decimal, key: str | None = None) -> Wallet:
        return self._registry.deposit(agent_id, amount, key)

    # -- risk and orders --------------------------------------------------------------------------
    @atomic
    def kill(self, agent_id: str | None = None, *, flatten: bool = False) -> list[str]:
        """Global (no agent) or per-agent kill (see :meth:`.RiskSupervisor.kill`)."""
        return self._supervisor.kill(agent_id, flatten=flatten)

    @atomic
    def release_kill(self) -> None:
        self._supervisor.release_kill()

    def open_orders(self, agent_id: str | None = None) -> list[Order]:
        return self.broker.open_orders(agent_id)

    @atomic
    def cancel_order(self, order_id: str) -> Order:
        return self._execution.cancel_order(order_id)

    # -- audit and views --------------------------------------------------------------------------
    def audit(self) -> list[Mismatch]:
        """Live wallets and stored wallets against a rebuild from the stored history."""
        return self._registry.audit()

    # --- query port (used by phantomex.service) ---
    def agent_list(self) -> list[Agent]:
        """The agents, in the order they were loaded or created."""
        return list(self.agents.values())

    def view_of(self, agent: Agent) -> AgentView:
        """``agent`` with its wallet valued at the latest marks."""
        return self._journal.view_of(agent)

    def price_views(self) -> list[PriceView]:
        """The latest accepted price of each symbol, with whether it is suspect (and why)."""
        return self._journal.price_views()

    def wallets(self) -> dict[str, Wallet]:
        """Every live wallet, by agent id."""
        return {a: self.ledger.wallet(a) for a in self.ledger.agent_ids()}

    def records(self) -> KernelStore:
        """The store, to read the history (decisions, trades, orders, risk events, LLM calls);
        changes go through the kernel's commands."""
        return self.store

    @atomic
    def delete_skipped_agent(self, agent_id: str) -> None:
        """Delete a stored agent that start-up skipped (hold :meth:`exclusive`)."""
        self._registry.delete_skipped(agent_id)

    @atomic
    def save_llm_endpoint(
        self, box: SecretBox, *, put: EndpointConfig | None = None, drop: str = ""
    ) -> None:
        """Store an endpoint added at run time, or forget one (hold :meth:`exclusive`)."""
        save_endpoint(self.store, box, put=put, drop=drop)
