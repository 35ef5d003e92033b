"""The offline demo: three rule agents with $10,000 paper wallets on the shipped dataset."""

from __future__ import annotations

import asyncio
import logging
import math
import re
from dataclasses import dataclass
from decimal import Decimal

from phantomex.brains.llm import llamacpp
from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.brains.llm.types import EndpointConfig, LLMError
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Mode
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel, KernelError
from phantomex.service import Service

log = logging.getLogger(__name__)
LLM_DEMO_SYMBOLS = ["BTC", "ETH", "SOL"]
LLM_DEMO_MODELS = 3
LLM_DEMO_INTERVAL = 300  # market seconds between an LLM demo agent's decisions
#: the endpoint of the packaged model :func:`start_local_model` serves
LOCAL_ENDPOINT = "local-llama"
#: wall seconds a decision of the local model may take (SmolLM2-135M on one thread: 5-30 s)
LOCAL_SECONDS_PER_DECISION = 60

DEMO_AGENTS = [
    AgentSpec(
        name="Ruby RSI",
        brain="rsi",
        params={"period": 14, "oversold": 30, "overbought": 70},
        goal="Buy oversold dips, sell overbought rallies.",
        symbols=["BTC", "ETH", "SOL", "DOGE", "XRP"],
        interval_seconds=60,
        risk=RiskProfile(max_allocation_pct=Decimal(20)),
    ),
    AgentSpec(
        name="Max Momentum",
        brain="momentum",
        # hour-scale averages on 1-minute bars: a crossing must reflect a move worth more than the
        # 0.2 % a round trip costs in fees (EMA 5/20 crossed ~75 times a day per symbol, its fees
        # about equal to its loss); the usual 1 h / 4 h pair, not searched for a good result
        params={"fast": 60, "slow": 240, "ma": "ema"},
        goal="Ride hour-scale trends.",
        symbols=["BTC", "ETH", "SOL"],
        interval_seconds=60,
        risk=RiskProfile(max_allocation_pct=Decimal(30)),
    ),
    AgentSpec(
        name="Sam Spike-Fade",
        brain="spike_fade",
        params={"windows": [5, 15, 30], "spike_threshold_pct": 0.4, "cv_threshold": 0.05},
        goal="Fade sharp moves; a person approves each trade.",
        mode=Mode.ADVISORY,
        symbols=["DOGE", "SOL", "XRP"],
        interval_seconds=60,
    ),
]


def seed_demo(kernel: Kernel) -> int:
    """Create the demo agents on a database that has none; returns how many were created.
    (At start-up, before the kernel runs: nothing else can hold its lock yet.)"""
    if kernel.agent_list():
        return 0
    known = kernel.feed.instruments
    created = 0
    for spec in DEMO_AGENTS:  # a live source may lack some demo symbols: trade the others
        symbols = [s for s in spec.symbols if s in known]
        if not symbols:
            log.warning("demo agent %s skipped: no symbol of %s here", spec.name, spec.symbols)
            continue
        kernel.create_agent(spec.model_copy(update={"symbols": symbols}))
        created += 1
    return created


@dataclass(slots=True)
class LocalModel:
    """A packaged model served by llama.cpp on loopback, and its endpoint."""

    server: llamacpp.LlamaServer
    endpoint: EndpointConfig


def start_local_model() -> LocalModel | None:
    """Serve the first packaged small model (blocking while it loads: seconds); None, with a
    log line, when llama-cpp-python[server] or a model package is missing or it fails."""
    why = llamacpp.unavailable_reason()
    if why is not None:
        log.info("no local model: %s", why)
        return None
    try:
        found = llamacpp.first_available()
    except (ValueError, OSError) as exc:  # parts that do not join to the pinned file
        log.warning("no local model: %s", exc)
        return None
    if found is None:
        log.info("no local model: its package has no GGUF file")
        return None
    model, path = found
    server = llamacpp.LlamaServer(path, alias=model.name, n_ctx=2048)
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        log.warning("the local model %s did not start: %s", model.title, exc)
        return None
    log.info("local model %s served at %s", model.title, server.openai_url)
    endpoint = EndpointConfig(
        name=LOCAL_ENDPOINT,
        kind="openai",
        base_url=server.openai_url,
        timeout_seconds=LOCAL_SECONDS_PER_DECISION,
        context_window=server.n_ctx,
        max_concurrency=1,
    )
    return LocalModel(server, endpoint)


def llm_demo_interval(endpoint: str, speed: float) -> int:
    """Market seconds between decisions: 5 minutes, and for the local model (one thread, a
    small machine) at least :data:`LOCAL_SECONDS_PER_DECISION` wall seconds at ``speed``, so
    its decisions keep up with the replay instead of arriving stale."""
    if endpoint != LOCAL_ENDPOINT or speed <= 0:
        return LLM_DEMO_INTERVAL
    return max(LLM_DEMO_INTERVAL, math.ceil(LOCAL_SECONDS_PER_DECISION * speed))


async def seed_llm_demo(
    service: Service, llm: LLMRuntime, timeout: float = 3.0, speed: float = 0.0
) -> list[str]:
    """Give each reachable endpoint up to three LLM agents (one per model), once.

    An endpoint that doesn't answer within ``timeout`` is skipped: the demo runs without it.
    ``speed``: the replay's (market seconds per wall second), for the local model's interval."""
    joined: list[str] = []
    has_llm = {
        a.spec.params.get("endpoint")
        for a in service.queries.agent_records()
        if a.spec.brain == "llm"
    }
    for name in sorted(llm.endpoints):
        if name in has_llm:
            continue
        try:
            models = await asyncio.wait_for(llm.client(name).list_models(), timeout)
        except (LLMError, TimeoutError) as exc:
            log.info("LLM endpoint %s not reachable, no LLM demo agents: %s", name, exc)
            continue
        for model in sorted(m.name for m in models)[:LLM_DEMO_MODELS]:
            spec = AgentSpec(
                name=re.sub(r"[^\w .\-]", " ", f"{model} on {name}")[:80],
                brain="llm",
                params={"endpoint": name, "model": model},
                goal="Grow the wallet with careful, well-reasoned trades; hold when unsure.",
                symbols=LLM_DEMO_SYMBOLS,
                interval_seconds=llm_demo_interval(name, speed),
            )
            try:
                await service.commands.create_agent(spec)
            except KernelError as exc:  # the demo never stops the server from starting
                log.warning("LLM demo agent %s not created: %s", spec.name, exc)
                continue
            joined.append(spec.name)
    return joined
