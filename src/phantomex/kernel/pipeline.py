"""The decision pipeline: context → brain → risk check → approval queue or execution."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
from collections.abc import Iterator
from datetime import datetime
from typing import cast

from phantomex.brains.base import (
    Brain,
    BrainContext,
    LazyValues,
    ModelBrain,
    TimedBrain,
    capable,
    instant_brain,
)
from phantomex.brains.llm.audit import record_calls
from phantomex.domain.agent import Agent
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import (
    ADVISORY,
    HOLD_ACTION,
    RUNNING,
    AgentStatus,
    Decision,
    DecisionStatus,
)
from phantomex.domain.staleness import age_checked
from phantomex.kernel.approval_queue import ApprovalQueue
from phantomex.kernel.events import ErrorRaised, LLMCalled
from phantomex.kernel.execution import Execution
from phantomex.kernel.journal import Journal
from phantomex.kernel.state import KernelError, KernelState, is_slow
from phantomex.kernel.unit import UnitOfWork
from phantomex.market.base import PacedFeed
from phantomex.risk.engine import BuyLimits, Verdict

log = logging.getLogger(__name__)

#: The fields of an agent's recent trades an LLM brain's prompt reads.
TRADE_KEYS = ("time", "symbol", "side", "quantity", "price", "fee", "realized_pnl", "reasoning")


class DecisionPipeline:
    """Asks due agents' brains and carries each decision through risk to its outcome."""

    def __init__(
        self,
        state: KernelState,
        journal: Journal,
        work: UnitOfWork,
        execution: Execution,
    ) -> None:
        self.state = state
        self.journal = journal
        self.work = work
        self.execution = execution
        self.approvals = ApprovalQueue(state, journal, execution, self.check)
        self.inflight: dict[str, asyncio.Task[None]] = {}  # slow decisions still thinking

    async def tick(self, now: datetime) -> None:
        """Let every running, due agent decide (slow brains in the background)."""
        s = self.state
        for agent in list(s.agents.values()):
            last = agent.last_decided_at
            if agent.status is not RUNNING or (
                last is not None and (now - last).total_seconds() < agent.spec.interval_seconds
            ):
                continue  # not running, or not due (its interval since it last decided)
            acts = s.plan and s.plan.may_act(agent.id, s.ledger.view(agent.id), now)
            if acts is False:
                agent.last_decided_at = now  # a hold, as the brain would have decided
                s.holds[agent.id] += 1
            elif not s.config.await_slow_brains and is_slow(s.brains[agent.id]):
                self._start_thinking(agent)
            else:
                await self.decide(agent, source="brain")

    async def decide(self, agent: Agent, *, source: str) -> DecisionRecord:
        """Decide inline (rule brains, and every brain when the kernel awaits slow ones)."""
        ctx = self.context(agent)
        decision = await self._ask(agent, ctx)
        return self.conclude(agent, ctx, decision, source=source)

    async def trade_now(self, agent_id: str) -> DecisionRecord:
        """Run one decision now (still subject to risk and the agent's mode). The lock is not
        held while the brain thinks, so a slow model never stops the market."""
        s = self.state
        async with s.lock:
            s.agent(agent_id)
            if s.killed:
                raise KernelError("the kill switch is on", code="conflict")
            agent = self.running(agent_id)
            if not s.prices:
                raise KernelError("no prices yet: the market feed has not started", code="conflict")
            ctx = self.context(agent)
        decision = await self._ask(agent, ctx)
        async with s.lock:
            with self.work.unit():
                return self.conclude(agent, ctx, decision, source="manual")

    def running(self, agent_id: str) -> Agent:
        """The agent, if it is running: a paused, stopped or failed agent makes no trades."""
        agent = self.state.agent(agent_id)
        if agent.status is not AgentStatus.RUNNING:
            raise KernelError(
                f"agent {agent.name!r} is {agent.status.value}; resume it first",
                field="status",
                code="conflict",
            )
        return agent

    def _start_thinking(self, agent: Agent) -> None:
        """Start a slow (LLM) decision in the background: prices, forced exits and other agents
        go on while the model thinks; the result is applied under the lock when it arrives."""
        if agent.id in self.inflight:
            return
        ctx = self.context(agent)
        # A fresh context: the task must not inherit the tick's store transaction.
        task = asyncio.create_task(
            self._think(agent, ctx), name=f"decide-{agent.name}", context=contextvars.Context()
        )
        self.inflight[agent.id] = task
        task.add_done_callback(lambda _: self.inflight.pop(agent.id, None))

    async def _think(self, agent: Agent, ctx: BrainContext) -> None:
        s = self.state
        decision = await self._ask(agent, ctx)
        async with s.lock:
            if s.agents.get(agent.id) is not agent:
                return  # deleted while it was thinking
            if agent.status is not AgentStatus.RUNNING or s.killed:
                decision = Decision.hold(
                    f"agent {agent.status.value} while deciding; answer dropped: "
                    f"{decision.reasoning}",
                    **decision.meta,
                )
            decision = age_checked(decision, ctx.now, s.time(), agent.spec.interval_seconds)
            try:
                with self.work.unit():
                    self.conclude(agent, ctx, decision, source="brain")
            except Exception:  # reported by unit(); the next decision starts afresh
                log.exception("could not apply the decision of %s", agent.name)

    def context(self, agent: Agent) -> BrainContext:
        s = self.state
        now = s.time()
        agent.last_decided_at = now
        brain = s.brains[agent.id]
        spec = agent.spec
        recent, trades, closed = [], [], 0
        marks = dict(s.marks)  # the buy limits are at the marks of now, whenever read
        if instant_brain(brain) is not None:  # reads its context at once (see InstantBrain)
            wallet = s.ledger.view(agent.id)
        else:
            wallet = s.ledger.wallet(agent.id)
            if is_slow(brain):  # what an LLM brain's prompt and reflection read
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
                    for r in s.store.decisions(agent.id, limit=10)
                    if r.action != "hold"
                ][:5]
                rows, _ = s.store.trades(agent.id, limit=10)
                trades = [{k: t[k] for k in TRADE_KEYS} for t in rows]
                closed = s.store.count_trades(agent.id, side="sell")
        limits = BuyLimits(s.risk, spec.risk, wallet, marks)
        return BrainContext(
            agent_id=agent.id,
            agent_name=agent.name,
            goal=spec.goal,
            now=now,
            symbols=list(spec.symbols),
            prices=dict(s.prices),
            history=s.history.view(now),
            wallet=wallet,
            max_buy_quantity=LazyValues([sym for sym in spec.symbols if sym in marks], limits),
            state=agent.brain_state,
            recent_decisions=recent,
            recent_trades=trades,
            closed_trades=closed,
            explain=not s.config.lean,
        )

    async def _ask(self, agent: Agent, ctx: BrainContext) -> Decision:
        """The brain's decision; a failure or a missed deadline is a recorded hold."""
        brain = self.state.brains[agent.id]
        try:
            quick = instant_brain(brain)
            if quick is not None:
                return quick.decide_now(ctx)  # no deadline could expire
            if is_slow(brain):  # in a task of its own, as a network client expects
                return await asyncio.wait_for(brain.decide(ctx), timeout=self._deadline(brain))
            async with asyncio.timeout(self._deadline(brain)):  # no task per decision
                return await brain.decide(ctx)
        except TimeoutError:
            deadline = self._deadline(brain)
            return Decision.hold(f"timeout: no decision within {deadline:g}s", timeout=True)
        except Exception as exc:  # a failing brain holds and waits for a person to resume it
            log.exception("brain of %s failed", agent.name)
            return Decision.hold(f"brain error: {exc}", brain_error=str(exc))

    def _deadline(self, brain: Brain) -> float:
        """Seconds the brain has to decide: its own deadline, or the kernel's."""
        if capable(brain, TimedBrain):
            return float(cast(TimedBrain, brain).deadline_seconds)
        return self.state.config.decision_deadline_seconds

    def abandon(self, agent: Agent, reason: str) -> DecisionRecord:
        """Record a hold for a decision that will never end (inside a unit)."""
        hold = Decision.hold(reason, abandoned=True)
        return self.conclude(agent, self.context(agent), hold, source="brain")

    def llm_intervals(self) -> Iterator[tuple[str, str, float]]:
        """``(endpoint, model, wall seconds between decisions)`` per running LLM agent: the
        schedule the LLM runtime keeps models warm for. A paced replay runs ``speed`` market
        seconds per wall second; an unpaced one (speed 0) calls again at once."""
        s = self.state
        if s.killed:
            return
        speed = float(s.feed.speed) if isinstance(s.feed, PacedFeed) else 1.0
        paced = 0 < speed < math.inf
        for agent in list(s.agents.values()):
            brain = s.brains.get(agent.id)
            if capable(brain, ModelBrain) and agent.status is AgentStatus.RUNNING:
                uses = cast(ModelBrain, brain).llm_model
                yield (*uses, agent.spec.interval_seconds / speed if paced else 0.0)

    def conclude(
        self, agent: Agent, ctx: BrainContext, decision: Decision, *, source: str
    ) -> DecisionRecord:
        """Record the decision with its LLM calls, then act on it (inside a unit)."""
        s, journal = self.state, self.journal
        now = s.time()
        agent.brain_state = ctx.state
        calls = decision.meta.pop("llm_calls", [])
        pause = decision.meta.pop("pause", None)
        if "brain_error" in decision.meta:
            s.bus.emit(ErrorRaised(decision.reasoning, agent.id), now)
            journal.set_status(agent, AgentStatus.ERROR, decision.reasoning)
        rec = self.handle(agent, decision, source=source, deterministic=source == "brain")
        if calls:
            summary = record_calls(s.store, rec.id, agent.id, now, calls)
            s.bus.emit(LLMCalled(agent.id, summary), now)
        if pause:
            agent.risk_state.paused_until = datetime.fromisoformat(pause["until"])
            journal.risk_event(agent, "paused", None, pause["reason"])
            journal.set_status(agent, AgentStatus.PAUSED, pause["reason"])
        self.work.save_agent(agent)
        return rec

    def place(self, agent_id: str, decision: Decision) -> DecisionRecord:
        """A person's own order for an agent: same risk checks and mode as the agent's own."""
        self.state.agent(agent_id)
        if decision.symbol not in self.state.prices:
            raise KernelError(f"no price for {decision.symbol!r}", field="symbol")
        agent = self.running(agent_id)
        rec = self.handle(agent, decision, source="manual", deterministic=False)
        self.work.save_agent(agent)
        return rec

    def handle(
        self, agent: Agent, decision: Decision, *, source: str, deterministic: bool
    ) -> DecisionRecord:
        """Record a decision, then hold, reject, queue it for approval or execute it."""
        s, journal = self.state, self.journal
        rec = journal.record(agent, decision, source=source, deterministic=deterministic)
        if decision.action is HOLD_ACTION and s.config.lean:
            s.holds[agent.id] += 1
            return rec
        if decision.action is HOLD_ACTION:
            journal.resolve(rec, DecisionStatus.HELD, decision.reasoning)
            return rec
        verdict = self.check(agent, decision)
        if not s.config.lean:  # a lean run's records are never read back for their checks
            rec.checks = [c.to_json() for c in verdict.checks]
        if not verdict.approved and verdict.hold:  # e.g. market closed: wait, not a breach
            journal.resolve(rec, DecisionStatus.HELD, verdict.reason)
        elif not verdict.approved:
            journal.resolve(rec, DecisionStatus.REJECTED, verdict.reason)
            journal.risk_event(agent, "rejected", decision.symbol, verdict.reason)
        elif agent.spec.mode is ADVISORY:
            rec.quantity, rec.price = verdict.quantity, verdict.price
            self.approvals.submit(agent, rec)
        else:
            self.execution.execute(agent, rec, verdict)
        return rec

    def check(self, agent: Agent, decision: Decision) -> Verdict:
        s = self.state
        return s.risk.check(
            decision,
            profile=agent.spec.risk,
            state=agent.risk_state,
            wallet=s.ledger.view(agent.id),  # read only
            prices=s.prices,
            allowed_symbols=agent.spec.symbols,
            now=s.time(),
            halted="kill switch is on" if s.killed else None,
            instruments=s.feed.instruments,
            suspect=s.guard.held(),
            explain=not s.config.lean,  # a lean run never reads the lines of passed checks
        )
