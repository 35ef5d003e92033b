"""LLM agents never send more than the model's context holds (the simulator over loopback)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_kernel import close, llm_kernel, run_ticks, sim_endpoint

from phantomex.devtools.llm_sim import behaviour
from phantomex.devtools.llm_sim.server import SimServer
from phantomex.devtools.llm_sim.state import SimModel
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Bar
from phantomex.domain.risk import RiskProfile
from phantomex.market.loaders import load_dataset

WINDOW = 2048  # llama.cpp's default
MAX_TOKENS = 600  # the default: 12,000 characters and 600 tokens used not to fit


@pytest.fixture(scope="module")
def dataset() -> dict[str, list[Bar]]:
    return {s: bars[:1700] for s, bars in load_dataset("demo", ["BTC", "ETH"]).items()}


@pytest.fixture
def sim() -> Iterator[SimServer]:
    models = [
        SimModel("tiny:1b", context_window=WINDOW),
        SimModel(
            "llamacpp",
            supports=("json_object+schema", "json_object", "prompt"),
            flavour="llama-cpp-python",
            context_window=1700,
        ),
    ]
    with SimServer(models=models) as server:
        yield server


def spec(
    endpoint: str, model: str, max_tokens: int = MAX_TOKENS, interval_seconds: int = 600
) -> AgentSpec:
    return AgentSpec(
        name="small",
        brain="llm",
        params={"endpoint": endpoint, "model": model, "max_tokens": max_tokens},
        symbols=["BTC", "ETH"],
        interval_seconds=interval_seconds,
        risk=RiskProfile(cooldown_seconds=0),
    )


def prompt_tokens(body: dict) -> int:
    return sum(behaviour.estimate_tokens(str(m.get("content") or "")) for m in body["messages"])


@pytest.mark.asyncio
async def test_ollama_gets_a_prompt_that_fits_and_a_num_ctx_that_holds_it(
    tmp_path: Path, dataset: dict, sim: SimServer
) -> None:
    """The window comes from /api/show; the default 12,000-character budget is cut to it and
    num_ctx is set, so Ollama never silently drops the head of the prompt (the rules)."""
    ep = sim_endpoint(sim, "ollama")
    kernel = llm_kernel(tmp_path / "k.db", dataset, [ep])
    agent = kernel.create_agent(spec(ep.name, "tiny:1b"))
    await run_ticks(kernel, 30)
    chats = sim.requests("/api/chat")
    assert len(chats) == 3 and sim.requests("/api/show")
    for r in chats:
        assert r["body"]["options"]["num_ctx"] == WINDOW
        assert prompt_tokens(r["body"]) + MAX_TOKENS <= WINDOW
        assert r["body"]["messages"][0]["content"].startswith("You are the trading agent")
    assert all(d.status != "error" for d in kernel.store.decisions(agent.id))
    await close(kernel)


@pytest.mark.asyncio
async def test_llama_cpp_overflow_is_learnt_and_the_prompt_shortened(
    tmp_path: Path, dataset: dict, sim: SimServer
) -> None:
    """llama-cpp-python does not say its window until a request overflows: that request is
    not retried in other forms, the window (and tokens per character) are learnt from the
    error, the decision is asked again with a prompt that fits, and later prompts fit at once.
    Here the prompt grows with the decision history until it overflows."""
    ep = sim_endpoint(sim, "openai")
    kernel = llm_kernel(tmp_path / "k.db", dataset, [ep])
    small = spec(ep.name, "llamacpp", max_tokens=900, interval_seconds=60)
    agent = kernel.create_agent(small)
    await run_ticks(kernel, 12)
    decisions = kernel.store.decisions(agent.id, limit=100)[::-1]
    assert len(decisions) == 12
    calls = [kernel.store.llm_calls(d.id) for d in decisions]
    overflowed = [i for i, c in enumerate(calls) if len(c) > 1]
    assert len(overflowed) == 1, [[x["error"] for x in c] for c in calls]
    first, retry = calls[overflowed[0]]
    assert "maximum context length is 1700" in first["error"]
    assert retry["purpose"] == "decide" and not retry["error"]
    assert retry["mode"] == "json_schema"  # enforced (as json_object + schema)
    assert all(c[0]["error"] is None for c in calls[overflowed[0] + 1 :])
    bodies = [r["body"] for r in sim.requests("/v1/chat/completions")]
    forms = [b.get("response_format", {}).get("type") for b in bodies]
    assert forms[0] == "json_schema" and forms.count("json_schema") == 1  # a 500, once
    # the overflow: streamed (the connection drops), heard again without streaming
    # (the first request, the json_schema probe answered with a 500, may be as long)
    too_long = [b for b in bodies[1:] if prompt_tokens(b) + 900 > 1700]
    assert [b.get("stream") for b in too_long] == [True, None]
    await close(kernel)
