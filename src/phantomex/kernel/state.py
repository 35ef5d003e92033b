"""What the kernel's parts share: its configuration, collaborators and live state."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, cast

from phantomex.brains.base import Brain, SlowBrain, capable
from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.broker.base import Broker
from phantomex.domain.agent import Agent
from phantomex.domain.clock import Clock
from phantomex.domain.models import Snapshot
from phantomex.kernel.bus import EventBus
from phantomex.ledger.ledger import Ledger
from phantomex.market.base import MarketFeed, PriceHistory
from phantomex.market.guard import PriceGuard, PriceGuardConfig
from phantomex.risk.engine import RiskEngine
from phantomex.store.port import KernelStore

if TYPE_CHECKING:
    from phantomex.kernel.skipping import EventPlan

KILL_KEY = "kill_switch"


class KernelError(ValueError):
    """A command the kernel refuses; ``field`` names the input at fault (for 4xx answers)."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid") -> None:
        super().__init__(message)
        self.field = field
        self.code = code


class NotFound(KernelError):
    def __init__(self, what: str, ident: str) -> None:
        super().__init__(f"{what} {ident!r} not found", field=None, code="not_found")


@dataclass(frozen=True, slots=True)
class KernelConfig:
    #: Approvals expire this long after their request on the kernel's clock (a person's time,
    #: not the market's, which a replay runs faster).
    approval_ttl: timedelta = timedelta(minutes=5)
    persist_snapshots: bool = True
    await_slow_brains: bool = False  # backtests: wait for LLM brains inside the tick
    decision_deadline_seconds: float = 120.0  # a decision later than this is a recorded hold
    #: Backtest bookkeeping (nothing to lose on a crash): holds are counted in ``Kernel.holds``
    #: instead of stored, agents and the clock are written by :meth:`Kernel.flush`, and
    #: approvals are not scanned while no agent is advisory, and no price or agent events are
    #: published (the views nobody follows in a backtest). Trades, orders, non-hold decisions,
    #: deposits and risk events are written and published as in live trading, the decisions
    #: without their check lines and meta (nobody reads them back; rule brains may leave out
    #: their figures: ``BrainContext.explain``).
    lean: bool = False
    #: Every incoming price is screened (:mod:`phantomex.market.guard`).
    price_guard: PriceGuardConfig = field(default_factory=PriceGuardConfig)


@dataclass(eq=False)
class KernelState:
    """The collaborators and live state every part of the kernel reads and changes."""

    store: KernelStore
    feed: MarketFeed
    broker: Broker
    bus: EventBus
    config: KernelConfig
    clock: Clock
    llm: LLMRuntime | None
    risk: RiskEngine
    ledger: Ledger
    history: PriceHistory = field(default_factory=PriceHistory)
    agents: dict[str, Agent] = field(default_factory=dict)
    brains: dict[str, Brain] = field(default_factory=dict)
    prices: dict[str, Snapshot] = field(default_factory=dict)
    marks: dict[str, Decimal] = field(default_factory=dict)
    #: market time: the last tick's (None before the first, unless a run was begun at a time)
    now: datetime | None = None
    killed: bool = False
    ticks: int = 0
    holds: Counter[str] = field(default_factory=Counter)  # lean mode: holds per agent
    plan: EventPlan | None = None  # see Kernel.plan_decisions()
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    guard: PriceGuard = field(init=False)

    def __post_init__(self) -> None:
        self.guard = PriceGuard(self.config.price_guard)

    def time(self) -> datetime:
        """Market time, or the clock's before the first tick."""
        return self.now or self.clock.now()

    def agent(self, agent_id: str) -> Agent:
        found = self.agents.get(agent_id)
        if found is None:
            raise NotFound("agent", agent_id)
        return found


def is_slow(brain: Brain) -> bool:
    """Brains that wait on a network (LLMs) decide in the background."""
    return capable(brain, SlowBrain) and cast(SlowBrain, brain).slow
