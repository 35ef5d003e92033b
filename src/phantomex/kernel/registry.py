"""The agent registry: agents and their brains and wallets, created, changed and removed,
and the audit of the wallets against their history."""

from __future__ import annotations

from decimal import Decimal

from phantomex.brains.base import Brain
from phantomex.brains.registry import create_brain
from phantomex.domain.agent import Agent, AgentSpec, new_id
from phantomex.domain.models import AgentStatus, Deposit, Mode, OrderStatus, Wallet
from phantomex.kernel.approval_queue import ApprovalQueue
from phantomex.kernel.events import AgentDeleted
from phantomex.kernel.journal import Journal
from phantomex.kernel.state import KernelError, KernelState
from phantomex.ledger.ledger import LedgerError
from phantomex.ledger.reconcile import Mismatch, reconcile
from phantomex.market.sources import SourceError, restrict_to_source
from phantomex.problems import Problem, Problems, reason_of


class AgentRegistry:
    """Loads agents from the store; creates, deletes, pauses, resumes and funds them."""

    def __init__(
        self, state: KernelState, journal: Journal, approvals: ApprovalQueue, problems: Problems
    ) -> None:
        self.state = state
        self.journal = journal
        self.approvals = approvals
        self.problems = problems  # what start-up skipped (see load())

    def load(self) -> None:
        """Restore agents, brains, wallets and resting orders from the store. An agent that
        cannot be read or run is skipped and listed in :attr:`problems`."""
        s = self.state
        s.agents.clear()
        s.brains.clear()
        for agent_id in s.ledger.agent_ids():
            s.ledger.close_wallet(agent_id)
        wallets = s.store.load_wallets()
        for agent in s.store.load_agents(on_error=self._skip):
            try:
                brain = create_brain(agent.spec.brain, agent.spec.params, llm=s.llm)
                s.ledger.restore(wallets[agent.id])
            except Exception as exc:  # one agent that cannot run never stops the server
                self._skip(agent.id, agent.name, exc)
                continue
            s.agents[agent.id] = agent
            s.brains[agent.id] = brain
        s.broker.cancel_all()
        s.broker.remember_keys(s.store.used_keys())
        for order in s.store.open_orders():
            if order.agent_id in s.agents:
                s.broker.restore_order(order)

    def _skip(self, agent_id: str, name: str, exc: Exception) -> None:
        fix = f"remove it (phantomex agents remove {agent_id}, or the dashboard) and add it again"
        self.problems.add(Problem("agent", name, reason_of(exc), id=agent_id, fix=fix))

    def create(self, spec: AgentSpec, brain: Brain | None = None) -> Agent:
        """A new agent with its allowance; ``brain`` (instrumented or custom) replaces the one
        its spec names, which must still be a registered strategy."""
        s = self.state
        if any(a.name.lower() == spec.name.lower() for a in s.agents.values()):
            raise KernelError(f"an agent named {spec.name!r} exists", field="name", code="conflict")
        if spec.source is not None:
            try:
                symbols = restrict_to_source(s.feed, spec.source, spec.symbols)
            except SourceError as exc:
                raise KernelError(str(exc), field="source") from exc
            spec = spec.model_copy(update={"symbols": symbols})
        unknown = [sym for sym in spec.symbols if sym not in s.feed.instruments]
        if unknown:
            raise KernelError(
                f"unknown symbol(s) {unknown}; known: {sorted(s.feed.instruments)}",
                field="symbols",
            )
        named = create_brain(spec.brain, spec.params, llm=s.llm)  # raises on unknown/bad params
        brain = brain or named
        now = s.time()
        agent = Agent(id=new_id(), spec=spec, created_at=now)
        allowance = Deposit(agent.id, spec.allowance, now, f"deposit:{agent.id}:initial", True)
        s.ledger.open_wallet(allowance, persist=lambda w: s.store.add_agent(agent, allowance, w))
        s.agents[agent.id] = agent
        s.brains[agent.id] = brain
        self.journal.publish_agent(agent)
        return agent

    def delete(self, agent_id: str) -> None:
        s = self.state
        agent = s.agent(agent_id)
        self.approvals.cancel_work(agent, "agent deleted")
        s.store.delete_agent(agent_id, s.time())
        del s.agents[agent_id]
        del s.brains[agent_id]
        s.ledger.close_wallet(agent_id)
        s.bus.emit(AgentDeleted(agent_id), s.time())

    def set_mode(self, agent_id: str, mode: Mode) -> Agent:
        agent = self.state.agent(agent_id)
        agent.spec = agent.spec.model_copy(update={"mode": mode})
        self.state.store.save_agent(agent)
        self.journal.publish_agent(agent)
        return agent

    def pause(self, agent_id: str) -> Agent:
        agent = self.state.agent(agent_id)
        if agent.status is not AgentStatus.PAUSED:
            self.journal.set_status(agent, AgentStatus.PAUSED, "paused by a person")
        return agent

    def resume(self, agent_id: str) -> Agent:
        agent = self.state.agent(agent_id)
        until = agent.risk_state.paused_until
        if until and self.state.time() < until:
            raise KernelError(
                f"paused by the daily loss limit until {until}", field="status", code="conflict"
            )
        agent.risk_state.paused_until = None
        if agent.status is AgentStatus.STOPPED:
            agent.risk_state.peak_equity = None  # a restart begins a new drawdown window
        self.journal.set_status(agent, AgentStatus.RUNNING, "resumed")
        return agent

    def deposit(self, agent_id: str, amount: Decimal, key: str | None = None) -> Wallet:
        s = self.state
        agent = s.agent(agent_id)
        dep = Deposit(agent_id, amount, s.time(), key or f"deposit:{new_id()}")
        try:
            wallet = s.ledger.deposit(dep)
        except LedgerError as exc:
            raise KernelError(str(exc), field="amount") from exc
        self.journal.publish_agent(agent)
        return wallet

    def delete_skipped(self, agent_id: str) -> None:
        """Delete a stored agent that start-up skipped: its resting orders are cancelled, its
        trades stay for the audit (inside a unit)."""
        s = self.state
        for order in s.store.open_orders():
            if order.agent_id == agent_id:
                s.store.save_order(order, OrderStatus.CANCELLED)
        s.store.delete_agent(agent_id, s.time())

    def audit(self) -> list[Mismatch]:
        """Live wallets and stored wallets against a rebuild from the stored history."""
        s = self.state
        entries = s.store.ledger_entries()
        live = {a: s.ledger.wallet(a) for a in s.ledger.agent_ids()}
        stored = {a: w for a, w in s.store.load_wallets().items() if a in live}
        live_entries = {a: e for a, e in entries.items() if a in live}
        return reconcile(live, live_entries, stored)  # one rebuild for both
