"""The kernel's unit of work (:mod:`phantomex.kernel.unit`) on a real SQLite store: what a failed
unit leaves behind (rolled back, agents reloaded unless the failure was a refusal), what a
nested unit does, and that a unit after a failure works as before."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from phantomex.broker.paper import PaperBroker
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import AgentStatus
from phantomex.kernel.bus import Event
from phantomex.kernel.runtime import Kernel
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.store.repo import Store


def kernel_with_agent(tmp_path: Path) -> tuple[Kernel, Path, str]:
    """A kernel on a SQLite file with one RSI agent: the kernel, the file and the agent's id."""
    db = tmp_path / "phantomex.db"
    data = {s: bars[:100] for s, bars in load_dataset("demo", ["BTC"]).items()}
    kernel = Kernel(Store(f"sqlite:///{db}"), ReplayFeed(data, speed=0), PaperBroker())
    kernel.load()
    agent = kernel.create_agent(AgentSpec(name="a", brain="rsi", symbols=["BTC"]))
    return kernel, db, agent.id


def stored_status(db: Path, agent_id: str) -> str:
    with sqlite3.connect(db) as reader:
        row = reader.execute("SELECT status FROM agents WHERE id = ?", (agent_id,)).fetchone()
    return str(row[0])


def test_a_failed_unit_rolls_back_reloads_and_raises(tmp_path: Path) -> None:
    kernel, db, agent_id = kernel_with_agent(tmp_path)
    events: list[Event] = []
    kernel.bus.subscribe(events.append)
    with pytest.raises(RuntimeError, match="boom"), kernel.unit():
        kernel.pause(agent_id)
        raise RuntimeError("boom")
    assert events == []
    assert stored_status(db, agent_id) == "running"
    assert kernel.get(agent_id).status is AgentStatus.RUNNING  # reloaded from the store
    kernel.pause(agent_id)  # the next unit commits as usual
    assert stored_status(db, agent_id) == "paused"
    assert [e.type for e in events] == ["agent"]
    kernel.store.close()


def test_a_refused_command_rolls_back_without_a_reload(tmp_path: Path) -> None:
    kernel, db, agent_id = kernel_with_agent(tmp_path)
    live = kernel.get(agent_id)
    with pytest.raises(ValueError, match="refused"), kernel.unit():
        live.status = AgentStatus.STOPPED  # in memory only: a reload would undo it
        raise ValueError("refused")
    assert kernel.get(agent_id) is live
    assert live.status is AgentStatus.STOPPED
    assert stored_status(db, agent_id) == "running"
    kernel.store.close()


def test_a_nested_unit_leaves_the_writes_to_the_outer_one(tmp_path: Path) -> None:
    kernel, db, agent_id = kernel_with_agent(tmp_path)
    events: list[Event] = []
    kernel.bus.subscribe(events.append)
    with kernel.unit():
        with kernel.unit():
            kernel.pause(agent_id)
        assert events == []  # held until the outermost unit commits
        with pytest.raises(RuntimeError), kernel.unit():
            raise RuntimeError("inner")  # caught inside the outer unit: no reload
        assert kernel.get(agent_id).status is AgentStatus.PAUSED
    assert stored_status(db, agent_id) == "paused"
    assert [e.type for e in events] == ["agent"]
    kernel.store.close()
