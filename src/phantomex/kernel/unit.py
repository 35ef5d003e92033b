"""The kernel's unit of work: one store transaction per tick or command, agents written once."""

from __future__ import annotations

import contextvars
import functools
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from types import TracebackType
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

    def unit(self) -> AbstractContextManager[None]:
        """One store transaction for a tick or a command. A refused command (a ValueError such as
        KernelError) changed nothing; any other failure rolls the transaction back and reloads
        agents and wallets from the store, so memory never runs ahead of the database."""
        return _Unit(self)

    def save_agent(self, agent: Agent) -> None:
        """Save the agent at the end of the open unit (once, however often it changed), now
        when no unit is open, or at the next :meth:`flush` in lean mode."""
        changed = self._changed.get()
        if self.state.config.lean:
            self._dirty[agent.id] = agent
        elif changed is not None:
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


class _Unit:
    """:meth:`UnitOfWork.unit`, a plain context manager (it wraps every tick): the bus holds
    events in it and a store transaction runs inside that (as ``with bus.held(),
    store.unit():``); the outermost unit writes the agents changed in it, once each, inside the
    transaction, and on a failure other than a ValueError reloads agents and wallets."""

    __slots__ = ("_changed", "_held", "_store", "_token", "_work")

    def __init__(self, work: UnitOfWork) -> None:
        self._work = work
        self._held = work.state.bus.held()
        self._store = work.state.store.unit()
        self._changed: dict[str, Agent] | None = None  # the outermost unit's
        self._token: contextvars.Token[dict[str, Agent] | None] | None = None

    def __enter__(self) -> None:
        changed = self._work._changed
        if changed.get() is None:
            self._changed = {}
            self._token = changed.set(self._changed)
        try:
            self._held.__enter__()
            try:
                self._store.__enter__()
            except BaseException as exc:
                self._held.__exit__(type(exc), exc, exc.__traceback__)
                raise
        except BaseException as exc:
            self._end(exc)
            raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> bool:
        failure = error
        if failure is None and self._changed:
            try:
                self._work._write(self._changed)  # inside the same transaction
            except BaseException as exc:
                failure = exc
        try:
            try:
                if self._store.__exit__(_kind(failure), failure, _trace(failure)):
                    failure = None  # the store swallowed it
            except BaseException as exc:  # the commit or the rollback failed
                self._held.__exit__(type(exc), exc, exc.__traceback__)
                raise
            if self._held.__exit__(_kind(failure), failure, _trace(failure)):
                failure = None
        except BaseException as exc:
            self._end(exc)
            raise
        self._end(failure)
        if failure is not None and failure is not error:
            raise failure
        return failure is None and error is not None

    def _end(self, failure: BaseException | None) -> None:
        """Leave the unit: the outermost one logs a failure and reloads (see the class)."""
        token = self._token
        if token is None:
            return
        self._token = None
        try:
            if isinstance(failure, Exception) and not isinstance(failure, ValueError):
                log.error(
                    "transaction failed; reloading agents and wallets from the store",
                    exc_info=failure,
                )
                self._work._reload()
        finally:
            self._work._changed.reset(token)


def _kind(error: BaseException | None) -> type[BaseException] | None:
    return type(error) if error is not None else None


def _trace(error: BaseException | None) -> TracebackType | None:
    return error.__traceback__ if error is not None else None
