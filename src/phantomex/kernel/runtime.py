"""The kernel: one tick loop for live and replayed markets.

Per tick: marks → resting orders → risk bookkeeping and forced exits → due agents decide →
risk check → advisory queue or broker → ledger (one transaction with the store) → events.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import hashlib
import logging
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar, cast

from phantomex.brains.base import Brain, BrainContext
from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.brains.registry import create_brain
from phantomex.broker.base import OrderRejected
from phantomex.broker.paper import PaperBroker
from phantomex.domain.agent import Agent, AgentSpec, new_id
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import (
    Action,
    AgentStatus,
    Bar,
    Decision,
    DecisionStatus,
    Deposit,
    Fill,
    Mode,
    Order,
    OrderType,
    Side,
    Snapshot,
    Tick,
    Wallet,
)
from phantomex.domain.money import ZERO, is_valid_price
from phantomex.domain.staleness import age_checked
from phantomex.kernel.bus import EventBus
from phantomex.kernel.skipping import EventPlan, SkippableFeed
from phantomex.ledger.ledger import Ledger, LedgerError
from phantomex.ledger.reconcile import Mismatch, reconcile
from phantomex.ledger.settlement import settle_resolved
from phantomex.market.base import MarketFeed, PriceHistory
from phantomex.market.guard import PriceGuard, PriceGuardConfig
from phantomex.market.sources import SourceError, restrict_to_source
from phantomex.problems import Problem, Problems, reason_of
from phantomex.risk.engine import RiskEngine, Verdict, price_problem
from phantomex.risk.market_hours import market_closed
from phantomex.serialize import jsonable
from phantomex.store.port import CLOCK_KEY, DuplicateEntry, KernelStore

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

LLM_CALL_SUMMARY = ("endpoint", "model", "purpose", "latency_seconds", "error", "cached")
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


def atomic(method: Callable[P, R]) -> Callable[P, R]:
    """Run a kernel command as one store transaction (see :meth:`Kernel.unit`)."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        kernel = args[0]
        assert isinstance(kernel, Kernel)
        with kernel.unit():
            return method(*args, **kwargs)

    return wrapper


def wall_now() -> datetime:
    """The real wall clock (UTC)."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class KernelConfig:
    approval_ttl: timedelta = timedelta(minutes=5)
    #: A person's clock: approvals expire ``approval_ttl`` after their request on it (wall time,
    #: not the market's, which a replay runs faster). Tests inject their own.
    wall_clock: Callable[[], datetime] = field(default=wall_now)
    persist_snapshots: bool = True
    await_slow_brains: bool = False  # backtests: wait for LLM brains inside the tick
    decision_deadline_seconds: float = 120.0  # a decision later than this is a recorded hold
    #: Backtest bookkeeping (nothing to lose on a crash): holds are counted in ``Kernel.holds``
    #: instead of stored, agents and the clock are written by :meth:`Kernel.flush`, and
    #: approvals are not scanned while no agent is advisory, and no price or agent events are
    #: published (the views nobody follows in a backtest). Trades, orders, non-hold decisions,
    #: deposits and risk events are written and published as in live trading.
    lean: bool = False
    #: Every incoming price is screened (:mod:`phantomex.market.guard`).
    price_guard: PriceGuardConfig = field(default_factory=PriceGuardConfig)


class Kernel:
    """Owns the live state: agents, brains, wallets (through the ledger), prices and approvals."""

    def __init__(
        self,
        store: KernelStore,
        feed: MarketFeed,
        broker: PaperBroker,
        *,
        bus: EventBus | None = None,
        config: KernelConfig | None = None,
        llm: LLMRuntime | None = None,
    ) -> None:
        self.store = store
        self.feed = feed
        self.broker = broker
        self.bus = bus or EventBus()
        self.config = config or KernelConfig()
        self.llm = llm
        self.llm_static: set[str] = set()  # endpoints from the settings file (not the API's)
        self.problems = Problems()  # what start-up skipped (see load())
        self.risk = RiskEngine(fee_bps=broker.config.fee_bps)
        self.ledger = Ledger(on_commit=store.commit_entry)
        self.history = PriceHistory()
        self.guard = PriceGuard(self.config.price_guard)
        self.agents: dict[str, Agent] = {}
        self.brains: dict[str, Brain] = {}
        self.prices: dict[str, Snapshot] = {}
        self.marks: dict[str, Decimal] = {}
        self.now: datetime | None = None
        self.killed = False
        self.ticks = 0
        self.holds: Counter[str] = Counter()  # lean mode: hold decisions per agent, not stored
        self._dirty: dict[str, Agent] = {}  # lean mode: agents to save at the next flush
        # agents changed in this task's open unit, written once when it ends (see unit())
        self._unit_agents: contextvars.ContextVar[dict[str, Agent] | None] = contextvars.ContextVar(
            f"unit-agents-{id(self)}", default=None
        )
        self.plan: EventPlan | None = None  # see plan_decisions()
        self.lock = asyncio.Lock()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        if llm is not None:
            llm.watch(self)  # models stay loaded while this kernel's agents are due to call them

    def llm_intervals(self) -> Iterator[tuple[str, str, float]]:
        """``(endpoint, model, wall seconds between decisions)`` per running LLM agent: the
        schedule the LLM runtime keeps models warm for. A paced replay runs ``speed`` market
        seconds per wall second; an unpaced one (speed 0) calls again at once."""
        if self.killed:
            return
        speed = float(getattr(self.feed, "speed", 1.0))
        paced = 0 < speed < math.inf
        for agent in list(self.agents.values()):
            uses = getattr(self.brains.get(agent.id), "llm_model", None)
            if uses is not None and agent.status is AgentStatus.RUNNING:
                yield (*uses, agent.spec.interval_seconds / speed if paced else 0.0)

    # -- start-up ---------------------------------------------------------------------------------
    def load(self) -> None:
        """Restore agents, wallets, resting orders, the clock and the kill switch from the store.
        An agent that cannot be read or run is skipped and listed in :attr:`problems`."""
        self._load_agents()
        clock = self.store.get_state(CLOCK_KEY)
        if clock:
            self.now = datetime.fromisoformat(clock["time"])
        kill = self.store.get_state(KILL_KEY)
        self.killed = bool(kill and kill.get("on"))

    def _load_agents(self) -> None:
        self.agents.clear()
        self.brains.clear()
        for agent_id in self.ledger.agent_ids():
            self.ledger.close_wallet(agent_id)
        wallets = self.store.load_wallets()
        for agent in self.store.load_agents(on_error=self._skip_agent):
            try:
                brain = create_brain(agent.spec.brain, agent.spec.params, llm=self.llm)
                self.ledger.restore(wallets[agent.id])
            except Exception as exc:  # one agent that cannot run never stops the server
                self._skip_agent(agent.id, agent.name, exc)
                continue
            self.agents[agent.id] = agent
            self.brains[agent.id] = brain
        self.broker.cancel_all()
        self.broker.remember_keys(self.store.used_keys())
        for order in self.store.open_orders():
            if order.agent_id in self.agents:
                self.broker.restore_order(order)

    def _skip_agent(self, agent_id: str, name: str, exc: Exception) -> None:
        fix = f"remove it (phantomex agents remove {agent_id}, or the dashboard) and add it again"
        self.problems.add(Problem("agent", name, reason_of(exc), id=agent_id, fix=fix))

    @contextmanager
    def unit(self) -> Iterator[None]:
        """One store transaction for a tick or a command. A refused command (a ValueError such as
        KernelError) changed nothing; any other failure rolls the transaction back and reloads
        agents and wallets from the store, so memory never runs ahead of the database."""
        if self._unit_agents.get() is not None:  # nested: the outer unit writes the agents
            with self.bus.held(), self.store.unit():
                yield
            return
        changed: dict[str, Agent] = {}
        token = self._unit_agents.set(changed)
        try:
            with self.bus.held(), self.store.unit():  # events go out once the transaction commits
                yield
                self._write_agents(changed)  # once per agent, inside the same transaction
        except ValueError:
            raise
        except Exception:
            log.exception("transaction failed; reloading agents and wallets from the store")
            self._load_agents()
            raise
        finally:
            self._unit_agents.reset(token)

    def warm_up(self) -> None:
        """Feed the warm-up bars into the history (and prices) without trading on them. After a
        restart these are the bars just before the restored clock, which stays where it was."""
        restored = self.now
        for tick in self.feed.warmup():
            self._take_prices(tick)
        if restored is not None and (self.now is None or self.now < restored):
            self.now = restored

    def plan_decisions(self) -> EventPlan | None:
        """Event skipping for a lean replay of a finite feed (see :mod:`.skipping`): at a due
        tick where an agent's brain certainly holds, the agent holds without asking it (the hold
        is counted and its decision schedule kept); a backtest driver may also pass over whole
        runs of ticks with :meth:`skip`. Returns the plan, None when the feed or the mode does
        not allow one, or when the price guard would hold a symbol somewhere in the data (a
        plan reads the raw bars; visiting every tick is exact)."""
        self.plan = None
        if (
            self.config.lean
            and not getattr(self.feed, "loop", True)
            and hasattr(self.feed, "tick_times")
            and hasattr(self.feed, "bar_series")
            and hasattr(self.feed, "symbol_bars")
            and not hasattr(self.feed, "resolutions")
            and self._quiet(cast(SkippableFeed, self.feed))
        ):
            self.plan = EventPlan(self, cast(SkippableFeed, self.feed))
        return self.plan

    def _quiet(self, feed: SkippableFeed) -> bool:
        """Whether the price guard accepts every bar of the feed: a plan can pass over ticks
        only when visiting them would not have held a symbol or kept a bar from the history."""
        instruments = self.feed.instruments
        return self.guard.quiet({s: feed.symbol_bars(s) for s in instruments}, instruments)

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
        self.now = times[-1]
        self.ticks += len(times)
        for symbol, series in bars.items():
            self.history.extend(symbol, series)
        self.guard.follow(snapshots, lambda: self.feed.instruments)
        for sym, snap in snapshots.items():
            self.prices[sym] = snap
            if is_valid_price(snap.price):
                self.marks[sym] = snap.price
        for agent in self.agents.values():
            if agent.status is not AgentStatus.RUNNING:
                continue
            self.risk.advance(agent.risk_state, equity[agent.id], times)
            self._save_agent(agent)
            agent.last_decided_at = self.now
            self.holds[agent.id] += len(times)

    async def run(self) -> None:
        """Consume the feed until it ends or :meth:`stop` is called."""
        while not self._stopping:
            tick = await self.feed.next_tick()
            if tick is None:
                break
            if self.now is not None and tick.time <= self.now:
                continue  # already processed before a restart
            async with self.lock:
                try:
                    with self.unit():
                        await self.step(tick)
                except Exception as exc:  # keep the market moving; the error is reported
                    log.exception("tick %s failed", tick.time)
                    self.bus.publish("error", {"message": f"tick failed: {exc}"}, tick.time)
        if self.config.lean:
            with self.unit():
                self.flush()

    def stop(self) -> None:
        self._stopping = True
        self.feed.close()
        for task in list(self._inflight.values()):
            task.cancel()

    # -- one tick ---------------------------------------------------------------------------------
    async def step(self, tick: Tick) -> None:
        tick = self._take_prices(tick)
        now = tick.time
        self._settle_resolved(now)
        if self.config.persist_snapshots:
            self.store.save_snapshots(list(tick.snapshots.values()))
        if not self.config.lean:
            self.store.set_state(CLOCK_KEY, {"time": now.isoformat()})
        if not self.config.lean:
            self.bus.publish("price", {"prices": self.price_list()}, now)
        self._fill_resting(tick)
        self._expire_approvals()
        for agent in list(self.agents.values()):
            if agent.risk_state.pending_exits:
                self._retry_exits(agent)
            if agent.status is not AgentStatus.RUNNING and not self._paused_for_day(agent):
                continue
            self._risk_bookkeeping(agent)
        if self.killed:
            return
        for agent in list(self.agents.values()):
            if agent.status is AgentStatus.RUNNING and self._due(agent):
                acts = self.plan and self.plan.may_act(agent.id, self.ledger.view(agent.id), now)
                if acts is False:
                    agent.last_decided_at = now  # a hold, as the brain would have decided
                    self.holds[agent.id] += 1
                elif _is_slow(self.brains[agent.id]) and not self.config.await_slow_brains:
                    self._start_thinking(agent)
                else:
                    await self._decide(agent, source="brain")

    def _take_prices(self, tick: Tick) -> Tick:
        """Take the prices the guard accepts from ``tick`` (a suspect symbol keeps its last
        accepted price and mark); returns the tick as the guard passed it on."""
        self.now = tick.time
        self.ticks += 1
        screened = self.guard.screen(tick, lambda: self.feed.instruments)
        self.history.append(screened.history)
        for sym, snap in screened.tick.snapshots.items():
            self.prices[sym] = snap
            if is_valid_price(snap.price):
                self.marks[sym] = snap.price
        for event in screened.events:
            self._risk_event(None, event.kind, event.symbol, event.detail)
        return screened.tick

    def _settle_resolved(self, now: datetime) -> None:
        """Pay out positions in resolved markets (feeds with ``resolutions()``: Polymarket)."""
        resolutions = getattr(self.feed, "resolutions", None)
        if resolutions is None:
            return
        for fill in settle_resolved(self.ledger, resolutions(), now):
            agent = self.agents.get(fill.agent_id)
            name = agent.name if agent else None
            self.bus.publish("trade", functools.partial(_trade_event, fill, name), now)
            if agent is not None:
                self._publish_agent(agent)

    def _due(self, agent: Agent) -> bool:
        assert self.now is not None
        last = agent.last_decided_at
        return last is None or (self.now - last).total_seconds() >= agent.spec.interval_seconds

    def _paused_for_day(self, agent: Agent) -> bool:
        return agent.status is AgentStatus.PAUSED and agent.risk_state.paused_until is not None

    # -- risk: bookkeeping and forced exits -------------------------------------------------------
    def _risk_bookkeeping(self, agent: Agent) -> None:
        assert self.now is not None
        state = agent.risk_state
        if self._paused_for_day(agent) and state.paused_until and self.now >= state.paused_until:
            state.paused_until = None
            self._set_status(agent, AgentStatus.RUNNING, "daily loss pause over")
        if agent.status is not AgentStatus.RUNNING:
            return
        wallet = self.ledger.view(agent.id)
        hit = self.risk.update(agent.spec.risk, state, wallet.equity(self.marks), self.now)
        if hit == "drawdown":
            self._risk_event(
                agent,
                "drawdown",
                None,
                f"equity fell {agent.spec.risk.max_drawdown_pct}% below its peak "
                f"{state.peak_equity:.2f}: closing positions and stopping",
            )
            self._flatten(agent, "drawdown")
            self._set_status(agent, AgentStatus.STOPPED, "max drawdown reached")
            return
        if hit == "daily_loss":
            self._risk_event(
                agent,
                "daily_loss",
                None,
                f"daily loss limit {agent.spec.risk.daily_loss_limit_pct}% hit; "
                f"paused until {state.paused_until}",
            )
            self._set_status(agent, AgentStatus.PAUSED, "daily loss limit")
            return
        for exit_ in self.risk.forced_exits(
            agent.spec.risk,
            wallet,
            self.prices,
            self.now,
            self.feed.instruments,
            suspect=self.guard.held(),
        ):
            self._risk_event(agent, exit_.kind, exit_.symbol, exit_.detail)
            self._force_sell(agent, exit_.symbol, exit_.quantity, exit_.kind, exit_.detail)
        self._save_agent(agent)

    def _flatten(self, agent: Agent, kind: str) -> None:
        """Close every position; one without a tradable price now waits for one (recorded)."""
        for sym, pos in sorted(self.ledger.wallet(agent.id).positions.items()):
            problem = self._exit_problem(agent, sym)
            if problem:
                agent.risk_state.pending_exits[sym] = (kind, pos.quantity)
                self._risk_event(
                    agent, kind, sym, f"cannot close {sym} now: {problem}; the exit waits"
                )
                continue
            self._force_sell(agent, sym, pos.quantity, kind, f"{kind}: closing {sym}")

    def _exit_problem(self, agent: Agent, symbol: str) -> str | None:
        """Why a forced exit of ``symbol`` can't execute now (market closed, price suspect,
        missing, invalid or stale), or None."""
        now = self._now()
        return (
            market_closed(self.feed.instruments.get(symbol), now)
            or self.guard.held().get(symbol)
            or price_problem(self.prices.get(symbol), now, agent.spec.risk.max_price_age_seconds)
        )

    def _retry_exits(self, agent: Agent) -> None:
        """Execute the forced exits that waited for a tradable price, once there is one."""
        pending = agent.risk_state.pending_exits
        for sym, (kind, quantity) in sorted(pending.items()):
            held = self.ledger.wallet(agent.id).quantity(sym)
            if held > 0 and self._exit_problem(agent, sym):
                continue
            del pending[sym]
            self._save_agent(agent)
            if held > 0:
                detail = f"{kind}: closing {sym} (waited for a tradable price)"
                self._force_sell(agent, sym, min(quantity, held), kind, detail)

    def _force_sell(self, agent: Agent, symbol: str, qty: Decimal, kind: str, detail: str) -> None:
        decision = Decision(Action.SELL, symbol, quantity=qty, reasoning=detail)
        rec = self._record(agent, decision, source=f"risk:{kind}")
        verdict = Verdict(True, Side.SELL, symbol, qty, price=self.prices[symbol].price)
        self._execute(agent, rec, verdict)

    # -- deciding ---------------------------------------------------------------------------------
    async def _decide(self, agent: Agent, *, source: str) -> DecisionRecord:
        """Decide inline (rule brains, and every brain when the kernel awaits slow ones)."""
        ctx = self._context(agent)
        decision = await self._ask(agent, ctx)
        return self._conclude(agent, ctx, decision, source=source)

    def _start_thinking(self, agent: Agent) -> None:
        """Start a slow (LLM) decision in the background: prices, forced exits and other agents
        go on while the model thinks; the result is applied under the lock when it arrives."""
        if agent.id in self._inflight:
            return
        ctx = self._context(agent)
        # A fresh context: the task must not inherit the tick's store transaction.
        task = asyncio.create_task(
            self._think(agent, ctx), name=f"decide-{agent.name}", context=contextvars.Context()
        )
        self._inflight[agent.id] = task
        task.add_done_callback(lambda _: self._inflight.pop(agent.id, None))

    async def _think(self, agent: Agent, ctx: BrainContext) -> None:
        decision = await self._ask(agent, ctx)
        async with self.lock:
            if self.agents.get(agent.id) is not agent:
                return  # deleted while it was thinking
            if agent.status is not AgentStatus.RUNNING or self.killed:
                decision = Decision.hold(
                    f"agent {agent.status.value} while deciding; answer dropped: "
                    f"{decision.reasoning}",
                    **decision.meta,
                )
            decision = age_checked(decision, ctx.now, self._now(), agent.spec.interval_seconds)
            try:
                with self.unit():
                    self._conclude(agent, ctx, decision, source="brain")
            except Exception:  # reported by unit(); the next decision starts afresh
                log.exception("could not apply the decision of %s", agent.name)

    def _context(self, agent: Agent) -> BrainContext:
        now = self._now()
        agent.last_decided_at = now
        wallet = self.ledger.wallet(agent.id)
        slow = _is_slow(self.brains[agent.id])
        recent, trades, closed = [], [], 0
        if slow:  # what an LLM brain's prompt and reflection read
            recent = [
                {
                    "time": r.time,
                    "action": r.action,
                    "symbol": r.symbol,
                    "status": r.status,
                    "reason": r.reason,
                    "price": r.price,
                    "quantity": r.quantity,
                }
                for r in self.store.decisions(agent.id, limit=10)
                if r.action != "hold"
            ][:5]
            rows, _ = self.store.trades(agent.id, limit=10)
            keys = (
                "time",
                "symbol",
                "side",
                "quantity",
                "price",
                "fee",
                "realized_pnl",
                "reasoning",
            )
            trades = [{k: t[k] for k in keys} for t in rows]
            closed = self.store.count_trades(agent.id, side="sell")
        return BrainContext(
            agent_id=agent.id,
            agent_name=agent.name,
            goal=agent.spec.goal,
            now=now,
            symbols=list(agent.spec.symbols),
            prices=dict(self.prices),
            history=self.history.view(now),
            wallet=wallet,
            max_buy_quantity=self._max_buy(agent, wallet),
            state=agent.brain_state,
            recent_decisions=recent,
            recent_trades=trades,
            closed_trades=closed,
        )

    async def _ask(self, agent: Agent, ctx: BrainContext) -> Decision:
        """The brain's decision; a failure or a missed deadline is a recorded hold."""
        brain = self.brains[agent.id]
        deadline = float(getattr(brain, "deadline_seconds", self.config.decision_deadline_seconds))
        try:
            if _is_slow(brain):  # in a task of its own, as a network client expects
                return await asyncio.wait_for(brain.decide(ctx), timeout=deadline)
            async with asyncio.timeout(deadline):  # in this task: no task per rule decision
                return await brain.decide(ctx)
        except TimeoutError:
            return Decision.hold(f"timeout: no decision within {deadline:g}s", timeout=True)
        except Exception as exc:  # a failing brain holds and waits for a person to resume it
            log.exception("brain of %s failed", agent.name)
            return Decision.hold(f"brain error: {exc}", brain_error=str(exc))

    def _conclude(
        self, agent: Agent, ctx: BrainContext, decision: Decision, *, source: str
    ) -> DecisionRecord:
        """Record the decision with its LLM calls, then act on it (inside a unit)."""
        now = self._now()
        agent.brain_state = ctx.state
        calls = decision.meta.pop("llm_calls", [])
        pause = decision.meta.pop("pause", None)
        if "brain_error" in decision.meta:
            self.bus.publish("error", {"agent_id": agent.id, "message": decision.reasoning}, now)
            self._set_status(agent, AgentStatus.ERROR, decision.reasoning)
        rec = self._handle(agent, decision, source=source, deterministic=source == "brain")
        if calls:
            self.store.add_llm_calls(rec.id, agent.id, now, [jsonable_call(c) for c in calls])
            summary = [{k: c.get(k) for k in LLM_CALL_SUMMARY} for c in calls]
            self.bus.publish("llm", {"agent_id": agent.id, "calls": summary}, now)
            for call in calls:
                if call.get("cache_entry") is not None and call.get("cache_key"):
                    self.store.cache_put(call["cache_key"], call["cache_entry"], now)
        if pause:
            agent.risk_state.paused_until = datetime.fromisoformat(pause["until"])
            self._risk_event(agent, "paused", None, pause["reason"])
            self._set_status(agent, AgentStatus.PAUSED, pause["reason"])
        self._save_agent(agent)
        return rec

    @atomic
    def place(self, agent_id: str, decision: Decision) -> DecisionRecord:
        """A person's own order for an agent: same risk checks and mode as the agent's own."""
        self.get(agent_id)
        if decision.symbol not in self.prices:
            raise KernelError(f"no price for {decision.symbol!r}", field="symbol")
        agent = self._running(agent_id)
        rec = self._handle(agent, decision, source="manual", deterministic=False)
        self._save_agent(agent)
        return rec

    def _handle(
        self, agent: Agent, decision: Decision, *, source: str, deterministic: bool
    ) -> DecisionRecord:
        """Record a decision, then hold, reject, queue it for approval or execute it."""
        rec = self._record(agent, decision, source=source, deterministic=deterministic)
        if decision.action is Action.HOLD and self.config.lean:
            self.holds[agent.id] += 1
            return rec
        if decision.action is Action.HOLD:
            self._resolve(rec, DecisionStatus.HELD, decision.reasoning)
            return rec
        verdict = self._check(agent, decision)
        rec.checks = [c.to_json() for c in verdict.checks]
        if not verdict.approved and verdict.hold:  # e.g. market closed: wait, not a breach
            self._resolve(rec, DecisionStatus.HELD, verdict.reason)
        elif not verdict.approved:
            self._resolve(rec, DecisionStatus.REJECTED, verdict.reason)
            self._risk_event(agent, "rejected", decision.symbol, verdict.reason)
        elif agent.spec.mode is Mode.ADVISORY:
            rec.quantity, rec.price = verdict.quantity, verdict.price
            awaited = self._awaited_approval(agent)
            if awaited is None:
                self._request_approval(rec)
            else:
                self._hold_behind(awaited, rec)
        else:
            self._execute(agent, rec, verdict)
        return rec

    def _check(self, agent: Agent, decision: Decision) -> Verdict:
        return self.risk.check(
            decision,
            profile=agent.spec.risk,
            state=agent.risk_state,
            wallet=self.ledger.wallet(agent.id),
            prices=self.prices,
            allowed_symbols=agent.spec.symbols,
            now=self._now(),
            halted="kill switch is on" if self.killed else None,
            instruments=self.feed.instruments,
            suspect=self.guard.held(),
        )

    def _max_buy(self, agent: Agent, wallet: Wallet) -> dict[str, Decimal]:
        equity = wallet.equity(self.marks)
        return {
            sym: self.risk.max_buy_quantity(agent.spec.risk, wallet, sym, self.marks[sym], equity)
            for sym in agent.spec.symbols
            if sym in self.marks
        }

    def _record(
        self, agent: Agent, decision: Decision, *, source: str, deterministic: bool = True
    ) -> DecisionRecord:
        now = self._now()
        if deterministic:  # the same tick re-run after a crash yields the same id (and order key)
            seed = f"{agent.id}|{now.isoformat()}|{source}|{decision.symbol}"
            rec_id = hashlib.sha256(seed.encode()).hexdigest()[:32]
        else:
            rec_id = new_id()
        snap = self.prices.get(decision.symbol or "")
        rec = DecisionRecord(
            id=rec_id,
            agent_id=agent.id,
            time=now,
            source=source,
            action=decision.action.value,
            status=DecisionStatus.APPROVED.value,
            symbol=decision.symbol,
            quantity=decision.quantity,
            notional=decision.notional,
            price=snap.price if snap and is_valid_price(snap.price) else None,
            reasoning=decision.reasoning,
            confidence=decision.confidence,
            meta=jsonable(decision.meta),
        )
        if decision.order_type is not OrderType.MARKET:
            rec.meta["order"] = jsonable(
                {
                    "type": decision.order_type,
                    "limit_price": decision.limit_price,
                    "stop_price": decision.stop_price,
                }
            )
        return rec

    def _resolve(self, rec: DecisionRecord, status: DecisionStatus, reason: str) -> None:
        rec.status = status.value
        rec.reason = reason
        rec.resolved_at = self._now()
        self.store.save_decision(rec)
        self.bus.publish("decision", lambda: {"decision": jsonable(rec)}, self._now())

    def _execute(self, agent: Agent, rec: DecisionRecord, verdict: Verdict) -> Fill | None:
        """Send the sized order to the broker and apply the fill through the ledger."""
        assert verdict.side is not None and verdict.symbol is not None
        now = self._now()
        shape = rec.meta.get("order") or {}
        order = Order(
            id=rec.id,
            agent_id=agent.id,
            symbol=verdict.symbol,
            side=verdict.side,
            quantity=verdict.quantity,
            idempotency_key=f"order:{rec.id}",
            type=OrderType(shape.get("type", OrderType.MARKET.value)),
            limit_price=_dec(shape.get("limit_price")),
            stop_price=_dec(shape.get("stop_price")),
            decision_id=rec.id,
            reason=rec.reasoning,
            created_at=now,
            whole=verdict.whole,
        )
        rec.quantity = verdict.quantity
        snap = self.prices[verdict.symbol]
        try:
            fill = self.broker.submit(
                order, self.ledger.wallet(agent.id), snap, now, resize=agent.spec.risk.resize_to_fit
            )
        except OrderRejected as exc:
            self._resolve(rec, DecisionStatus.REJECTED, exc.reason)
            self._risk_event(agent, "rejected", verdict.symbol, exc.reason)
            return None
        if fill is None:  # a limit or stop order now rests with the broker
            self.store.save_decision(rec)
            self.store.save_order(order, "open")
            self._publish_agent(agent)
            return None
        self.store.save_decision(rec)
        before = self.ledger.view(agent.id)
        try:
            after = self.ledger.apply(fill)
        except DuplicateEntry:
            log.info("fill %s already stored; not applied twice", fill.idempotency_key)
            return None
        except LedgerError as exc:
            self._resolve(rec, DecisionStatus.REJECTED, str(exc))
            return None
        agent.risk_state.last_trade_at = now
        rec.status, rec.price, rec.resolved_at = DecisionStatus.EXECUTED.value, fill.price, now
        self.bus.publish("decision", lambda: {"decision": jsonable(rec)}, now)
        realized = _realized(fill, before, after)
        self.bus.publish("trade", functools.partial(_trade_event, fill, agent.name, realized), now)
        self._publish_agent(agent)
        return fill

    def _fill_resting(self, tick: Tick) -> None:
        if not self.broker.open_orders():
            return
        wallets = {a: self.ledger.view(a) for a in self.agents}
        for order, result in self.broker.on_tick(tick, wallets):
            agent = self.agents.get(order.agent_id)
            if isinstance(result, OrderRejected) or agent is None:
                self.store.save_order(order, "cancelled")
                continue
            before = self.ledger.view(order.agent_id)
            try:
                after = self.ledger.apply(result)
            except (DuplicateEntry, LedgerError) as exc:
                self.store.save_order(order, "cancelled")
                log.warning("resting order %s not applied: %s", order.id, exc)
                continue
            agent.risk_state.last_trade_at = tick.time
            self._publish_agent(agent)
            realized = _realized(result, before, after)
            self.bus.publish(
                "trade", functools.partial(_trade_event, result, agent.name, realized), tick.time
            )

    # -- approvals --------------------------------------------------------------------------------
    # A person is asked about one decision of an agent at a time, and it stays approvable until
    # its expiry (on the wall clock) or until the person answers. The agent's newer actionable
    # decisions meanwhile are held, each naming the decision it waits for, and counted on that
    # decision (``meta["waiting_behind"]``) for the dashboard, the CLI and Telegram.

    def pending(self) -> list[DecisionRecord]:
        return self.store.decisions(status=DecisionStatus.PENDING.value, limit=1000)

    def _request_approval(self, rec: DecisionRecord) -> None:
        rec.status = DecisionStatus.PENDING.value
        rec.expires_at = self.config.wall_clock() + self.config.approval_ttl
        self.store.save_decision(rec)
        self.bus.publish("approval", {"event": "requested", "decision": jsonable(rec)}, self._now())

    def _awaited_approval(self, agent: Agent) -> DecisionRecord | None:
        """The agent's decision a person is asked about (its oldest pending one), once any whose
        expiry has passed are expired."""
        wall = self.config.wall_clock()
        pending = self.store.decisions(agent.id, DecisionStatus.PENDING.value, limit=1000)
        for rec in reversed(pending):  # oldest first
            if rec.expires_at is None or rec.expires_at > wall:
                return rec
            self._expire(rec, "no answer before the expiry")
        return None

    def _hold_behind(self, awaited: DecisionRecord, rec: DecisionRecord) -> None:
        """Hold ``rec`` while a person has ``awaited`` (of the same agent) to answer."""
        rec.meta["waiting_for"] = awaited.id
        self._resolve(
            rec, DecisionStatus.HELD, f"waiting for your answer on decision {awaited.id[:12]}"
        )
        awaited.meta["waiting_behind"] = int(awaited.meta.get("waiting_behind", 0)) + 1
        self.store.save_decision(awaited)
        self.bus.publish(
            "approval", {"event": "waiting", "decision": jsonable(awaited)}, self._now()
        )

    def _expire(self, rec: DecisionRecord, reason: str) -> None:
        self._resolve(rec, DecisionStatus.EXPIRED, reason)
        self.bus.publish("approval", {"event": "expired", "decision": jsonable(rec)}, self._now())

    def _expire_approvals(self) -> None:
        if self.config.lean and all(a.spec.mode is Mode.AUTONOMOUS for a in self.agents.values()):
            return  # approvals are only ever requested for advisory agents
        wall = self.config.wall_clock()
        for rec in self.pending():
            if rec.expires_at is not None and rec.expires_at <= wall:
                self._expire(rec, "no answer before the expiry")

    def _pending_decision(self, decision_id: str) -> tuple[DecisionRecord, Agent]:
        rec = self.store.get_decision(decision_id)
        if rec is None:
            raise NotFound("decision", decision_id)
        if rec.status != DecisionStatus.PENDING.value:
            raise KernelError(
                f"decision is {rec.status}, not pending", field="decision_id", code="conflict"
            )
        agent = self.agents.get(rec.agent_id)
        if agent is None:
            raise NotFound("agent", rec.agent_id)
        return rec, agent

    @atomic
    def approve(self, decision_id: str) -> DecisionRecord:
        """Re-check risk at the current price, then execute (or reject with the reason)."""
        rec, agent = self._pending_decision(decision_id)
        if rec.expires_at is not None and rec.expires_at <= self.config.wall_clock():
            self._expire(rec, "approved after the expiry")
            return rec
        decision = Decision(
            Action(rec.action), rec.symbol, quantity=rec.quantity, reasoning=rec.reasoning
        )
        verdict = self._check(agent, decision)  # the order shape stays in rec.meta
        rec.checks = [c.to_json() for c in verdict.checks]
        self.bus.publish("approval", {"event": "approved", "decision": jsonable(rec)}, self._now())
        if not verdict.approved:
            self._resolve(rec, DecisionStatus.REJECTED, f"re-check failed: {verdict.reason}")
            return rec
        rec.status = DecisionStatus.APPROVED.value
        self._execute(agent, rec, verdict)
        self.store.save_agent(agent)
        return self.store.get_decision(rec.id) or rec

    @atomic
    def reject(self, decision_id: str) -> DecisionRecord:
        rec, _ = self._pending_decision(decision_id)
        self._resolve(rec, DecisionStatus.REJECTED, "rejected by a person")
        self.bus.publish("approval", {"event": "rejected", "decision": jsonable(rec)}, self._now())
        return rec

    # -- commands ---------------------------------------------------------------------------------
    @atomic
    def create_agent(self, spec: AgentSpec) -> Agent:
        if any(a.name.lower() == spec.name.lower() for a in self.agents.values()):
            raise KernelError(f"an agent named {spec.name!r} exists", field="name", code="conflict")
        if spec.source is not None:
            try:
                symbols = restrict_to_source(self.feed, spec.source, spec.symbols)
            except SourceError as exc:
                raise KernelError(str(exc), field="source") from exc
            spec = spec.model_copy(update={"symbols": symbols})
        unknown = [s for s in spec.symbols if s not in self.feed.instruments]
        if unknown:
            raise KernelError(
                f"unknown symbol(s) {unknown}; known: {sorted(self.feed.instruments)}",
                field="symbols",
            )
        brain = create_brain(
            spec.brain, spec.params, llm=self.llm
        )  # raises on unknown strategy / bad params
        now = self._now()
        agent = Agent(id=new_id(), spec=spec, created_at=now)
        allowance = Deposit(agent.id, spec.allowance, now, f"deposit:{agent.id}:initial", True)
        self.ledger.open_wallet(
            allowance, persist=lambda w: self.store.add_agent(agent, allowance, w)
        )
        self.agents[agent.id] = agent
        self.brains[agent.id] = brain
        self._publish_agent(agent)
        return agent

    def get(self, agent_id: str) -> Agent:
        agent = self.agents.get(agent_id)
        if agent is None:
            raise NotFound("agent", agent_id)
        return agent

    def _running(self, agent_id: str) -> Agent:
        """The agent, if it is running: a paused, stopped or failed agent makes no trades."""
        agent = self.get(agent_id)
        if agent.status is not AgentStatus.RUNNING:
            raise KernelError(
                f"agent {agent.name!r} is {agent.status.value}; resume it first",
                field="status",
                code="conflict",
            )
        return agent

    @atomic
    def delete_agent(self, agent_id: str) -> None:
        agent = self.get(agent_id)
        self._cancel_agent_work(agent, "agent deleted")
        self.store.delete_agent(agent_id, self._now())
        del self.agents[agent_id]
        del self.brains[agent_id]
        self.ledger.close_wallet(agent_id)
        self.bus.publish("agent", {"event": "deleted", "agent_id": agent_id}, self._now())

    @atomic
    def set_mode(self, agent_id: str, mode: Mode) -> Agent:
        agent = self.get(agent_id)
        agent.spec = agent.spec.model_copy(update={"mode": mode})
        self.store.save_agent(agent)
        self._publish_agent(agent)
        return agent

    @atomic
    def pause(self, agent_id: str) -> Agent:
        agent = self.get(agent_id)
        if agent.status is not AgentStatus.PAUSED:
            self._set_status(agent, AgentStatus.PAUSED, "paused by a person")
        return agent

    @atomic
    def resume(self, agent_id: str) -> Agent:
        agent = self.get(agent_id)
        if agent.risk_state.paused_until and self._now() < agent.risk_state.paused_until:
            raise KernelError(
                f"paused by the daily loss limit until {agent.risk_state.paused_until}",
                field="status",
                code="conflict",
            )
        agent.risk_state.paused_until = None
        if agent.status is AgentStatus.STOPPED:
            agent.risk_state.peak_equity = None  # a restart begins a new drawdown window
        self._set_status(agent, AgentStatus.RUNNING, "resumed")
        return agent

    async def trade_now(self, agent_id: str) -> DecisionRecord:
        """Run one decision now (still subject to risk and the agent's mode). The lock is not
        held while the brain thinks, so a slow model never stops the market."""
        async with self.lock:
            self.get(agent_id)
            if self.killed:
                raise KernelError("the kill switch is on", code="conflict")
            agent = self._running(agent_id)
            if not self.prices:
                raise KernelError("no prices yet: the market feed has not started", code="conflict")
            ctx = self._context(agent)
        decision = await self._ask(agent, ctx)
        async with self.lock:
            with self.unit():
                return self._conclude(agent, ctx, decision, source="manual")

    @atomic
    def deposit(self, agent_id: str, amount: Decimal, key: str | None = None) -> Wallet:
        self.get(agent_id)
        dep = Deposit(agent_id, amount, self._now(), key or f"deposit:{new_id()}")
        try:
            wallet = self.ledger.deposit(dep)
        except LedgerError as exc:
            raise KernelError(str(exc), field="amount") from exc
        self._publish_agent(self.agents[agent_id])
        return wallet

    @atomic
    def kill(self, agent_id: str | None = None, *, flatten: bool = False) -> list[str]:
        """Global (no agent) or per-agent kill: stop deciding, cancel approvals and resting
        orders, optionally close positions. Returns the agents affected."""
        targets = [self.get(agent_id)] if agent_id else list(self.agents.values())
        if agent_id is None:
            self.killed = True
            self.store.set_state(KILL_KEY, {"on": True, "time": self._now().isoformat()})
        for agent in targets:
            self._cancel_agent_work(agent, "kill switch")
            if flatten:
                self._flatten(agent, "kill")
            self._set_status(agent, AgentStatus.STOPPED, "kill switch")
        self._risk_event(
            None,
            "kill",
            None,
            f"kill switch on for {agent_id or 'all agents'}"
            + (" with positions closed" if flatten else ""),
        )
        return [a.id for a in targets]

    @atomic
    def release_kill(self) -> None:
        """Lift the global kill switch; agents stay stopped until resumed one by one."""
        self.killed = False
        self.store.set_state(KILL_KEY, {"on": False, "time": self._now().isoformat()})
        self._risk_event(None, "kill_released", None, "kill switch released")

    def open_orders(self, agent_id: str | None = None) -> list[Order]:
        return self.broker.open_orders(agent_id)

    @atomic
    def cancel_order(self, order_id: str) -> Order:
        order = self.broker.cancel(order_id)
        if order is None:
            raise NotFound("open order", order_id)
        self.store.save_order(order, "cancelled")
        rec = self.store.get_decision(order.decision_id or "")
        if rec is not None:
            self._resolve(rec, DecisionStatus.REJECTED, "order cancelled by a person")
        return order

    def _cancel_agent_work(self, agent: Agent, why: str) -> None:
        for rec in self.pending():
            if rec.agent_id == agent.id:
                self._resolve(rec, DecisionStatus.REJECTED, f"cancelled: {why}")
        for order in self.broker.cancel_all(agent.id):
            self.store.save_order(order, "cancelled")
            placed = self.store.get_decision(order.decision_id or "")
            if placed is not None:
                self._resolve(placed, DecisionStatus.REJECTED, f"order cancelled: {why}")

    # -- audit and views --------------------------------------------------------------------------
    def audit(self) -> list[Mismatch]:
        """Live wallets and stored wallets against a rebuild from the stored history."""
        entries = self.store.ledger_entries()
        live = {a: self.ledger.wallet(a) for a in self.ledger.agent_ids()}
        stored = {a: w for a, w in self.store.load_wallets().items() if a in live}
        live_entries = {a: e for a, e in entries.items() if a in live}
        return reconcile(live, live_entries) + reconcile(stored, live_entries)

    def price_list(self) -> list[dict[str, Any]]:
        """The latest accepted price of each symbol, with ``suspect`` (and, when set, why)."""
        suspects = self.guard.suspects()
        out = []
        for sym in sorted(self.prices):
            row = jsonable(self.prices[sym])
            row["suspect"] = sym in suspects
            row["suspect_detail"] = suspects[sym].as_json() if sym in suspects else None
            out.append(row)
        return out

    def agent_view(self, agent: Agent) -> dict[str, Any]:
        wallet = self.ledger.wallet(agent.id)
        equity = wallet.equity(self.marks)
        pnl = equity - wallet.funding
        positions = []
        for sym, pos in sorted(wallet.positions.items()):
            mark = self.marks.get(sym)
            positions.append(
                {
                    "symbol": sym,
                    "quantity": pos.quantity,
                    "avg_cost": pos.avg_cost,
                    "cost": pos.cost,
                    "mark": mark,
                    "value": pos.value(mark) if mark is not None else None,
                    "unrealized_pnl": pos.unrealized_pnl(mark) if mark is not None else None,
                    "opened_at": pos.opened_at,
                }
            )
        return jsonable(
            {
                "id": agent.id,
                "name": agent.name,
                "brain": agent.spec.brain,
                "brain_description": self.brains[agent.id].describe(),
                "notes": list(agent.brain_state.get("notes", [])),
                "params": agent.spec.params,
                "goal": agent.spec.goal,
                "mode": agent.spec.mode,
                "status": agent.status,
                "status_reason": agent.status_reason,
                "symbols": agent.spec.symbols,
                "interval_seconds": agent.spec.interval_seconds,
                "risk": agent.spec.risk.model_dump(mode="json"),
                "created_at": agent.created_at,
                "last_decided_at": agent.last_decided_at,
                "wallet": {
                    "allowance": wallet.allowance,
                    "cash": wallet.cash,
                    "deposits": wallet.deposits,
                    "funding": wallet.funding,
                    "equity": equity,
                    "pnl": pnl,
                    "pnl_pct": (pnl / wallet.funding * 100) if wallet.funding else ZERO,
                    "realized_pnl": wallet.realized_pnl,
                    "unrealized_pnl": wallet.unrealized_pnl(self.marks),
                    "fees_paid": wallet.fees_paid,
                    "positions": positions,
                },
            }
        )

    def _publish_agent(self, agent: Agent) -> None:
        if self.config.lean:
            return  # nobody follows a backtest's agent views
        self.bus.publish(
            "agent", {"event": "updated", "agent": self.agent_view(agent)}, self._now()
        )

    def _save_agent(self, agent: Agent) -> None:
        """Save the agent at the end of the open unit (once, however often it changed), now
        when no unit is open, or at the next :meth:`flush` in lean mode."""
        changed = self._unit_agents.get()
        if self.config.lean:
            self._dirty[agent.id] = agent
        elif changed is not None:
            changed[agent.id] = agent
        else:
            self.store.save_agent(agent)

    def _write_agents(self, changed: dict[str, Agent]) -> None:
        self.store.save_agents(
            agent
            for agent_id, agent in changed.items()
            if self.agents.get(agent_id) is agent  # not deleted or reloaded meanwhile
        )
        changed.clear()

    def flush(self) -> None:
        """Lean mode: write the agents changed since the last flush and the clock (call it
        inside the unit that ends a batch of ticks)."""
        self._write_agents(self._dirty)
        if self.now is not None:
            self.store.set_state(CLOCK_KEY, {"time": self.now.isoformat()})

    def _set_status(self, agent: Agent, status: AgentStatus, reason: str) -> None:
        agent.status, agent.status_reason = status, reason
        self.store.save_agent(agent)
        self._publish_agent(agent)

    def _risk_event(self, agent: Agent | None, kind: str, symbol: str | None, detail: str) -> None:
        now = self._now()
        agent_id = agent.id if agent else None
        self.store.add_risk_event(kind, detail, now, agent_id, symbol)
        self.bus.publish(
            "risk", {"agent_id": agent_id, "kind": kind, "symbol": symbol, "detail": detail}, now
        )

    def _now(self) -> datetime:
        return self.now or datetime.now(UTC)


def _dec(value: object) -> Decimal | None:
    return Decimal(str(value)) if value is not None else None


def _is_slow(brain: Brain) -> bool:
    """Brains that wait on a network (LLMs) decide in the background."""
    return bool(getattr(brain, "slow", False))


def jsonable_call(call: dict[str, Any]) -> dict[str, Any]:
    """An LLM call record ready for the store: JSON-safe except its money and time fields."""
    return {k: (v if k in ("cost", "time") else jsonable(v)) for k, v in call.items()}


def _realized(fill: Fill, before: Wallet, after: Wallet) -> Decimal | None:
    """The P&L a sell realized (as the store records it with the trade); None for a buy."""
    return after.realized_pnl - before.realized_pnl if fill.side is Side.SELL else None


def _trade_event(
    fill: Fill, agent_name: str | None, realized: Decimal | None = None
) -> dict[str, Any]:
    """The payload of a ``trade`` event: the fill with the P&L it realized (a sell's)."""
    return {
        "trade": jsonable(fill) | {"realized_pnl": jsonable(realized)},
        "agent_name": agent_name,
    }
