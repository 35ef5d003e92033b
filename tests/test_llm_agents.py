"""LLM agents on the kernel, against the simulated Ollama/OpenAI server over loopback."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from llm_kernel import close, llm_kernel, run_ticks, sim_endpoint

from phantomex.brains.llm.runtime import LLMRuntime, ModelAwareSlots
from phantomex.brains.llm.types import ChatOptions, EndpointConfig, KeepAlive
from phantomex.devtools.llm_sim.server import SimServer
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import AgentStatus, Bar
from phantomex.domain.risk import RiskProfile
from phantomex.market.loaders import load_dataset

MODELS = ["alpha:7b", "beta:8b", "gamma-r1:14b"]


@pytest.fixture(scope="module")
def dataset() -> dict[str, list[Bar]]:
    data = load_dataset("demo", ["BTC", "ETH"])
    return {s: bars[:3000] for s, bars in data.items()}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(models=MODELS) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_sim(sim: SimServer) -> None:
    sim.reset()
    sim.configure(latency_seconds=0.0)


def llm_spec(name: str, ep: EndpointConfig, model: str, **params: object) -> AgentSpec:
    return AgentSpec(
        name=name,
        brain="llm",
        params={"endpoint": ep.name, "model": model, **params},
        symbols=["BTC", "ETH"],
        interval_seconds=600,
        risk=RiskProfile(cooldown_seconds=0),
    )


@pytest.mark.parametrize("kind", ["ollama", "openai"])
@pytest.mark.asyncio
async def test_llm_agents_trade_with_a_full_audit_trail(
    tmp_path: Path, dataset: dict, sim: SimServer, kind: str
) -> None:
    ep = sim_endpoint(sim, kind)
    kernel = llm_kernel(tmp_path / "llm.db", dataset, [ep])
    agents = [kernel.create_agent(llm_spec(f"llm {i}", ep, m)) for i, m in enumerate(MODELS)]
    await run_ticks(kernel, 1200)
    decisions = kernel.store.decisions(limit=1000)
    assert len(decisions) >= 3 * 1200 // 10  # every agent decides every 10 bars
    assert {d.agent_id for d in decisions} == {a.id for a in agents}
    executed = [d for d in decisions if d.status == "executed"]
    assert executed, "the simulated models buy dips below -1% and sell rises: some trades"
    detail = kernel.store.llm_calls(executed[0].id)
    assert detail and detail[0]["purpose"] == "decide"
    call = detail[0]
    assert call["model"] in MODELS and call["endpoint"] == ep.name
    assert (
        call["messages"][0]["role"] == "system" and "BTC price=" in call["messages"][-1]["content"]
    )
    assert call["raw_response"] and call["parsed"]["action"] == executed[0].action
    assert call["tokens_in"] and call["tokens_out"] and call["latency_seconds"] is not None
    assert kernel.audit() == []
    await close(kernel)


@pytest.mark.asyncio
async def test_slow_model_never_blocks_prices_or_rule_agents(
    tmp_path: Path, dataset: dict, sim: SimServer
) -> None:
    sim.configure(latency_seconds=1.5)
    ep = sim_endpoint(sim)
    kernel = llm_kernel(tmp_path / "slow.db", dataset, [ep], await_slow_brains=False)
    llm = kernel.create_agent(llm_spec("slow llm", ep, MODELS[0]))
    rule = kernel.create_agent(
        AgentSpec(name="rsi", brain="rsi", symbols=["BTC"], risk=RiskProfile(cooldown_seconds=0))
    )
    await run_ticks(kernel, 30)
    assert not kernel.thinking()[llm.id].done()  # 30 ticks went by while the model thinks
    assert len(kernel.store.decisions(rule.id, limit=100)) == 30
    assert kernel.store.decisions(llm.id) == []
    await asyncio.wait_for(kernel.thinking()[llm.id], 5)
    (rec,) = kernel.store.decisions(llm.id)
    assert rec.status in ("held", "executed", "rejected")
    assert kernel.store.llm_calls(rec.id)[0]["latency_seconds"] >= 1.5
    await close(kernel)


@pytest.mark.asyncio
async def test_timeout_is_a_recorded_hold(tmp_path: Path, dataset: dict, sim: SimServer) -> None:
    sim.configure(latency_seconds=3.0)
    ep = sim_endpoint(sim, timeout_seconds=0.3)
    kernel = llm_kernel(tmp_path / "t.db", dataset, [ep])
    agent = kernel.create_agent(llm_spec("late", ep, MODELS[0]))
    await run_ticks(kernel, 1)
    (rec,) = kernel.store.decisions(agent.id)
    assert rec.status == "held" and "timeout" in rec.reasoning
    (call,) = kernel.store.llm_calls(rec.id)
    assert call["error"].startswith("timeout")
    assert kernel.agents[agent.id].status is AgentStatus.RUNNING
    await close(kernel)


@pytest.mark.asyncio
async def test_bad_output_gets_one_repair_then_a_recorded_hold(
    tmp_path: Path, dataset: dict, sim: SimServer
) -> None:
    ep = sim_endpoint(sim)
    kernel = llm_kernel(tmp_path / "r.db", dataset, [ep])
    agent = kernel.create_agent(llm_spec("fixable", ep, MODELS[0]))
    fixed = '{"action": "hold", "symbol": null, "reasoning": "fixed", "confidence": 0.5}'
    sim.script(MODELS[0], ["I think we should buy some {", fixed, "still not json", "nope"])
    await run_ticks(kernel, 1)
    (rec,) = kernel.store.decisions(agent.id)
    assert rec.status == "held" and rec.reasoning == "fixed"
    calls = kernel.store.llm_calls(rec.id)
    assert [c["purpose"] for c in calls] == ["decide", "repair"]
    assert calls[0]["raw_response"] == "I think we should buy some {" and calls[0]["error"]
    quoted = calls[0]["error"].removeprefix("invalid output: ")
    assert quoted in calls[1]["messages"][-1]["content"]  # the repair quotes the error
    await run_ticks(kernel, 10)
    rec2 = kernel.store.decisions(agent.id)[0]
    assert rec2.status == "held" and "after one repair" in rec2.reasoning
    raws = [c["raw_response"] for c in kernel.store.llm_calls(rec2.id)]
    assert raws == ["still not json", "nope"]  # the raw output is kept
    await close(kernel)


WARNED_ANSWER = (
    'My answer: {"action": "hold", "symbol": null, "reasoning": "flat market", '
    '"reasoning": "no edge", "confidence": 0.5}'
)
WARNINGS = (
    "ignored text around the JSON",
    "reasoning given 2 times ('reasoning', 'reasoning'); used the first, 'flat market'",
)


@pytest.mark.parametrize("tools", [False, True])
@pytest.mark.asyncio
async def test_parser_warnings_are_stored_with_the_decision_in_every_mode(
    tmp_path: Path, dataset: dict, sim: SimServer, tools: bool
) -> None:
    """One path for single-shot and tool answers: the parser's warnings reach the record."""
    ep = sim_endpoint(sim)
    kernel = llm_kernel(tmp_path / "w.db", dataset, [ep])
    agent = kernel.create_agent(llm_spec("warned", ep, MODELS[0], tools=tools))
    sim.configure(use_tools=tools)
    portfolio = {"tool_calls": [{"name": "get_portfolio", "arguments": {}}]}
    # tool mode: one tool call, then the final answer (parsed like a single shot)
    sim.script(MODELS[0], [portfolio, WARNED_ANSWER] if tools else [WARNED_ANSWER])
    await run_ticks(kernel, 1)
    (rec,) = kernel.store.decisions(agent.id)
    assert (rec.action, rec.reasoning) == ("hold", "flat market")
    for warning in WARNINGS:
        assert warning in rec.meta["warnings"], rec.meta
    await close(kernel)


@pytest.mark.asyncio
async def test_token_budget_pauses_the_agent_until_the_next_day(
    tmp_path: Path, dataset: dict, sim: SimServer
) -> None:
    ep = sim_endpoint(sim)
    kernel = llm_kernel(tmp_path / "b.db", dataset, [ep])
    agent = kernel.create_agent(llm_spec("thrifty", ep, MODELS[0], daily_token_budget=1))
    await run_ticks(kernel, 11)
    assert kernel.agents[agent.id].status is AgentStatus.PAUSED
    assert "token budget" in kernel.agents[agent.id].status_reason
    paused_until = kernel.agents[agent.id].risk_state.paused_until
    assert kernel.now is not None and paused_until is not None
    assert timedelta(0) < paused_until - kernel.now <= timedelta(days=1)
    assert len(kernel.store.decisions(agent.id)) == 2  # one call, then the budget stop
    await close(kernel)


@pytest.mark.asyncio
async def test_response_cache_replays_exactly_without_calls(
    tmp_path: Path, dataset: dict, sim: SimServer
) -> None:
    ep = sim_endpoint(sim)
    logs = []
    first = None
    for run in range(2):
        kernel = llm_kernel(tmp_path / f"run{run}.db", dataset, [ep])
        if first is not None:  # the second run reads the first run's cache
            kernel.llm.cache = first.cache_get  # type: ignore[union-attr]
        sim.reset()
        agent = kernel.create_agent(llm_spec("cached", ep, MODELS[1], use_cache=True))
        await run_ticks(kernel, 300)
        decisions = kernel.store.decisions(agent.id, limit=1000)
        logs.append([(d.time, d.action, d.symbol, d.status, d.reasoning) for d in decisions])
        made = sim.stats()["requests_by_model"].get(MODELS[1], 0)
        if first is None:
            assert made >= 30
            first = kernel.store
        else:
            assert made == 0
            assert all(c["cached"] for d in decisions for c in kernel.store.llm_calls(d.id))
            await close(kernel)
    assert first is not None
    first.close()
    assert logs[0] == logs[1] and len(logs[0]) == 30


@pytest.mark.asyncio
async def test_model_aware_slots_group_waiters_by_model() -> None:
    slots = ModelAwareSlots(1)
    order: list[str] = []

    async def call(model: str) -> None:
        await slots.acquire(model)
        order.append(model)
        await asyncio.sleep(0.01)
        slots.release(model)

    await asyncio.gather(*(call(m) for m in ["a", "b", "a", "b", "a", "c"]))
    assert order == ["a", "a", "a", "b", "b", "c"]


@pytest.mark.asyncio
async def test_keep_alive_policies_unload_as_configured(sim: SimServer) -> None:
    for policy, expect_loaded in ((KeepAlive.GROUP, False), (KeepAlive.KEEP, True)):
        sim.reset()
        ep = EndpointConfig(name="p", kind="ollama", base_url=sim.url, keep_alive=policy)
        runtime = LLMRuntime([ep])
        client = runtime.client("p")

        async def one(model: str, runtime: LLMRuntime = runtime, client: object = client) -> None:
            async with runtime.call("p", model):
                await client.chat(  # type: ignore[attr-defined]
                    model,
                    [{"role": "user", "content": "hi"}],
                )

        await asyncio.gather(*(one(m) for m in [MODELS[0], MODELS[0], MODELS[1]]))
        loaded = {m.name for m in await client.loaded_models()}
        assert (MODELS[0] in loaded) is expect_loaded, (policy, loaded)
        assert sim.stats()["loads"].get(MODELS[0]) == 1  # the group shared one load
        await runtime.aclose()


@pytest.mark.asyncio
async def test_a_model_stays_loaded_while_its_agent_is_due_again(
    tmp_path: Path, dataset: dict, sim: SimServer
) -> None:
    """keep_alive "group" with one agent: one load for many decisions, not one per decision.
    The kernel is the schedule (each decision due 600 s of market time after the last); without
    it (the runtime no longer watches the kernel) every decision loads and unloads again."""
    ep = sim_endpoint(sim)
    assert ep.keep_alive is KeepAlive.GROUP
    kernel = llm_kernel(tmp_path / "warm.db", dataset, [ep])
    agent = kernel.create_agent(llm_spec("steady", ep, MODELS[0]))
    await run_ticks(kernel, 60)  # one-minute bars: a decision every 10 ticks
    assert len(kernel.store.decisions(agent.id, limit=100)) == 6
    stats = sim.stats()
    assert stats["loads"] == {MODELS[0]: 1} and stats["unloads"] == {}
    assert stats["loaded"] == [MODELS[0]]
    bodies = [r["body"] for r in sim.requests() if r["path"] == "/api/chat"]
    assert len(bodies) == 6 and {b["keep_alive"] for b in bodies} == {600}
    assert kernel.llm is not None
    kernel.llm.unwatch(kernel)  # no schedule: the group rule of one round per load
    await run_ticks(kernel, 30)
    stats = sim.stats()
    assert stats["loads"] == {MODELS[0]: 3} and stats["unloads"] == {MODELS[0]: 3}
    await close(kernel)


@pytest.mark.parametrize("start", [1500, None])
@pytest.mark.asyncio
async def test_the_first_prompt_has_a_real_24h_change_or_says_what_is_missing(
    tmp_path: Path, dataset: dict, sim: SimServer, start: int | None
) -> None:
    """Mid-data, the first prompt shows real 24h changes (from the bars before the replay's
    first bar); at the very start of the data it says how much history there is."""
    ep = sim_endpoint(sim)
    kernel = llm_kernel(tmp_path / "first.db", dataset, [ep], start=start)
    agent = kernel.create_agent(llm_spec("first", ep, MODELS[0]))
    await run_ticks(kernel, 1)
    (rec,) = kernel.store.decisions(agent.id)
    prompt = kernel.store.llm_calls(rec.id)[0]["messages"][-1]["content"]
    for symbol in ("BTC", "ETH"):
        line = next(li for li in prompt.splitlines() if li.startswith(f"{symbol} price="))
        if start is not None:
            assert re.fullmatch(rf"{symbol} price=\S+ change_24h=[+-]\d+\.\d\d%", line), line
        else:
            first = dataset[symbol][0].time.isoformat()
            assert re.fullmatch(
                rf"{symbol} price=\S+ change_24h=n/a \(only 1h 1m of price history, since "
                rf"{re.escape(first)}; change over it [+-]\d+\.\d\d%\)",
                line,
            ), line
    await close(kernel)


class TwoDueModels:
    """A schedule: one agent per model, each deciding every 10 wall seconds."""

    def llm_intervals(self) -> list[tuple[str, str, float]]:
        return [("p", MODELS[0], 10.0), ("p", MODELS[1], 10.0)]


@pytest.mark.asyncio
async def test_group_keeps_a_due_model_loaded_but_makes_way_for_the_next_model(
    sim: SimServer,
) -> None:
    ep = EndpointConfig(name="p", kind="ollama", base_url=sim.url, max_concurrency=1)
    runtime = LLMRuntime([ep])
    schedule = TwoDueModels()
    runtime.watch(schedule)
    client = runtime.client("p")

    async def one(model: str) -> None:
        async with runtime.call("p", model):
            options = ChatOptions(keep_alive=runtime.keep_alive("p", model))
            await client.chat(model, [{"role": "user", "content": "hi"}], options=options)

    for _ in range(3):  # a round: the first model's call runs while the second one's waits
        await asyncio.gather(one(MODELS[0]), one(MODELS[1]))
    stats = sim.stats()
    assert stats["loads"] == {MODELS[0]: 3, MODELS[1]: 1}  # the last model of a round stays
    assert stats["unloads"] == {MODELS[0]: 3} and stats["loaded"] == [MODELS[1]]
    assert runtime.keep_alive("p", MODELS[1]) == 600
    assert runtime.keep_alive("p", MODELS[2]) == 600  # nothing due: one round, then unloaded
    await runtime.aclose()


def test_unknown_endpoint_is_refused_with_the_field(tmp_path: Path, dataset: dict) -> None:
    from phantomex.brains.registry import UnknownEndpointError

    kernel = llm_kernel(tmp_path / "u.db", dataset, [])
    with pytest.raises(UnknownEndpointError):
        kernel.create_agent(
            AgentSpec(
                name="x", brain="llm", params={"endpoint": "nope", "model": "m"}, symbols=["BTC"]
            )
        )
    assert kernel.agents == {}
