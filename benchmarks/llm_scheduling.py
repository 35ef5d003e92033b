"""LLM scheduling benchmark: 20 agents, 4 models, one local GPU.

The simulated Ollama server (phantomex.devtools.llm_sim) answers in 200 ms, loading a model costs
2 s, it runs one request at a time and holds one model in memory (a single consumer GPU). Every
round all 20 agents decide at once (5 agents per model). Measured per keep-alive policy: wall time
per round and model loads per round, against the lower bound that concurrency allows (each model
loaded once per round, then 20 sequential replies: 4 x 2 s + 20 x 0.2 s = 12 s). A plain FIFO
semaphore (no model-aware ordering) runs as the peer in the same script.

Run: `.venv/bin/python benchmarks/llm_scheduling.py [--rounds 3]` (about 3-4 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
from collections.abc import AsyncIterator

from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.brains.llm.types import ChatOptions, EndpointConfig, KeepAlive
from phantomex.devtools.llm_sim.server import SimServer

AGENTS = 20
MODELS = ["m1:7b", "m2:8b", "m3:3b", "m4:14b"]
LATENCY = 0.2
LOAD = 2.0
LOWER_BOUND = len(MODELS) * LOAD + AGENTS * LATENCY
MESSAGES = [{"role": "user", "content": "BTC price=27000 change_24h=-0.10%\nDecide now."}]


class FifoRuntime(LLMRuntime):
    """The peer: a plain FIFO semaphore per endpoint, calls served in arrival order."""

    def __init__(self, endpoints: list[EndpointConfig]) -> None:
        super().__init__(endpoints)
        self._fifo = {e.name: asyncio.Semaphore(e.max_concurrency) for e in endpoints}

    @contextlib.asynccontextmanager
    async def call(self, endpoint: str, model: str) -> AsyncIterator[None]:
        async with self._fifo[endpoint]:
            yield


async def one_round(runtime: LLMRuntime) -> float:
    client = runtime.client("gpu")
    options = ChatOptions(keep_alive=runtime.keep_alive("gpu"), timeout_seconds=120)

    async def agent(i: int) -> None:
        model = MODELS[i % len(MODELS)]  # agents are interleaved across models
        async with runtime.call("gpu", model):
            await client.chat(model, MESSAGES, options=options)

    start = time.perf_counter()
    await asyncio.gather(*(agent(i) for i in range(AGENTS)))
    return time.perf_counter() - start


async def measure(
    sim: SimServer, policy: KeepAlive, fifo: bool, rounds: int
) -> tuple[float, float]:
    sim.reset()
    endpoint = EndpointConfig(
        name="gpu", kind="ollama", base_url=sim.url, max_concurrency=1, keep_alive=policy
    )
    runtime = FifoRuntime([endpoint]) if fifo else LLMRuntime([endpoint])
    walls = [await one_round(runtime) for _ in range(rounds)]
    loads = sum(sim.stats()["loads"].values()) / rounds
    await runtime.aclose()
    return statistics.median(walls), loads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with SimServer(
        models=MODELS, latency_seconds=LATENCY, load_seconds=LOAD, max_parallel=1, max_loaded=1
    ) as sim:
        print(
            f"{AGENTS} agents, {len(MODELS)} models, {LATENCY * 1000:.0f} ms per reply, "
            f"{LOAD:.0f} s per load, 1 request and 1 model at a time; median of {args.rounds} "
            f"rounds; lower bound {LOWER_BOUND:.1f} s and {len(MODELS)} loads per round"
        )
        print("| scheduler | keep_alive | wall s/round | loads/round | wall / lower bound |")
        print("|---|---|---:|---:|---:|")
        for fifo in (False, True):
            for policy in (KeepAlive.UNLOAD, KeepAlive.KEEP, KeepAlive.GROUP):
                wall, loads = asyncio.run(measure(sim, policy, fifo, args.rounds))
                name = "FIFO (peer)" if fifo else "model-aware"
                print(
                    f"| {name} | {policy.value} | {wall:.2f} | {loads:.1f} | "
                    f"{wall / LOWER_BOUND:.2f} |"
                )


if __name__ == "__main__":
    main()
