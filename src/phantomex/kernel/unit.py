"""The kernel's unit of work: one store transaction per tick or command (a backtest's driver:
per batch of ticks), agents written once."""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

from phantomex.domain.agent import Agent
from phantomex.kernel.state import KernelState
from phantomex.store.port import CLOCK_KEY

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class Transactional(Protocol):
    def unit(self) -> AbstractContextManager[None]: ...


def atomic(method: Callable[Concatenate[Any, P], R]) -> Callable[Concatenate[Any, P], R]:
    """Run a command of an object with a ``unit()`` (the kernel) as one store transaction."""

    @functools.wraps(method)
    def wrapper(owner: Transactional, *args: P.args, **kwargs: P.kwargs) -> R:
        with owner.unit():
            return method(owner, *args, **kwargs)

    return wrapper


class UnitOfWork:
    """Transactions, the agents changed in them, and lean mode's deferred writes."""

    def __init__(self, state: KernelState, reload: Callable[[], None]) -> None:
        self.state = state
        self._reload = reload  # restores agents and wallets from the store after a failure
        self._dirty: dict[str, Agent] = {}  # lean mode: agents to save at the next flush
        # agents changed in this task's open unit, written once when it ends (see unit())
        self._changed: contextvars.ContextVar[dict[str, Agent] | None] = contextvars.ContextVar(
            f"unit-agents-{id(self)}", default=None
        )

    @contextmanager
    def unit(self) -> Iterator[None]:
        """One store transaction for a tick or a command. A refused command (a ValueError such as
        KernelError) changed nothing; any other failure rolls the transaction back and reloads
        agents and wallets from the store, so memory never runs ahead of the database."""
        bus, store = self.state.bus, self.state.store
        if self._changed.get() is not None:  # nested: the outer unit writes the agents
            with bus.held(), store.unit():
                yield
            return
        changed: dict[str, Agent] = {}
        token = self._changed.set(changed)
        try:
            with bus.held(), store.unit():  # events go out once the transaction commits
                yield
                if changed:
                    self._write(changed)  # once per agent, inside the same transaction
        except ValueError:
            raise
        except Exception:
            log.exception("transaction failed; reloading agents and wallets from the store")
            self._reload()
            raise
        finally:
            self._changed.reset(token)

    def save_agent(self, agent: Agent) -> None:
        """Save the agent at the end of the open unit (once, however often it changed), now
        when no unit is open, or at the next :meth:`flush` in lean mode."""
        if self.state.config.lean:
            self._dirty[agent.id] = agent
            return
        changed = self._changed.get()
        if changed is not None:
            changed[agent.id] = agent
        else:
            self.state.store.save_agent(agent)

    def _write(self, changed: dict[str, Agent]) -> None:
        agents = self.state.agents
        self.state.store.save_agents(
            agent
            for agent_id, agent in changed.items()
            if agents.get(agent_id) is agent  # not deleted or reloaded meanwhile
        )
        changed.clear()

    def flush(self) -> None:
        """Lean mode: write the agents changed since the last flush and the clock (call it
        inside the unit that ends a batch of ticks)."""
        self._write(self._dirty)
        if self.state.now is not None:
            self.state.store.set_state(CLOCK_KEY, {"time": self.state.now.isoformat()})

    def restore_clock(self) -> None:
        """Market time as the last :meth:`flush` (or tick) stored it (on start-up)."""
        clock = self.state.store.get_state(CLOCK_KEY)
        if clock:
            self.state.now = datetime.fromisoformat(clock["time"])
