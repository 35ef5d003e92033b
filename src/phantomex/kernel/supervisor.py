"""Risk supervision: per-tick bookkeeping (drawdown, daily loss, forced exits), the kill switch."""

from __future__ import annotations

from phantomex.domain.agent import Agent
from phantomex.domain.models import PAUSED, RUNNING, AgentStatus
from phantomex.kernel.approval_queue import ApprovalQueue
from phantomex.kernel.execution import Execution
from phantomex.kernel.journal import Journal
from phantomex.kernel.state import KILL_KEY, KernelState
from phantomex.kernel.unit import UnitOfWork
from phantomex.risk.engine import has_exit_rules


class RiskSupervisor:
    """Watches every agent's equity and exits each tick; holds the kill switch."""

    def __init__(
        self,
        state: KernelState,
        journal: Journal,
        work: UnitOfWork,
        execution: Execution,
        approvals: ApprovalQueue,
    ) -> None:
        self.state = state
        self.journal = journal
        self.work = work
        self.execution = execution
        self.approvals = approvals

    def restore(self) -> None:
        """The kill switch as stored."""
        kill = self.state.store.get_state(KILL_KEY)
        self.state.killed = bool(kill and kill.get("on"))

    def tick(self) -> None:
        """Retry waiting exits and keep every running (or paused-for-the-day) agent's books."""
        for agent in list(self.state.agents.values()):
            if agent.risk_state.pending_exits:
                self.execution.retry_exits(agent)
            if agent.status is RUNNING or paused_for_day(agent):
                self.bookkeeping(agent)

    def bookkeeping(self, agent: Agent) -> None:
        s, journal = self.state, self.journal
        assert s.now is not None
        state = agent.risk_state
        if agent.status is not RUNNING:
            if paused_for_day(agent) and state.paused_until and s.now >= state.paused_until:
                state.paused_until = None
                journal.set_status(agent, AgentStatus.RUNNING, "daily loss pause over")
            if agent.status is not RUNNING:
                return
        wallet = s.ledger.view(agent.id)
        hit = s.risk.update(agent.spec.risk, state, wallet.equity(s.marks), s.now)
        if hit == "drawdown":
            journal.risk_event(
                agent,
                "drawdown",
                None,
                f"equity fell {agent.spec.risk.max_drawdown_pct}% below its peak "
                f"{state.peak_equity:.2f}: closing positions and stopping",
            )
            self.execution.flatten(agent, "drawdown")
            journal.set_status(agent, AgentStatus.STOPPED, "max drawdown reached")
            return
        if hit == "daily_loss":
            journal.risk_event(
                agent,
                "daily_loss",
                None,
                f"daily loss limit {agent.spec.risk.daily_loss_limit_pct}% hit; "
                f"paused until {state.paused_until}",
            )
            journal.set_status(agent, AgentStatus.PAUSED, "daily loss limit")
            return
        if not has_exit_rules(agent.spec.risk):  # none to look for (nor prices to gather)
            self.work.save_agent(agent)
            return
        for exit_ in s.risk.forced_exits(
            agent.spec.risk,
            wallet,
            s.prices,
            s.now,
            s.feed.instruments,
            suspect=s.guard.held(),
        ):
            journal.risk_event(agent, exit_.kind, exit_.symbol, exit_.detail)
            self.execution.force_sell(agent, exit_.symbol, exit_.quantity, exit_.kind, exit_.detail)
        self.work.save_agent(agent)

    def kill(self, agent_id: str | None = None, *, flatten: bool = False) -> list[str]:
        """Global (no agent) or per-agent kill: stop deciding, cancel approvals and resting
        orders, optionally close positions. Returns the agents affected."""
        s = self.state
        targets = [s.agent(agent_id)] if agent_id else list(s.agents.values())
        if agent_id is None:
            s.killed = True
            s.store.set_state(KILL_KEY, {"on": True, "time": s.time().isoformat()})
        for agent in targets:
            self.approvals.cancel_work(agent, "kill switch")
            if flatten:
                self.execution.flatten(agent, "kill")
            self.journal.set_status(agent, AgentStatus.STOPPED, "kill switch")
        self.journal.risk_event(
            None,
            "kill",
            None,
            f"kill switch on for {agent_id or 'all agents'}"
            + (" with positions closed" if flatten else ""),
        )
        return [a.id for a in targets]

    def release_kill(self) -> None:
        """Lift the global kill switch; agents stay stopped until resumed one by one."""
        s = self.state
        s.killed = False
        s.store.set_state(KILL_KEY, {"on": False, "time": s.time().isoformat()})
        self.journal.risk_event(None, "kill_released", None, "kill switch released")


def paused_for_day(agent: Agent) -> bool:
    return agent.status is PAUSED and agent.risk_state.paused_until is not None
