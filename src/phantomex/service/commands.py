"""The commands every front end issues (REST, Telegram, the demo seeding, the MCP server): each
state-changing action once, each taking the kernel's lock itself, so a command never runs in
the middle of a tick and two front ends never interleave. They answer with read models."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from phantomex.brains.llm.types import EndpointConfig
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Decision, Mode, OrderType
from phantomex.kernel.runtime import Kernel, KernelError, NotFound
from phantomex.kernel.views import AgentView
from phantomex.secrets import SecretBox
from phantomex.service.records import DecisionView, KillResult, KillState, OrderView

#: The price each order type needs (and the others must not have).
ORDER_PRICE = {OrderType.LIMIT: "limit_price", OrderType.STOP: "stop_price"}


def check_order_shape(decision: Decision) -> None:
    """A limit order needs a limit price, a stop order a stop price; neither applies elsewhere."""
    needs = ORDER_PRICE.get(decision.order_type)
    for name in ("limit_price", "stop_price"):
        given = getattr(decision, name) is not None
        if name == needs and not given:
            raise KernelError(f"a {decision.order_type} order needs {name}", field=name)
        if name != needs and given:
            raise KernelError(f"{name} does not apply to a {decision.order_type} order", field=name)


class Commands:
    """State changes on one kernel. ``llm_static`` names the LLM endpoints of the settings
    file: they cannot be removed at run time."""

    def __init__(self, kernel: Kernel, *, llm_static: frozenset[str] = frozenset()) -> None:
        self._k = kernel
        self.llm_static = llm_static

    # -- agents -----------------------------------------------------------------------------------
    async def create_agent(self, spec: AgentSpec) -> AgentView:
        """A new agent with a wallet of ``spec.allowance`` (KernelError on a bad spec)."""
        async with self._k.exclusive():
            return self._k.view_of(self._k.create_agent(spec))

    async def delete_agent(self, agent_id: str) -> None:
        """Delete an agent (its trades stay in the history), also one start-up skipped."""
        k = self._k
        async with k.exclusive():
            skipped = k.problems.find("agent", agent_id)
            if skipped is not None and all(a.id != agent_id for a in k.agent_list()):
                k.delete_skipped_agent(agent_id)
                k.problems.remove(skipped)
            else:
                k.delete_agent(agent_id)

    async def pause(self, agent_id: str) -> AgentView:
        async with self._k.exclusive():
            return self._k.view_of(self._k.pause(agent_id))

    async def resume(self, agent_id: str) -> AgentView:
        """Resume a paused or stopped agent (refused while the daily loss limit pauses it)."""
        async with self._k.exclusive():
            return self._k.view_of(self._k.resume(agent_id))

    async def set_mode(self, agent_id: str, mode: Mode) -> AgentView:
        """Autonomous (trades itself) or advisory (a person approves each trade)."""
        async with self._k.exclusive():
            return self._k.view_of(self._k.set_mode(agent_id, mode))

    async def deposit(self, agent_id: str, amount: Decimal) -> AgentView:
        """Add ``amount`` USD to the agent's cash."""
        async with self._k.exclusive():
            self._k.deposit(agent_id, amount)
            return self._k.view_of(self._k.get(agent_id))

    # -- trading ----------------------------------------------------------------------------------
    async def trade_now(self, agent_id: str) -> DecisionView:
        """Ask the agent's brain for a decision now (risk-checked; queued if advisory). The lock
        is not held while the brain thinks (the kernel takes it around the rest)."""
        return DecisionView.of(await self._k.trade_now(agent_id))

    async def place_order(self, agent_id: str, decision: Decision) -> DecisionView:
        """A person's own order for an agent: risk-checked, queued if the agent is advisory."""
        check_order_shape(decision)
        async with self._k.exclusive():
            return DecisionView.of(self._k.place(agent_id, decision))

    async def cancel_order(self, order_id: str) -> OrderView:
        """Cancel a resting order (NotFound if it is not open)."""
        async with self._k.exclusive():
            return OrderView.of(self._k.cancel_order(order_id))

    # -- approvals --------------------------------------------------------------------------------
    async def approve(self, decision_id: str) -> DecisionView:
        """Approve a pending decision: re-checked, then executed or placed."""
        async with self._k.exclusive():
            return DecisionView.of(self._k.approve(decision_id))

    async def reject(self, decision_id: str) -> DecisionView:
        async with self._k.exclusive():
            return DecisionView.of(self._k.reject(decision_id))

    # -- the kill switch --------------------------------------------------------------------------
    async def kill(self, agent_id: str | None = None, *, flatten: bool = False) -> KillResult:
        """Stop every agent (no ``agent_id``: the global switch) or one; ``flatten`` also closes
        their positions."""
        async with self._k.exclusive():
            affected = self._k.kill(agent_id, flatten=flatten)
            return KillResult(on=self._k.killed, agents=affected, flatten=flatten)

    async def release_kill(self) -> KillState:
        """Lift the global kill switch; agents stay stopped until resumed one by one."""
        async with self._k.exclusive():
            self._k.release_kill()
            return KillState(on=self._k.killed)

    # -- events ---------------------------------------------------------------------------------
    def announce(self, type_: str, data: dict[str, Any], time: datetime | None = None) -> None:
        """Publish an event of a front end's own (``server``, ``sources``...) on the kernel's
        bus, at ``time`` (default: the kernel's clock; the wall clock before the first price)."""
        self._k.bus.publish(type_, data, time or self._k.now or datetime.now(UTC))

    # -- LLM endpoints ----------------------------------------------------------------------------
    async def add_llm_endpoint(self, config: EndpointConfig, box: SecretBox) -> None:
        """Add an endpoint; its API key is stored encrypted with ``box``. A stored entry of the
        same name that could not be used is replaced."""
        k = self._k
        llm = k.llm
        if llm is None:
            raise KernelError("no LLM runtime", code="not_found")
        async with k.exclusive():
            if config.name in llm.endpoints:
                raise KernelError(
                    f"LLM endpoint {config.name!r} exists", field="name", code="conflict"
                )
            llm.add_endpoint(config)
            k.save_llm_endpoint(box, put=config)
            skipped = k.problems.find("llm_endpoint", config.name)
            if skipped is not None:
                k.problems.remove(skipped)

    async def remove_llm_endpoint(self, name: str, box: SecretBox) -> None:
        """Remove an endpoint added at run time, or a stored one that could not be loaded.
        Refused for an endpoint of the settings file or one that agents use."""
        k = self._k
        async with k.exclusive():
            skipped = k.problems.find("llm_endpoint", name)
            if skipped is not None and (k.llm is None or name not in k.llm.endpoints):
                k.save_llm_endpoint(box, drop=name)
                k.problems.remove(skipped)
                return
        llm = k.llm
        if llm is None:
            raise KernelError("no LLM runtime", code="not_found")
        if name not in llm.endpoints:
            raise NotFound("LLM endpoint", name)
        async with k.exclusive():
            if name in self.llm_static:
                raise KernelError(
                    f"{name} is configured in the settings file; remove it there",
                    field="name",
                    code="conflict",
                )
            users = [a.name for a in k.agent_list() if a.spec.params.get("endpoint") == name]
            if users:
                raise KernelError(
                    f"agents use {name}: {', '.join(users)}", field="name", code="conflict"
                )
            await llm.remove_endpoint(name)
            k.save_llm_endpoint(box, drop=name)
