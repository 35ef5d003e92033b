"""LLM agents in tool-use (ReAct) mode: the real kernel against the simulated Ollama/OpenAI server
over loopback, with scripted tool-call sequences."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from llm_kernel import close, llm_kernel, run_ticks, sim_endpoint

from phantomex.brains.base import BrainContext
from phantomex.brains.llm.brain import LLMBrain, tools_rejected
from phantomex.brains.llm.params import LLMParams
from phantomex.brains.llm.prompt import fmt_number
from phantomex.brains.llm.reflect import MAX_NOTE_CHARS, MAX_NOTES, remember_notes
from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.brains.llm.tools import TOOL_NAMES, run_tool, tool_specs
from phantomex.brains.llm.types import EndpointConfig, LLMError, ToolCall
from phantomex.devtools.llm_sim.server import SimServer
from phantomex.domain.agent import AgentSpec
from phantomex.domain.decision import DecisionRecord
from phantomex.domain.models import Bar, Snapshot, Wallet
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel
from phantomex.market.base import PriceHistory
from phantomex.market.loaders import load_dataset
from phantomex.service import Queries
from phantomex.store.repo import Store

MODEL = "tooly:7b"
KINDS = ["ollama", "openai"]
HOLD = '{"action": "hold", "symbol": null, "reasoning": "done looking", "confidence": 0.5}'


@pytest.fixture(scope="module")
def dataset() -> dict[str, list[Bar]]:
    data = load_dataset("demo", ["BTC", "ETH"])
    return {s: bars[:1800] for s, bars in data.items()}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(models=[MODEL]) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_sim(sim: SimServer) -> None:
    sim.reset()
    sim.configure(latency_seconds=0.0, use_tools=True)


def tool_agent(kernel: Kernel, ep: EndpointConfig, **params: object) -> str:
    spec = AgentSpec(
        name="tool user",
        brain="llm",
        params={"endpoint": ep.name, "model": MODEL, "tools": True, "reflect_every": None} | params,
        symbols=["BTC", "ETH"],
        interval_seconds=600,
        risk=RiskProfile(cooldown_seconds=0),
    )
    return kernel.create_agent(spec).id


def only_decision(kernel: Kernel, agent_id: str) -> DecisionRecord:
    (rec,) = kernel.store.decisions(agent_id)
    return rec


def tool_results(call: dict[str, Any]) -> list[str]:
    """The tool results sent to the model in a call."""
    return [str(m["content"]) for m in call["messages"] if m["role"] == "tool"]


def chat_requests(sim: SimServer) -> list[dict[str, Any]]:
    return [r for r in sim.requests() if r["path"].endswith(("/api/chat", "/completions"))]


def tc(name: str, arguments: Any = None) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "arguments": {} if arguments is None else arguments}]}


# -- the loop ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.asyncio
async def test_portfolio_indicators_then_place_order_executes_with_every_step_recorded(
    tmp_path: Path, dataset: dict, sim: SimServer, kind: str
) -> None:
    ep = sim_endpoint(sim, kind)
    kernel = llm_kernel(tmp_path / "t.db", dataset, [ep])
    agent = tool_agent(kernel, ep)
    order = {"action": "buy", "symbol": "BTC", "notional": 100, "reasoning": "RSI looks low"}
    sim.script(
        MODEL,
        [tc("get_portfolio"), tc("get_indicators", {"symbol": "btc"}), tc("place_order", order)],
    )
    await run_ticks(kernel, 1)
    rec = only_decision(kernel, agent)
    assert (rec.status, rec.action, rec.symbol) == ("executed", "buy", "BTC"), rec.reason
    assert rec.reasoning == "RSI looks low" and rec.notional == Decimal(100)
    assert rec.meta["tool_steps"] == 3
    position = kernel.ledger.wallet(agent).positions["BTC"]
    assert position.quantity > 0
    calls = kernel.store.llm_calls(rec.id)
    assert [c["purpose"] for c in calls] == ["tool", "tool", "tool"]
    assert all(c["error"] is None and c["tokens_in"] for c in calls)
    assert tool_results(calls[0]) == []
    (portfolio,) = tool_results(calls[1])
    assert json.loads(portfolio)["cash"] > 0 and "max_buy_quantity" in json.loads(portfolio)
    # the assistant turn with the call precedes its result
    assistant = calls[1]["messages"][-2]
    assert assistant["role"] == "assistant"
    assert assistant["tool_calls"][0]["function"]["name"] == "get_portfolio"
    indicators = json.loads(tool_results(calls[2])[-1])
    assert indicators["symbol"] == "BTC" and 0 <= indicators["rsi14"] <= 100
    assert indicators["sma10"] and indicators["sma30"] and indicators["ema10"]
    assert "place_order" in calls[2]["raw_response"]  # the final call shows what it called
    assert calls[2]["parsed"]["action"] == "buy" and calls[2]["parsed"]["symbol"] == "BTC"
    # every request offered the five tools without a format constraint
    requests = chat_requests(sim)
    assert len(requests) == 3
    for req in requests:
        body = req["body"]
        assert sorted(t["function"]["name"] for t in body["tools"]) == sorted(TOOL_NAMES)
        assert "format" not in body and "response_format" not in body
    assert kernel.audit() == []
    await close(kernel)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.asyncio
async def test_bad_arguments_and_unknown_tools_are_fed_back_and_the_loop_goes_on(
    tmp_path: Path, dataset: dict, sim: SimServer, kind: str
) -> None:
    ep = sim_endpoint(sim, kind)
    kernel = llm_kernel(tmp_path / "t.db", dataset, [ep])
    agent = tool_agent(kernel, ep)
    # OpenAI sends arguments as a JSON string (here broken); Ollama as an object (bad value)
    bad = "{not json" if kind == "openai" else {"symbol": "BTC", "bars": "lots"}
    sim.script(
        MODEL,
        [
            tc("get_price_history", bad),
            tc("get_weather", {"city": "Paris"}),
            HOLD,
        ],
    )
    await run_ticks(kernel, 1)
    rec = only_decision(kernel, agent)
    assert rec.status == "held" and rec.reasoning == "done looking"
    calls = kernel.store.llm_calls(rec.id)
    assert [c["purpose"] for c in calls] == ["tool", "tool", "tool"]
    first_error = json.loads(tool_results(calls[1])[-1])["error"]
    if kind == "openai":
        assert "bad arguments for get_price_history" in first_error
        assert "not valid JSON" in first_error
    else:
        assert "bars must be a whole number" in first_error
    assert "get_price_history" in calls[0]["error"]  # the audit trail notes the tool error
    unknown = json.loads(tool_results(calls[2])[-1])["error"]
    assert "unknown tool 'get_weather'" in unknown and "get_portfolio" in unknown
    assert calls[2]["parsed"]["action"] == "hold" and calls[2]["error"] is None
    await close(kernel)


@pytest.mark.asyncio
async def test_step_limit_is_a_recorded_hold(tmp_path: Path, dataset: dict, sim: SimServer) -> None:
    ep = sim_endpoint(sim)
    kernel = llm_kernel(tmp_path / "t.db", dataset, [ep])
    agent = tool_agent(kernel, ep, max_steps=2)
    sim.script(MODEL, [tc("get_portfolio"), tc("get_portfolio"), tc("get_portfolio"), HOLD])
    await run_ticks(kernel, 1)
    rec = only_decision(kernel, agent)
    assert rec.status == "held" and "step limit reached" in rec.reasoning
    calls = kernel.store.llm_calls(rec.id)
    assert [c["purpose"] for c in calls] == ["tool", "tool"]
    assert len(chat_requests(sim)) == 2  # no third call
    await close(kernel)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.asyncio
async def test_invalid_orders_are_fed_back_and_risk_still_decides(
    tmp_path: Path, dataset: dict, sim: SimServer, kind: str
) -> None:
    ep = sim_endpoint(sim, kind)
    kernel = llm_kernel(tmp_path / "t.db", dataset, [ep])
    agent = tool_agent(kernel, ep, max_steps=4)
    sim.script(
        MODEL,
        [
            tc("place_order", {"action": "buy", "symbol": "BTC", "quantity": -1}),
            tc("place_order", {"action": "buy", "symbol": "DOGE", "notional": 50}),
            tc("place_order", {"action": "short", "symbol": "BTC"}),
            # valid in form, but nothing to sell: the kernel's risk checks reject it
            tc("place_order", {"action": "sell", "symbol": "ETH", "reasoning": "take profit"}),
        ],
    )
    await run_ticks(kernel, 1)
    rec = only_decision(kernel, agent)
    assert (rec.action, rec.symbol, rec.status) == ("sell", "ETH", "rejected")
    assert rec.reason and rec.reasoning == "take profit"  # risk says why
    calls = kernel.store.llm_calls(rec.id)
    assert len(calls) == 4
    errors = [json.loads(tool_results(c)[-1])["error"] for c in calls[1:]]
    assert "quantity: must be greater than 0" in errors[0]
    assert "unknown symbol 'DOGE'" in errors[1] and "BTC, ETH" in errors[1]
    assert "buy, sell, hold" in errors[2]
    assert kernel.ledger.wallet(agent).positions == {}
    await close(kernel)


@pytest.mark.asyncio
async def test_price_history_never_returns_bars_after_the_clock(
    tmp_path: Path, dataset: dict, sim: SimServer
) -> None:
    ep = sim_endpoint(sim, "openai")
    kernel = llm_kernel(tmp_path / "t.db", dataset, [ep])
    agent = tool_agent(kernel, ep)
    sim.script(MODEL, [tc("get_price_history", {"symbol": "ETH", "bars": 500}), HOLD])
    await run_ticks(kernel, 1)
    rec = only_decision(kernel, agent)
    calls = kernel.store.llm_calls(rec.id)
    history = json.loads(tool_results(calls[1])[-1])
    assert "capped at 200" in history["note"]
    assert 60 <= history["bars"] <= 200  # what the kernel has seen: the warm-up and one tick
    now = rec.time
    before = [b for b in dataset["ETH"] if b.time < now][-history["bars"] :]
    assert history["last_time"] == before[-1].time.isoformat()
    assert history["first_time"] == before[0].time.isoformat()
    assert history["closes"] == [float(fmt_number(b.close, 7)) for b in before]
    assert all(b.time < now for b in before) and any(b.time >= now for b in dataset["ETH"])
    await close(kernel)


def _ctx(history: PriceHistory, now: Any, view_at: Any) -> BrainContext:
    return BrainContext(
        agent_id="a",
        agent_name="a",
        goal="",
        now=now,
        symbols=["BTC"],
        prices={"BTC": Snapshot("BTC", now, Decimal(100))},
        history=history.view(view_at),
        wallet=Wallet("a", allowance=Decimal(1000), cash=Decimal(1000)),
    )


def test_history_and_indicator_tools_stop_at_the_clock_even_with_a_later_view(
    dataset: dict,
) -> None:
    bars = dataset["BTC"][:400]
    history = PriceHistory()
    history.append(bars)
    now = bars[300].time
    # a view built for a later time must not leak bars the agent's clock has not reached
    ctx = _ctx(history, now, bars[-1].time + timedelta(minutes=1))
    out = json.loads(
        run_tool(ToolCall("get_price_history", {"symbol": "BTC", "bars": 50}), ctx).content
    )
    assert out["last_time"] == bars[299].time.isoformat() and out["bars"] == 50
    ind = json.loads(run_tool(ToolCall("get_indicators", {"symbol": "BTC"}), ctx).content)
    assert ind["bars_used"] == 200 and ind["last_close"] == float(fmt_number(bars[299].close))
    short = _ctx(history, bars[5].time, bars[5].time)
    ind = json.loads(run_tool(ToolCall("get_indicators", {"symbol": "BTC"}), short).content)
    assert ind["bars_used"] == 5 and ind["rsi14"] is None and "not enough" in ind["note"]
    for args in ({"symbol": "XRP"}, {}, {"symbol": 7}):
        err = run_tool(ToolCall("get_indicators", args), ctx)
        assert err.error and "error" in json.loads(err.content)
    for bad in (0, -3, 2.5, "x", True):
        err = run_tool(ToolCall("get_price_history", {"symbol": "BTC", "bars": bad}), ctx)
        assert err.error and "bars" in err.error, bad


def test_note_tool_keeps_the_last_twenty_short_notes(dataset: dict) -> None:
    history = PriceHistory()
    ctx = _ctx(history, dataset["BTC"][10].time, dataset["BTC"][10].time)
    for i in range(25):
        assert run_tool(ToolCall("note", {"text": f"note {i}"}), ctx).error is None
    long = run_tool(ToolCall("note", {"text": "x" * 2000}), ctx)
    assert "truncated" in json.loads(long.content)["note"]
    notes = ctx.state["notes"]
    assert len(notes) == MAX_NOTES and notes[0] == "note 6" and len(notes[-1]) == MAX_NOTE_CHARS
    assert run_tool(ToolCall("note", {"text": "  "}), ctx).error
    state: dict[str, Any] = {"notes": "not a list"}
    remember_notes(state, ["a"])
    assert state["notes"] == ["a"]


def test_tool_specs_are_openai_functions_ollama_accepts() -> None:
    from ollama._types import Tool

    specs = tool_specs(["BTC", "ETH"])
    assert [s["function"]["name"] for s in specs] == list(TOOL_NAMES)
    for spec in specs:
        fn = spec["function"]
        assert spec["type"] == "function" and fn["parameters"]["type"] == "object"
        # the ollama library validates tools with its own model: nothing may get lost there
        dumped = Tool.model_validate(spec).model_dump(exclude_none=True)["function"]
        assert dumped["name"] == fn["name"]
        assert dumped["parameters"]["required"] == fn["parameters"]["required"]
        assert set(dumped["parameters"].get("properties", {})) == set(
            fn["parameters"]["properties"]
        )
    order = specs[3]["function"]["parameters"]
    assert order["properties"]["symbol"]["enum"] == ["BTC", "ETH"]
    assert order["required"] == ["action"]


@pytest.mark.asyncio
async def test_note_tool_from_the_model_shows_in_the_agent_view(
    tmp_path: Path, dataset: dict, sim: SimServer
) -> None:
    ep = sim_endpoint(sim)
    kernel = llm_kernel(tmp_path / "t.db", dataset, [ep])
    agent = tool_agent(kernel, ep)
    sim.script(MODEL, [tc("note", {"text": "ETH dips recover within the hour"}), HOLD, HOLD])
    await run_ticks(kernel, 11)
    view = Queries(kernel).agent(agent).model_dump(mode="json")
    assert view["notes"] == ["ETH dips recover within the hour"]
    latest = kernel.store.decisions(agent)[0]
    prompt = kernel.store.llm_calls(latest.id)[0]["messages"][-1]["content"]
    assert "NOTE ETH dips recover within the hour" in prompt
    await close(kernel)


# -- no tool support -----------------------------------------------------------------------------
REJECTIONS = {
    "ollama": {
        "status": 400,
        "body": {"error": f"registry.ollama.ai/library/{MODEL} does not support tools"},
    },
    "openai": {
        "status": 400,
        "body": {
            "error": {
                "message": "This model does not support tools (function calling).",
                "type": "invalid_request_error",
                "param": "tools",
                "code": None,
            }
        },
    },
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.asyncio
async def test_server_rejecting_tools_falls_back_to_one_answer_and_remembers(
    tmp_path: Path, dataset: dict, sim: SimServer, kind: str
) -> None:
    ep = sim_endpoint(sim, kind)
    kernel = llm_kernel(tmp_path / "t.db", dataset, [ep])
    agent = tool_agent(kernel, ep)
    sim.script(MODEL, [REJECTIONS[kind], HOLD])
    await run_ticks(kernel, 1)
    rec = only_decision(kernel, agent)
    assert rec.status == "held" and rec.reasoning == "done looking"
    assert any("rejected tools" in w for w in rec.meta["warnings"])
    calls = kernel.store.llm_calls(rec.id)
    assert [c["purpose"] for c in calls] == ["tool", "decide"]
    assert calls[0]["error"].startswith("http") and "tools" in calls[0]["error"]
    assert calls[1]["error"] is None
    assert kernel.agents[agent].brain_state["tools_unsupported"]["model"] == MODEL
    sim.reset()
    await run_ticks(kernel, 10)  # the next decision: no tools offered at all
    latest = kernel.store.decisions(agent)[0]
    assert latest.id != rec.id
    assert [c["purpose"] for c in kernel.store.llm_calls(latest.id)] == ["decide"]
    assert any("tool use is off" in w for w in latest.meta["warnings"])
    bodies = [
        r["body"] for r in sim.requests() if r["path"].endswith(("/api/chat", "/completions"))
    ]
    assert bodies and not any(b.get("tools") for b in bodies)  # ollama sends null
    await close(kernel)


#: what a 0.5B model answered in tool mode: its tool calls as text, an order among them
PLAN_AS_TEXT = json.dumps(
    [
        {"name": "get_portfolio", "arguments": {}},
        {
            "name": "place_order",
            "arguments": {"action": "buy", "symbol": "BTC", "notional": 100, "reasoning": "plan"},
        },
    ]
)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.asyncio
async def test_an_order_inside_a_written_plan_never_executes_and_tools_go_off(
    tmp_path: Path, dataset: dict, sim: SimServer, kind: str
) -> None:
    """Tool calls written as text are a plan: the model cannot call tools, so it answers once
    without them (remembered); the place_order inside the plan is never executed."""
    ep = sim_endpoint(sim, kind)
    kernel = llm_kernel(tmp_path / "t.db", dataset, [ep])
    agent = tool_agent(kernel, ep)
    sim.script(MODEL, [PLAN_AS_TEXT, HOLD])
    await run_ticks(kernel, 1)
    rec = only_decision(kernel, agent)
    assert rec.status == "held" and rec.reasoning == "done looking"
    calls = kernel.store.llm_calls(rec.id)
    assert [c["purpose"] for c in calls] == ["tool", "decide"]
    assert calls[0]["error"] == "tool calls written as text: get_portfolio, place_order"
    assert any("cannot call tools" in w for w in rec.meta["warnings"])
    assert kernel.agents[agent].brain_state["tools_unsupported"]["model"] == MODEL
    sim.script(MODEL, [PLAN_AS_TEXT, PLAN_AS_TEXT])  # the same plan as a final answer
    await run_ticks(kernel, 10)
    latest = kernel.store.decisions(agent)[0]
    assert latest.status == "held" and "plan, not a decision" in latest.reasoning
    assert [c["purpose"] for c in kernel.store.llm_calls(latest.id)] == ["decide", "repair"]
    assert kernel.store.trades(agent)[0] == []
    await close(kernel)


@pytest.mark.asyncio
async def test_other_http_errors_are_a_hold_not_a_fallback(
    tmp_path: Path, dataset: dict, sim: SimServer
) -> None:
    ep = sim_endpoint(sim, "openai")
    kernel = llm_kernel(tmp_path / "t.db", dataset, [ep])
    agent = tool_agent(kernel, ep)
    sim.script(MODEL, [{"status": 500}])
    await run_ticks(kernel, 1)
    rec = only_decision(kernel, agent)
    assert rec.status == "held" and rec.reasoning.startswith("LLM call failed")
    assert "tools_unsupported" not in kernel.agents[agent].brain_state
    await close(kernel)


def test_tools_rejected_reads_the_message_not_the_endpoint_name() -> None:
    where = "toolbox (openai http://tools.example/v1): chat: "
    assert tools_rejected(LLMError("http", where + "HTTP 400: tools are not supported", status=400))
    assert not tools_rejected(LLMError("http", where + "HTTP 400: bad temperature", status=400))
    assert not tools_rejected(LLMError("http", where + "HTTP 500: tool server down", status=500))
    assert tools_rejected(
        LLMError("bad_response", "x (ollama u): server error: m does not support tools")
    )


# -- default model and the cache ----------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.asyncio
async def test_default_sim_model_reads_the_portfolio_then_answers(
    tmp_path: Path, dataset: dict, sim: SimServer, kind: str
) -> None:
    ep = sim_endpoint(sim, kind)
    kernel = llm_kernel(tmp_path / "t.db", dataset, [ep])
    agent = tool_agent(kernel, ep)
    await run_ticks(kernel, 60)
    decisions = kernel.store.decisions(agent, limit=100)
    assert len(decisions) == 6
    for rec in decisions:
        calls = kernel.store.llm_calls(rec.id)
        assert [c["purpose"] for c in calls] == ["tool", "tool"], rec.reasoning
        assert '"holdings"' in tool_results(calls[1])[0]
        assert calls[1]["parsed"] is not None
    assert kernel.audit() == []
    await close(kernel)


@pytest.mark.asyncio
async def test_tool_loop_replays_from_the_cache_without_calls(
    tmp_path: Path, dataset: dict, sim: SimServer
) -> None:
    ep = sim_endpoint(sim, "openai")
    logs = []
    first: Store | None = None
    for run in range(2):
        kernel = llm_kernel(tmp_path / f"run{run}.db", dataset, [ep])
        if first is not None:
            kernel.llm.cache = first.cache_get  # type: ignore[union-attr]
        sim.reset()
        sim.script(MODEL, [tc("get_indicators", {"symbol": "ETH"}), HOLD] if run == 0 else [])
        agent = tool_agent(kernel, ep, use_cache=True)
        await run_ticks(kernel, 50)
        decisions = kernel.store.decisions(agent, limit=100)
        logs.append([(d.action, d.symbol, d.status, d.reasoning) for d in decisions])
        made = len(chat_requests(sim))
        calls = [c for d in decisions for c in kernel.store.llm_calls(d.id)]
        assert all(c["purpose"] == "tool" for c in calls)
        if first is None:
            assert made == len(calls) >= 10
            first = kernel.store
        else:
            assert made == 0 and all(c["cached"] for c in calls)
            await close(kernel)
    assert first is not None
    first.close()
    assert logs[0] == logs[1] and len(logs[0]) == 5


def test_params_and_deadline() -> None:
    runtime = LLMRuntime(
        [EndpointConfig(name="e", kind="ollama", base_url="http://x", timeout_seconds=10)]
    )
    plain = LLMBrain(LLMParams(endpoint="e", model="m", reflect_every=None), runtime)
    tools = LLMBrain(LLMParams(endpoint="e", model="m", tools=True, max_steps=6), runtime)
    assert plain.deadline_seconds == 25 and tools.deadline_seconds == 85
    assert "tools" in tools.describe() and "tools" not in plain.describe()
    with pytest.raises(ValueError):
        LLMParams(endpoint="e", model="m", max_steps=11)
    with pytest.raises(ValueError):
        LLMParams(endpoint="e", model="m", reflect_every=0)


@pytest.mark.asyncio
async def test_cache_key_includes_the_tools_flag() -> None:
    keys: list[str] = []
    entry = {"content": HOLD, "mode": "prompt", "tool_calls": [{"name": "note", "arguments": {}}]}

    def cache(key: str) -> dict[str, Any]:
        keys.append(key)
        return entry

    ep = EndpointConfig(name="e", kind="ollama", base_url="http://127.0.0.1:9")
    brain = LLMBrain(
        LLMParams(endpoint="e", model="m", use_cache=True), LLMRuntime([ep], cache=cache)
    )
    messages = [{"role": "user", "content": "same prompt"}]
    calls: list[dict[str, Any]] = []
    plain = await brain._call(messages, "decide", calls)
    tooled = await brain._call(messages, "tool", calls, tools=tool_specs(["BTC"]))
    assert len(set(keys)) == 2 and [c["cache_key"] for c in calls] == keys
    assert all(c["cached"] for c in calls)
    assert not isinstance(tooled, LLMError) and tooled.tool_calls[0].name == "note"
    assert not isinstance(plain, LLMError) and plain.content == HOLD


def test_place_order_validates_like_a_json_answer(dataset: dict) -> None:
    ctx = _ctx(PriceHistory(), dataset["BTC"][10].time, dataset["BTC"][10].time)

    def order(args: dict[str, Any]) -> Any:
        return run_tool(ToolCall("place_order", args), ctx)

    alias = order({"side": "BUY", "symbol": "$btc", "qty": "0.1", "extra": 1})
    assert alias.decision is not None and alias.error is None
    assert (alias.decision.action.value, alias.decision.symbol) == ("buy", "BTC")
    assert alias.decision.quantity == Decimal("0.1")  # an alias is a size, never dropped
    assert alias.decision.meta["ignored_keys"] == ["extra"]
    assert json.loads(alias.content)["order"]["quantity"] == 0.1
    ambiguous = order({"action": "buy", "symbol": "BTC", "amount": 5})
    assert ambiguous.decision is None and "ambiguous" in (ambiguous.error or "")
    for missing in ({}, {"symbol": "BTC"}):
        assert order(missing).error == "action is required (buy, sell or hold)"
    assert "symbol is required" in (order({"action": "sell"}).error or "")
    hold = order({"action": "hold", "symbol": "NOPE", "reasoning": "flat"})
    assert hold.decision is not None and hold.decision.reasoning == "flat"
