"""LLM keep-alive benchmark: model loads per decision with keep_alive "group", old rule vs new.

LLM agents run on a real kernel (in-memory SQLite, the demo's BTC bars replayed unpaced, one
decision per agent every 10 bars) against the simulated Ollama server (phantomex.devtools.llm_sim:
one request at a time, one model in memory, like a single consumer GPU; a load costs 50 ms, an
answer 10 ms). Measured for 1, 3 and 10 agents, all on one model ("shared") and spread over
three models ("3 models"), in both ways the kernel runs LLM decisions:

- **server**: in the background, as the live server does (the calls of a round queue at the
  endpoint and run grouped by model); every round finishes before the next bar;
- **inline**: one after the other within the bar, as sessions and backtests do.

Policies, in the same script: **old** is the rule before this change (unload a model once no call
for it is queued: the runtime does not watch the kernel's schedule), **new** keeps a model loaded
while its agents are due again within 30 minutes of wall time and unloads it for another model's
round. Figures are medians over ``--repeats`` runs: model loads and unloads per decision (the
server's evictions count as unloads: with three models and one in memory, each load of another
model evicts one), and the wall time per decision.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/llm_keepalive.py [--repeats 3] [--rounds 6]``
(about a minute). Writes ``benchmarks/results/llm_keepalive.{json,md}``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.brains.llm.types import EndpointConfig
from phantomex.broker.paper import PaperBroker
from phantomex.devtools.llm_sim.server import SimServer
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Bar
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.store.repo import Store

MODELS = ["m1:7b", "m2:8b", "m3:3b"]
AGENTS = (1, 3, 10)
LAYOUTS = {"shared": 1, "3 models": 3}
MODES = ("server", "inline")
BARS_PER_DECISION = 10  # 600 s intervals on one-minute bars
RESULTS = Path(__file__).parent / "results"


@dataclass
class Row:
    mode: str
    layout: str
    agents: int
    policy: str
    decisions: int
    loads_per_decision: float
    unloads_per_decision: float
    ms_per_decision: float


async def one_run(
    sim: SimServer, data: dict[str, list[Bar]], mode: str, models: int, agents: int, new: bool
) -> tuple[int, int, int, float]:
    """(decisions, loads, unloads, wall seconds) of one run on a fresh kernel."""
    sim.reset()
    endpoint = EndpointConfig(name="gpu", kind="ollama", base_url=sim.url, max_concurrency=1)
    runtime = LLMRuntime([endpoint])
    feed = ReplayFeed(data, speed=0, warmup_bars=60)
    kernel = Kernel(
        Store("sqlite://"),
        feed,
        PaperBroker(),
        config=KernelConfig(persist_snapshots=False, await_slow_brains=mode == "inline"),
        llm=runtime,
    )
    kernel.load()
    kernel.warm_up()
    if not new:
        runtime.unwatch(kernel)  # the old rule: no schedule, unload after every round
    for i in range(agents):
        model = MODELS[i % models]
        kernel.create_agent(
            AgentSpec(
                name=f"agent {i}",
                brain="llm",
                params={"endpoint": "gpu", "model": model, "reflect_every": None},
                symbols=["BTC"],
                interval_seconds=60 * BARS_PER_DECISION,
                risk=RiskProfile(cooldown_seconds=0),
            )
        )
    started = time.perf_counter()
    while (tick := await feed.next_tick()) is not None:
        async with kernel.lock:
            with kernel.unit():
                await kernel.step(tick)
        # server mode: the round's background decisions end before the next bar
        await asyncio.gather(*list(kernel.thinking().values()))
    wall = time.perf_counter() - started
    decisions = len(kernel.store.decisions(limit=100_000))
    stats = sim.stats()
    await runtime.aclose()
    kernel.store.close()
    return decisions, sum(stats["loads"].values()), sum(stats["unloads"].values()), wall


async def measure(repeats: int, rounds: int) -> list[Row]:
    btc = load_dataset("demo", ["BTC"])["BTC"]
    data = {"BTC": btc[: 60 + rounds * BARS_PER_DECISION]}
    rows: list[Row] = []
    with SimServer(
        models=MODELS, latency_seconds=0.01, load_seconds=0.05, max_parallel=1, max_loaded=1
    ) as sim:
        for mode in MODES:
            for layout, models in LAYOUTS.items():
                for agents in AGENTS:
                    if models > agents:
                        continue
                    for new in (False, True):
                        runs = [
                            await one_run(sim, data, mode, models, agents, new)
                            for _ in range(repeats)
                        ]
                        row = Row(
                            mode=mode,
                            layout=layout,
                            agents=agents,
                            policy="new" if new else "old",
                            decisions=runs[0][0],
                            loads_per_decision=statistics.median(r[1] / r[0] for r in runs),
                            unloads_per_decision=statistics.median(r[2] / r[0] for r in runs),
                            ms_per_decision=statistics.median(1000 * r[3] / r[0] for r in runs),
                        )
                        rows.append(row)
                        print(
                            f"{mode:6} {layout:8} {agents:2} agents {row.policy}: "
                            f"{row.loads_per_decision:.3f} loads/decision, "
                            f"{row.unloads_per_decision:.3f} unloads/decision, "
                            f"{row.ms_per_decision:.1f} ms/decision ({row.decisions} decisions)",
                            flush=True,
                        )
    return rows


def markdown(rows: list[Row], args: argparse.Namespace) -> str:
    lines = [
        "# LLM keep-alive: model loads per decision",
        "",
        f"`benchmarks/llm_keepalive.py --repeats {args.repeats} --rounds {args.rounds}`, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, "
        f"{platform.machine()}. Medians of {args.repeats} runs; llm-sim with one request at a "
        "time and one model in memory (load 50 ms, answer 10 ms; its evictions count as "
        "unloads). old = unload once no call is queued; new = stay loaded while the agents "
        "are due again (see the script). The load counts are deterministic; wall times vary "
        "with the machine's other work.",
        "",
        "| mode | models | agents | decisions | loads/decision old | new "
        "| unloads/decision old | new | ms/decision old | new |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pairs: dict[tuple[str, str, int], dict[str, Row]] = {}
    for row in rows:
        pairs.setdefault((row.mode, row.layout, row.agents), {})[row.policy] = row
    for (mode, layout, agents), by in pairs.items():
        old, new = by["old"], by["new"]
        lines.append(
            f"| {mode} | {layout} | {agents} | {new.decisions} "
            f"| {old.loads_per_decision:.3f} | {new.loads_per_decision:.3f} "
            f"| {old.unloads_per_decision:.3f} | {new.unloads_per_decision:.3f} "
            f"| {old.ms_per_decision:.1f} | {new.ms_per_decision:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=6, help="decisions per agent")
    args = parser.parse_args()
    rows = asyncio.run(measure(args.repeats, args.rounds))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "llm_keepalive.json").write_text(
        json.dumps([asdict(r) for r in rows], indent=2) + "\n", encoding="utf-8"
    )
    (RESULTS / "llm_keepalive.md").write_text(markdown(rows, args), encoding="utf-8")
    print(f"wrote {RESULTS / 'llm_keepalive.md'}")


if __name__ == "__main__":
    main()
