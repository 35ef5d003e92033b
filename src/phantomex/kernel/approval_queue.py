"""The approval queue of advisory agents.

A person is asked about one decision of an agent at a time, and it stays approvable until its
expiry (on the kernel's clock: a person's time) or until the person answers. The agent's newer
actionable decisions meanwhile are held, each naming the decision it waits for, and counted on
that decision (``meta["waiting_behind"]``) for the dashboard, the CLI and Telegram.
"""

from __future__ import annotations

from collections.abc import Callable

from phantomex.domain.agent import Agent
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import AUTONOMOUS, Action, Decision, DecisionStatus, OrderStatus
from phantomex.kernel.events import ApprovalChanged
from phantomex.kernel.execution import Execution
from phantomex.kernel.journal import Journal
from phantomex.kernel.state import KernelError, KernelState, NotFound
from phantomex.risk.engine import Verdict

Check = Callable[[Agent, Decision], Verdict]


class ApprovalQueue:
    """Requests, expiries and a person's answers."""

    def __init__(
        self, state: KernelState, journal: Journal, execution: Execution, check: Check
    ) -> None:
        self.state = state
        self.journal = journal
        self.execution = execution
        self.check = check  # the risk check a decision passes again when approved

    def pending(self) -> list[DecisionRecord]:
        return self.state.store.decisions(status=DecisionStatus.PENDING.value, limit=1000)

    def submit(self, agent: Agent, rec: DecisionRecord) -> None:
        """Ask a person about ``rec``, or hold it behind the decision they are asked about."""
        awaited = self._awaited(agent)
        if awaited is None:
            self._request(rec)
        else:
            self._hold_behind(awaited, rec)

    def _publish(self, event: str, rec: DecisionRecord) -> None:
        self.state.bus.emit(ApprovalChanged(event, rec), self.state.time())

    def _request(self, rec: DecisionRecord) -> None:
        rec.status = DecisionStatus.PENDING.value
        rec.expires_at = self.state.clock.now() + self.state.config.approval_ttl
        self.state.store.save_decision(rec)
        self._publish("requested", rec)

    def _awaited(self, agent: Agent) -> DecisionRecord | None:
        """The agent's decision a person is asked about (its oldest pending one), once any whose
        expiry has passed are expired."""
        wall = self.state.clock.now()
        pending = self.state.store.decisions(agent.id, DecisionStatus.PENDING.value, limit=1000)
        for rec in reversed(pending):  # oldest first
            if rec.expires_at is None or rec.expires_at > wall:
                return rec
            self._expire(rec, "no answer before the expiry")
        return None

    def _hold_behind(self, awaited: DecisionRecord, rec: DecisionRecord) -> None:
        """Hold ``rec`` while a person has ``awaited`` (of the same agent) to answer."""
        rec.meta["waiting_for"] = awaited.id
        self.journal.resolve(
            rec, DecisionStatus.HELD, f"waiting for your answer on decision {awaited.id[:12]}"
        )
        awaited.meta["waiting_behind"] = int(awaited.meta.get("waiting_behind", 0)) + 1
        self.state.store.save_decision(awaited)
        self._publish("waiting", awaited)

    def _expire(self, rec: DecisionRecord, reason: str) -> None:
        self.journal.resolve(rec, DecisionStatus.EXPIRED, reason)
        self._publish("expired", rec)

    def expire_due(self) -> None:
        """Expire the requests nobody answered in time."""
        s = self.state
        if s.config.lean:  # approvals are only ever requested for advisory agents
            for agent in s.agents.values():
                if agent.spec.mode is not AUTONOMOUS:
                    break
            else:
                return
        wall = s.clock.now()
        for rec in self.pending():
            if rec.expires_at is not None and rec.expires_at <= wall:
                self._expire(rec, "no answer before the expiry")

    def _pending_decision(self, decision_id: str) -> tuple[DecisionRecord, Agent]:
        rec = self.state.store.get_decision(decision_id)
        if rec is None:
            raise NotFound("decision", decision_id)
        if rec.status != DecisionStatus.PENDING.value:
            raise KernelError(
                f"decision is {rec.status}, not pending", field="decision_id", code="conflict"
            )
        return rec, self.state.agent(rec.agent_id)

    def approve(self, decision_id: str) -> DecisionRecord:
        """Re-check risk at the current price, then execute (or reject with the reason)."""
        rec, agent = self._pending_decision(decision_id)
        if rec.expires_at is not None and rec.expires_at <= self.state.clock.now():
            self._expire(rec, "approved after the expiry")
            return rec
        decision = Decision(
            Action(rec.action), rec.symbol, quantity=rec.quantity, reasoning=rec.reasoning
        )
        verdict = self.check(agent, decision)  # the order shape stays in rec.meta
        rec.checks = [c.to_json() for c in verdict.checks]
        self._publish("approved", rec)
        if not verdict.approved:
            self.journal.resolve(rec, DecisionStatus.REJECTED, f"re-check failed: {verdict.reason}")
            return rec
        rec.status = DecisionStatus.APPROVED.value
        self.execution.execute(agent, rec, verdict)
        self.state.store.save_agent(agent)
        return self.state.store.get_decision(rec.id) or rec

    def reject(self, decision_id: str) -> DecisionRecord:
        rec, _ = self._pending_decision(decision_id)
        self.journal.resolve(rec, DecisionStatus.REJECTED, "rejected by a person")
        self._publish("rejected", rec)
        return rec

    def cancel_work(self, agent: Agent, why: str) -> None:
        """Reject the agent's pending decisions and cancel its resting orders."""
        s = self.state
        for rec in self.pending():
            if rec.agent_id == agent.id:
                self.journal.resolve(rec, DecisionStatus.REJECTED, f"cancelled: {why}")
        for order in s.broker.cancel_all(agent.id):
            s.store.save_order(order, OrderStatus.CANCELLED)
            placed = s.store.get_decision(order.decision_id or "")
            if placed is not None:
                self.journal.resolve(placed, DecisionStatus.REJECTED, f"order cancelled: {why}")
