"""LLM agents' memory: reflection every N closed trades, lessons kept as notes, shown in the agent
view and in later prompts. The real kernel against the simulated server over loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from llm_kernel import close, llm_kernel, sim_endpoint

from phantomex.brains.base import BrainContext
from phantomex.brains.llm.reflect import (
    MAX_LESSONS,
    MAX_NOTE_CHARS,
    parse_lessons,
    reflection_due,
    reflection_messages,
)
from phantomex.brains.llm.types import EndpointConfig
from phantomex.devtools.llm_sim.server import SimServer
from phantomex.domain.agent import AgentSpec
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import Bar, Wallet
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel
from phantomex.market.base import PriceHistory
from phantomex.market.loaders import load_dataset
from phantomex.service import Queries

MODEL = "thinker:7b"


def answer(action: str, symbol: str | None = None, reasoning: str = "", **kw: Any) -> str:
    return json.dumps(
        {"action": action, "symbol": symbol, "reasoning": reasoning, "confidence": 0.6, **kw}
    )


BUY = answer("buy", "BTC", "buying the dip", notional=200)
SELL = answer("sell", "BTC", "selling the bounce")
HOLD = answer("hold", None, "waiting")


@pytest.fixture(scope="module")
def dataset() -> dict[str, list[Bar]]:
    data = load_dataset("demo", ["BTC", "ETH"])
    return {s: bars[:1700] for s, bars in data.items()}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(models=[MODEL]) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_sim(sim: SimServer) -> None:
    sim.reset()
    sim.configure(latency_seconds=0.0)


def agent(kernel: Kernel, ep: EndpointConfig, **params: object) -> str:
    spec = AgentSpec(
        name="reflective",
        brain="llm",
        params={"endpoint": ep.name, "model": MODEL} | params,
        symbols=["BTC", "ETH"],
        interval_seconds=600,
        # no automatic exits: every sell in these tests is the model's own
        risk=RiskProfile(cooldown_seconds=0, stop_loss_pct=None, take_profit_pct=None),
    )
    return kernel.create_agent(spec).id


async def decisions(kernel: Kernel, agent_id: str, n: int) -> list[DecisionRecord]:
    """Run until the agent made ``n`` decisions in all (one every 10 bars); oldest first."""
    while len(kernel.store.decisions(agent_id, limit=1000)) < n:
        tick = await kernel.feed.next_tick()
        assert tick is not None
        async with kernel.lock:
            with kernel.unit():
                await kernel.step(tick)
    return list(reversed(kernel.store.decisions(agent_id, limit=1000)))


def purposes(kernel: Kernel, rec: DecisionRecord) -> list[str]:
    return [c["purpose"] for c in kernel.store.llm_calls(rec.id)]


@pytest.mark.parametrize("kind", ["ollama", "openai"])
@pytest.mark.asyncio
async def test_reflection_once_per_n_closed_trades_feeds_notes_and_prompts(
    tmp_path: Path, dataset: dict, sim: SimServer, kind: str
) -> None:
    ep = sim_endpoint(sim, kind)
    kernel = llm_kernel(tmp_path / "r.db", dataset, [ep])
    aid = agent(kernel, ep, reflect_every=2)
    first = json.dumps({"lessons": ["Dips kept dipping: wait for a higher low", "Size smaller"]})
    second = json.dumps({"lessons": ["one", "two", "three", "four"]})
    sim.script(
        MODEL,
        [BUY, SELL, BUY, SELL, first, HOLD, HOLD, BUY, SELL, BUY, SELL, second, HOLD, HOLD],
    )
    recs = await decisions(kernel, aid, 12)
    assert [r.status for r in recs[:4]] == ["executed"] * 4, [r.reason for r in recs[:4]]
    shapes = [purposes(kernel, r) for r in recs]
    reflected = [i for i, p in enumerate(shapes) if "reflect" in p]
    assert reflected == [4, 10], shapes  # after the 2nd and the 4th sell, exactly once each
    assert shapes[4] == shapes[10] == ["reflect", "decide"]
    assert all(p == ["decide"] for i, p in enumerate(shapes) if i not in reflected)
    # the reflection saw the trades with their P&L and reasoning
    reflect_call, decide_call = kernel.store.llm_calls(recs[4].id)
    prompt = reflect_call["messages"][-1]["content"]
    trade_lines = [line for line in prompt.splitlines() if line.startswith("TRADE ")]
    assert len(trade_lines) == 4 and sum("realized_pnl=" in t for t in trade_lines) == 2
    assert '"selling the bounce"' in prompt and "CLOSED TRADES so far: 2" in prompt
    assert "lessons" in reflect_call["messages"][0]["content"]
    assert reflect_call["parsed"] == {
        "lessons": ["Dips kept dipping: wait for a higher low", "Size smaller"]
    }
    # ... and the same decision's prompt already carries the lessons
    assert "NOTE Dips kept dipping: wait for a higher low" in decide_call["messages"][-1]["content"]
    assert "NOTE Size smaller" in kernel.store.llm_calls(recs[5].id)[0]["messages"][-1]["content"]
    # the second reflection got the earlier notes; at most three lessons are kept from it
    again = kernel.store.llm_calls(recs[10].id)[0]["messages"][-1]["content"]
    assert "NOTE Size smaller" in again and "CLOSED TRADES so far: 4" in again
    view = Queries(kernel).agent(aid).model_dump(mode="json")
    kept = ["Dips kept dipping: wait for a higher low", "Size smaller", "one", "two", "three"]
    assert view["notes"] == kept
    assert kernel.agents[aid].brain_state["reflected_at_trades"] == 4
    assert kernel.audit() == []
    await close(kernel)


@pytest.mark.asyncio
async def test_failed_reflection_does_not_break_the_cycle(
    tmp_path: Path, dataset: dict, sim: SimServer
) -> None:
    ep = sim_endpoint(sim)
    kernel = llm_kernel(tmp_path / "f.db", dataset, [ep])
    aid = agent(kernel, ep, reflect_every=1)
    sim.script(MODEL, [BUY, SELL, {"status": 500}, HOLD, HOLD])
    recs = await decisions(kernel, aid, 4)
    assert [purposes(kernel, r) for r in recs] == [
        ["decide"],
        ["decide"],
        ["reflect", "decide"],
        ["decide"],  # not retried before the next closed trade
    ]
    failed = recs[2]
    assert failed.status == "held" and failed.reasoning == "waiting"
    assert any(w.startswith("reflection failed") for w in failed.meta["warnings"])
    call = kernel.store.llm_calls(failed.id)[0]
    assert call["error"].startswith("http") and call["parsed"] is None
    state = kernel.agents[aid].brain_state
    assert state["reflected_at_trades"] == 1 and not state.get("notes")
    assert Queries(kernel).agent(aid).model_dump(mode="json")["notes"] == []
    await close(kernel)


@pytest.mark.asyncio
async def test_prose_reflection_is_kept_as_one_truncated_note(
    tmp_path: Path, dataset: dict, sim: SimServer
) -> None:
    ep = sim_endpoint(sim, "openai")
    kernel = llm_kernel(tmp_path / "p.db", dataset, [ep])
    aid = agent(kernel, ep, reflect_every=1)
    prose = "<think>hmm</think>I bought high and sold low, again. " * 30
    sim.script(MODEL, [BUY, SELL, prose, HOLD])
    recs = await decisions(kernel, aid, 3)
    call = kernel.store.llm_calls(recs[2].id)[0]
    assert call["purpose"] == "reflect" and call["error"].startswith("invalid output")
    (note,) = Queries(kernel).agent(aid).model_dump(mode="json")["notes"]
    assert note.startswith("I bought high and sold low, again.") and "think" not in note
    assert MAX_NOTE_CHARS - 5 <= len(note) <= MAX_NOTE_CHARS
    assert any("not the requested JSON" in w for w in recs[2].meta["warnings"])
    await close(kernel)


@pytest.mark.asyncio
async def test_reflection_off_and_the_default_model(
    tmp_path: Path, dataset: dict, sim: SimServer
) -> None:
    ep = sim_endpoint(sim)
    kernel = llm_kernel(tmp_path / "o.db", dataset, [ep])
    aid = agent(kernel, ep, reflect_every=None)
    sim.script(MODEL, [BUY, SELL, BUY, SELL, HOLD])
    recs = await decisions(kernel, aid, 5)
    assert all(purposes(kernel, r) == ["decide"] for r in recs)
    assert "reflected_at_trades" not in kernel.agents[aid].brain_state
    await close(kernel)


# -- units ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("raw", "lessons"),
    [
        ('{"lessons": ["a", "b"]}', ["a", "b"]),
        ('```json\n{"Lessons": ["a"]}\n```', ["a"]),
        ('<think>{"lessons": ["no"]}</think>{"lessons": ["yes"]}', ["yes"]),
        ('Here: {"reflection": {"insights": ["x", "y"]}} done', ["x", "y"]),
        ('["p", "q", "r", "s"]', ["p", "q", "r"]),
        ('{"lessons": "just one"}', ["just one"]),
        ('{"lessons": [{"lesson": "nested"}, {"text": "two"}]}', ["nested", "two"]),
        ('{"lessons": ["  spaced\\n out  "]}', ["spaced out"]),
    ],
)
def test_parse_lessons_is_lenient(raw: str, lessons: list[str]) -> None:
    assert parse_lessons(raw) == (lessons, None)


def test_parse_lessons_failures() -> None:
    assert parse_lessons("") == ([], "empty response")
    assert parse_lessons("<think>only thoughts</think>") == ([], "empty response")
    got, error = parse_lessons('{"action": "hold"}')
    assert got == ['{"action": "hold"}'] and error
    got, error = parse_lessons("x" * 2000)
    assert error and len(got) == 1 and len(got[0]) == MAX_NOTE_CHARS
    assert len(parse_lessons(json.dumps({"lessons": ["l"] * 9}))[0]) == MAX_LESSONS


def _ctx(closed: int, state: dict[str, Any], trades: list[dict[str, Any]] | None = None) -> Any:
    now = datetime(2024, 1, 1, tzinfo=UTC)
    return BrainContext(
        agent_id="a",
        agent_name="a",
        goal="",
        now=now,
        symbols=["BTC"],
        prices={},
        history=PriceHistory().view(now),
        wallet=Wallet("a", allowance=Decimal(1000), cash=Decimal(1000)),
        state=state,
        recent_trades=trades or [],
        closed_trades=closed,
    )


def test_reflection_due_counts_closed_trades_since_the_last_one() -> None:
    assert not reflection_due(_ctx(4, {}), 5)
    assert reflection_due(_ctx(5, {}), 5)
    assert not reflection_due(_ctx(9, {"reflected_at_trades": 5}), 5)
    assert reflection_due(_ctx(10, {"reflected_at_trades": 5}), 5)
    assert not reflection_due(_ctx(100, {}), None)
    assert reflection_due(_ctx(3, {"reflected_at_trades": 50}), 3)  # history reset


def test_reflection_prompt_stays_within_its_budget() -> None:
    trades = [
        {
            "time": datetime(2024, 1, 1, tzinfo=UTC),
            "symbol": "BTC",
            "side": "sell",
            "quantity": Decimal("0.1"),
            "price": Decimal(40000),
            "fee": Decimal("4"),
            "realized_pnl": Decimal("-12.346"),
            "reasoning": "r" * 300,
        }
    ] * 10
    state = {"notes": [f"note {i} " + "n" * 400 for i in range(20)]}
    messages = reflection_messages(_ctx(10, state, trades), budget_chars=3000)
    size = sum(len(m["content"]) for m in messages)
    assert size <= 3000 and "realized_pnl=-12.35" in messages[1]["content"]
    user = messages[1]["content"]
    assert "note 19" in user and "note 0 " not in user  # the oldest notes went first
    assert user.count("TRADE ") < 10 and "NOTE" in user
