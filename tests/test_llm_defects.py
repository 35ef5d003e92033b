"""Defects found with real models (issue 16), shown on the simulated server over loopback:
stale answers in a replay, orders inside a plan, the LLM figures of a backtest."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_kernel import close, llm_kernel, run_ticks, sim_endpoint

from phantomex.brains.llm.types import EndpointConfig
from phantomex.devtools.llm_sim.server import SimServer
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Bar
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel
from phantomex.market.loaders import load_dataset
from phantomex.research.llm_figures import llm_figures, llm_summary_line

MODEL = "alpha:7b"
SMALL = "tiny:0.5b"
BUY = (
    '{"action": "buy", "symbol": "BTC", "notional": "100", "reasoning": "a dip", "confidence": 0.7}'
)


@pytest.fixture(scope="module")
def dataset() -> dict[str, list[Bar]]:
    return {s: bars[:2000] for s, bars in load_dataset("demo", ["BTC"]).items()}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(models=[MODEL, SMALL]) as server:
        yield server


@pytest.fixture(autouse=True)
def fresh_sim(sim: SimServer) -> None:
    sim.reset()
    sim.configure(latency_seconds=0.0)


def spec(
    ep: EndpointConfig, interval: int = 120, model: str = MODEL, **params: object
) -> AgentSpec:
    return AgentSpec(
        name="llm",
        brain="llm",
        params={"endpoint": ep.name, "model": model, "reflect_every": None, **params},
        symbols=["BTC"],
        interval_seconds=interval,
        risk=RiskProfile(cooldown_seconds=0),
    )


async def ticks_while_thinking(kernel: Kernel, agent_id: str, n: int) -> None:
    """``n`` one-minute bars with the kernel's lock held throughout, so the answer (started on
    the first) can only be applied after the last: as with a model slower than the replay."""
    async with kernel.lock:
        for _ in range(n):
            tick = await kernel.feed.next_tick()
            assert tick is not None
            with kernel.unit():
                await kernel.step(tick)
    await asyncio.wait_for(kernel.thinking()[agent_id], 60)


# --------------------------------------------------------------------------- defect 6


@pytest.mark.parametrize(
    ("bars", "max_age", "status"),
    [(1, None, "executed"), (5, None, "held"), (5, 600, "executed")],
)
@pytest.mark.asyncio
async def test_an_answer_older_than_its_limit_is_a_recorded_stale_hold(
    tmp_path: Path,
    dataset: dict[str, list[Bar]],
    sim: SimServer,
    bars: int,
    max_age: int | None,
    status: str,
) -> None:
    """Asked at the first bar, applied after ``bars`` one-minute bars: past the limit (one
    2-minute interval, or the agent's own) the buy is a hold that says why, with both times."""
    sim.script(MODEL, [BUY])
    ep = sim_endpoint(sim)
    kernel = llm_kernel(tmp_path / "stale.db", dataset, [ep], await_slow_brains=False)
    extra = {"max_decision_age_seconds": max_age} if max_age else {}
    agent = kernel.create_agent(spec(ep, **extra))
    await ticks_while_thinking(kernel, agent.id, bars)
    (rec,) = kernel.store.decisions(agent.id)
    assert rec.status == status, rec.reasoning
    assert rec.meta["age_seconds"] == 60 * (bars - 1)
    assert rec.meta["prompt_time"] < rec.meta["applied_time"] or bars == 1
    if status == "held":
        assert rec.reasoning.startswith("stale: decided on the market of ")
        assert "(limit 120s); the buy BTC was not applied" in rec.reasoning
        assert rec.meta["stale"] == {"action": "buy", "symbol": "BTC"}
        assert kernel.store.llm_calls(rec.id), "the call stays on the record"
    await close(kernel)


# --------------------------------------------------------------------------- max_tokens


@pytest.mark.parametrize(
    ("model", "params", "expected"),
    [
        (MODEL, {}, 150 + 300),  # the full profile's reasoning limit
        (SMALL, {}, 150 + 160),  # the compact profile's
        (MODEL, {"max_tokens": 200}, 200),  # the agent's own
    ],
)
@pytest.mark.asyncio
async def test_max_tokens_is_sized_to_the_answer(
    tmp_path: Path,
    dataset: dict[str, list[Bar]],
    sim: SimServer,
    model: str,
    params: dict[str, object],
    expected: int,
) -> None:
    """Not a fixed 600: the answer's frame plus its reasoning's ``maxLength`` (one token per
    character at worst), so a grammar-enforced answer is never cut and no more is reserved."""
    ep = sim_endpoint(sim, "openai")
    kernel = llm_kernel(tmp_path / "tokens.db", dataset, [ep])
    kernel.create_agent(spec(ep, model=model, **params))
    await run_ticks(kernel, 1)
    (body, *_) = [r["body"] for r in sim.requests("/v1/chat/completions")]
    assert body["max_tokens"] == expected
    schema = body["response_format"]["json_schema"]["schema"]
    reasoning = schema["properties"]["reasoning"]["maxLength"]
    assert reasoning == (300 if params else expected - 150)
    await close(kernel)


# --------------------------------------------------------------------------- defect 8


def test_llm_figures_count_what_the_model_did() -> None:
    """Pure: the calls of four decisions (valid, repaired, bad output twice, a timeout) and a
    cached one."""
    ok = {"action": "hold", "symbol": None, "reasoning": "flat"}

    def call(decision: str, purpose: str = "decide", **kw: object) -> dict[str, object]:
        return {"decision_id": decision, "purpose": purpose, "tokens_in": 100, "tokens_out": 10,
                "latency_seconds": 2.0, "error": None, "cached": False, **kw}  # fmt: skip

    figures = llm_figures(
        [
            call("a", parsed=ok),
            call("b", error="invalid output: no JSON"),
            call("b", "repair", parsed=ok),
            call("c", error="invalid output: no JSON"),
            call("c", "repair", error="invalid output: still none"),
            call("d", error="timeout: no answer within 30s", latency_seconds=30.0),
            call("e", parsed=ok, cached=True, latency_seconds=0.0),
        ]
    )
    assert {k: figures[k] for k in list(figures)[:10]} == {
        "decisions": 5,
        "valid_first_try": 2,
        "repaired": 1,
        "bad_output_holds": 1,
        "failed_calls": 0,
        "timeouts": 1,
        "cache_hits": 1,
        "calls": 7,
        "tokens_in": 700,
        "tokens_out": 70,
    }
    assert figures["latency_p50_seconds"] == 2.0 and figures["latency_p95_seconds"] == 30.0
    assert [a["action"] for a in figures["answers"]] == ["hold", "hold", None, None, "hold"]
    assert figures["answers"][2]["error"] == "invalid output: no JSON"
    line = llm_summary_line(figures)
    assert line.startswith("LLM: 5 decisions, 2 valid first try, 1 repaired, 1 bad-output holds")
    assert "1/7 calls from the cache" in line and "p95 30 s" in line


# --------------------------------------------------------------------------- defect 10


@pytest.mark.asyncio
async def test_a_zero_notional_beside_a_quantity_is_no_repair_and_sizes_read_short(
    tmp_path: Path, dataset: dict[str, list[Bar]], sim: SimServer
) -> None:
    """``"notional": 0`` next to a quantity means "not this one" (a warning, not a repair);
    the risk checks state sizes as people read them, not a 28-digit quotient."""
    sim.script(
        MODEL,
        [
            '{"action": "buy", "symbol": "BTC", "quantity": 0.001, "notional": 0, '
            '"reasoning": "a dip", "confidence": 0.6}',
            BUY,  # 100 USD: a quantity with 28 significant digits
        ],
    )
    ep = sim_endpoint(sim)
    kernel = llm_kernel(tmp_path / "sizes.db", dataset, [ep])
    agent = kernel.create_agent(spec(ep, interval=60))
    await run_ticks(kernel, 2)
    first, second = kernel.store.decisions(agent.id)[::-1]
    assert first.status == "executed" and first.notional is None
    assert [c["purpose"] for c in kernel.store.llm_calls(first.id)] == ["decide"]
    assert "notional 0 next to a quantity read as null" in first.meta["warnings"]
    assert second.status == "executed" and len(str(second.quantity)) > 20
    for check in second.checks:
        longest = max((len(n) for n in re.findall(r"[0-9.]+", check["detail"])), default=0)
        assert longest <= 12, check
    await close(kernel)
