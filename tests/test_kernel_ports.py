"""The kernel's ports: its clock (a person's time, never the wall clock behind its back), typed
events that keep the wire payloads, and the tick driver with a live kernel's semantics."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from phantomex.broker.paper import PaperBroker
from phantomex.domain.agent import AgentSpec
from phantomex.domain.clock import SimulatedClock
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import Fill, Side
from phantomex.kernel.bus import Event
from phantomex.kernel.compose import build_kernel
from phantomex.kernel.events import (
    AgentDeleted,
    ApprovalChanged,
    DecisionChanged,
    ErrorRaised,
    LLMCalled,
    RiskRaised,
    TradeMade,
)
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.serialize import jsonable

PERSON = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)  # far from both the data and today


def feed(bars: int = 40) -> ReplayFeed:
    data = {s: b[:bars] for s, b in load_dataset("demo", ["BTC"]).items()}
    return ReplayFeed(data, speed=0, loop=False)


def test_before_the_first_tick_the_kernel_dates_by_its_clock() -> None:
    clock = SimulatedClock(PERSON)
    kernel = build_kernel(feed(), PaperBroker(), clock=clock)
    events: list[Event] = []
    kernel.bus.subscribe(events.append)
    agent = kernel.create_agent(AgentSpec(name="a", brain="rsi", symbols=["BTC"]))
    assert agent.created_at == PERSON
    assert events and all(e.time == PERSON and e.wall_time == PERSON for e in events)
    clock.advance(timedelta(minutes=3))
    kernel.pause(agent.id)
    assert events[-1].wall_time == PERSON + timedelta(minutes=3)


def test_a_replay_begun_at_a_time_dates_its_agents_then() -> None:
    start = datetime(2023, 4, 1, 21, 0, tzinfo=UTC)
    kernel = build_kernel(feed(), PaperBroker(), clock=SimulatedClock(PERSON), start=start)
    agent = kernel.create_agent(AgentSpec(name="a", brain="rsi", symbols=["BTC"]))
    assert kernel.now == start and agent.created_at == start


@pytest.mark.asyncio
async def test_the_live_driver_reports_a_failing_tick_and_goes_on() -> None:
    kernel = build_kernel(feed(10), PaperBroker(), clock=SimulatedClock(PERSON))
    errors: list[Event] = []
    kernel.bus.subscribe(errors.append, types=("error",))
    real_step = kernel.step
    calls = 0

    async def flaky(tick):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("boom")
        await real_step(tick)

    kernel.step = flaky  # type: ignore[method-assign]
    await kernel.run()
    assert calls == 10 and kernel.ticks == 9
    assert [e.data for e in errors] == [{"message": "tick failed: boom"}]


def test_typed_events_keep_the_wire_payloads() -> None:
    t = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    rec = DecisionRecord(
        id="d1", agent_id="a1", time=t, source="brain", action="buy", status="pending"
    )
    fill = Fill("a1", "BTC", Side.SELL, Decimal("0.5"), Decimal(100), Decimal("0.05"), t, "k1")
    cases = [
        (ErrorRaised("tick failed: x"), "error", {"message": "tick failed: x"}),
        (ErrorRaised("bad", "a1"), "error", {"agent_id": "a1", "message": "bad"}),
        (
            RiskRaised("a1", "kill", None, "why"),
            "risk",
            {"agent_id": "a1", "kind": "kill", "symbol": None, "detail": "why"},
        ),
        (AgentDeleted("a1"), "agent", {"event": "deleted", "agent_id": "a1"}),
        (DecisionChanged(rec), "decision", {"decision": jsonable(rec)}),
        (
            ApprovalChanged("requested", rec),
            "approval",
            {"event": "requested", "decision": jsonable(rec)},
        ),
        (LLMCalled("a1", [{"model": "m"}]), "llm", {"agent_id": "a1", "calls": [{"model": "m"}]}),
        (
            TradeMade(fill, "Ann", Decimal("1.5")),
            "trade",
            {"trade": jsonable(fill) | {"realized_pnl": "1.5"}, "agent_name": "Ann"},
        ),
    ]
    for event, kind, wire in cases:
        assert event.type == kind
        assert json.dumps(event.payload()) == json.dumps(wire)  # same keys, same order
