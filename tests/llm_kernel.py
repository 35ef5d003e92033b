"""Shared helpers for kernel tests with LLM agents on the simulated server."""

from __future__ import annotations

from pathlib import Path

from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.brains.llm.types import EndpointConfig
from phantomex.broker.paper import PaperBroker
from phantomex.devtools.llm_sim.server import SimServer
from phantomex.domain.models import Bar
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.market.replay import ReplayFeed
from phantomex.store.repo import Store


def sim_endpoint(sim: SimServer, kind: str = "ollama", **kw: object) -> EndpointConfig:
    url = sim.url if kind == "ollama" else sim.openai_url
    return EndpointConfig(name=f"sim-{kind}", kind=kind, base_url=url, **kw)  # type: ignore[arg-type]


def llm_kernel(
    db: Path,
    data: dict[str, list[Bar]],
    endpoints: list[EndpointConfig],
    *,
    await_slow_brains: bool = True,
    start: int | None = 1500,
) -> Kernel:
    """A kernel on a SQLite file whose replay starts after bar ``start`` of BTC (default: a day
    in, so prompts have 24h changes; None: at the start of the data, after 60 warm-up bars)."""
    store = Store(f"sqlite:///{db}")
    after = data["BTC"][start].time if start is not None else None
    feed = ReplayFeed(data, speed=0, warmup_bars=60, start_after=after)
    kernel = Kernel(
        store,
        feed,
        PaperBroker(),
        config=KernelConfig(persist_snapshots=False, await_slow_brains=await_slow_brains),
        llm=LLMRuntime(endpoints, cache=store.cache_get),
    )
    kernel.load()
    kernel.warm_up()
    return kernel


async def run_ticks(kernel: Kernel, n: int) -> None:
    for _ in range(n):
        tick = await kernel.feed.next_tick()
        assert tick is not None
        async with kernel.lock:
            with kernel.unit():
                await kernel.step(tick)


async def close(kernel: Kernel) -> None:
    if kernel.llm is not None:
        await kernel.llm.aclose()
    kernel.store.close()
