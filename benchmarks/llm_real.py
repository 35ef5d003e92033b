"""Real-model benchmark: LLM agents on llama.cpp (llama-cpp-python's server, one thread) with
each small model installed as a package (``requirements-llm.txt``; ``make llm-real``).

For each model x structured-output form x prompt profile, one agent decides over the shipped
demo data (BTC, one decision per 1-minute bar) and every decision's calls are read back from the
store: valid on the first try, repaired, bad-output holds, timeouts, trades, tokens in/out per
first call, latency p50/p95, and the sanity of the decisions (sells of what is not held, buys
over the stated max quantity, quantities copied verbatim from the prompt).

Forms: ``json_object+schema`` (the schema enforced, as llama-cpp-python takes it; what the
negotiation finds), ``json_object`` (any JSON), ``prompt`` (no constraint). Prompt profiles
(:mod:`phantomex.brains.llm.profiles`): ``full`` and ``compact``, each cut to the context;
``max_tokens`` sized to the answer (the agent's default).

Run: `.venv/bin/python benchmarks/llm_real.py [--decisions 10] [--models smollm2-135m,...]
[--forms json_object+schema,...] [--profiles full,compact]`; each row is merged into
``benchmarks/results/llm_real.json`` as it finishes (replacing the same model, form and profile)
and ``llm_real.md`` is written from it, with each row's date, machine load and command (a section
``## Notes`` already in the .md is kept).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from phantomex.brains.llm import llamacpp
from phantomex.brains.llm.forms import Form
from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.brains.llm.types import EndpointConfig
from phantomex.broker.paper import PaperBroker
from phantomex.domain.agent import AgentSpec
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.store.repo import Store

N_CTX = 2048
TIMEOUT_SECONDS = 300  # a slow model's latency is measured, not cut
FORMS = (Form.JSON_OBJECT_SCHEMA, Form.JSON_OBJECT, Form.PROMPT)
PROFILES = {"full": {"prompt_profile": "full"}, "compact": {"prompt_profile": "compact"}}
RESULTS = Path(__file__).parent / "results"
_MAX_BUY = re.compile(r"Max buy quantity[^:]*: BTC ([0-9.]+)")


@dataclass
class Row:
    model: str
    form: str
    profile: str
    decisions: int = 0
    valid_first_try: int = 0
    repaired: int = 0
    bad_output_holds: int = 0
    timeouts: int = 0
    trades: int = 0
    tokens_in: float = 0.0
    tokens_out: float = 0.0
    latency_p50: float = 0.0
    latency_p95: float = 0.0
    sells_not_held: int = 0
    buys_over_limit: int = 0
    copied_numbers: int = 0
    first_error: str = ""  # the commonest error of a first call, with its count
    seconds: float = 0.0
    date: str = ""  # UTC, when the row started
    load: str = ""  # the machine's 1-minute load average at the row's start and end
    command: str = ""


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value is not None else None
    except InvalidOperation:
        return None


def _sanity(row: Row, calls: list[dict[str, Any]]) -> None:
    """Sells of nothing held, buys over the prompt's max quantity, numbers copied from it."""
    answer = next((c for c in reversed(calls) if c.get("parsed")), None)
    if answer is None:
        return
    parsed = answer["parsed"]
    prompt = str(answer["messages"][-1]["content"]) + str(answer["messages"][0]["content"])
    if parsed["action"] == "sell" and "HOLDING none" in prompt:
        row.sells_not_held += 1
    limit = _MAX_BUY.search(prompt)
    quantity = _decimal(parsed.get("quantity"))
    if parsed["action"] == "buy" and limit and quantity is not None:
        if quantity > Decimal(limit.group(1)):
            row.buys_over_limit += 1
        if str(parsed.get("quantity")) == limit.group(1):
            row.copied_numbers += 1


async def run_one(
    server: llamacpp.LlamaServer, model: str, form: Form, profile: str, decisions: int
) -> Row:
    data = {s: bars[:1700] for s, bars in load_dataset("demo", ["BTC"]).items()}
    ep = EndpointConfig(
        name="llama",
        kind="openai",
        base_url=server.openai_url,
        timeout_seconds=TIMEOUT_SECONDS,
        context_window=N_CTX,
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{tmp}/bench.db")
        feed = ReplayFeed(data, speed=0, warmup_bars=60, start_after=data["BTC"][1500].time)
        runtime = LLMRuntime([ep])
        runtime.modes[("llama", model)] = form  # the negotiation starts (and stays) here
        kernel = Kernel(
            store,
            feed,
            PaperBroker(),
            config=KernelConfig(persist_snapshots=False, await_slow_brains=True),
            llm=runtime,
        )
        kernel.load()
        kernel.warm_up()
        params = {"endpoint": "llama", "model": model, "temperature": 0, "seed": 7}
        params |= {"reflect_every": None, **PROFILES[profile]}
        agent = kernel.create_agent(
            AgentSpec(
                name="bench",
                brain="llm",
                params=params,
                symbols=["BTC"],
                interval_seconds=60,
                risk=RiskProfile(cooldown_seconds=0),
            )
        )
        started, load = time.perf_counter(), os.getloadavg()[0]
        date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
        for _ in range(decisions):
            tick = await kernel.feed.next_tick()
            assert tick is not None
            async with kernel.lock:
                with kernel.unit():
                    await kernel.step(tick)
        row = Row(model, form.value, profile, seconds=time.perf_counter() - started, date=date)
        row.load = f"{load:.1f}-{os.getloadavg()[0]:.1f}"
        latencies, tin, tout = [], [], []
        first_errors: Counter[str] = Counter()
        for d in kernel.store.decisions(agent.id, limit=10_000):
            calls = kernel.store.llm_calls(d.id)
            if not calls:
                continue
            row.decisions += 1
            first = calls[0]
            latencies.append(float(first["latency_seconds"] or 0))
            tin.append(float(first["tokens_in"] or 0))
            tout.append(float(first["tokens_out"] or 0))
            errors = [c.get("error") or "" for c in calls]
            first_errors.update([errors[0][:90]] if errors[0] else [])
            if not errors[0]:
                row.valid_first_try += 1
            elif len(calls) > 1 and not errors[-1]:
                row.repaired += 1
            elif any(e.startswith("timeout") for e in errors):
                row.timeouts += 1
            else:
                row.bad_output_holds += 1
            row.trades += d.status == "executed"
            _sanity(row, calls)
        if first_errors:
            error, count = first_errors.most_common(1)[0]
            row.first_error = f"{count}x {error}"
        row.tokens_in = round(statistics.fmean(tin), 1) if tin else 0.0
        row.tokens_out = round(statistics.fmean(tout), 1) if tout else 0.0
        row.latency_p50 = round(_quantile(latencies, 0.5), 2)
        row.latency_p95 = round(_quantile(latencies, 0.95), 2)
        row.seconds = round(row.seconds, 1)
        await runtime.aclose()
        store.close()
    return row


def table(rows: list[Row]) -> str:
    head = (
        "| model | form | prompt | decisions | valid first try | repaired | bad-output holds "
        "| timeouts | trades | tokens in | tokens out | latency p50 | p95 | sells not held "
        "| buys over limit | copied numbers | wall time | date (UTC) | load |"
    )
    lines = [head, "|" + "---|" * 19]
    for r in rows:
        lines.append(
            f"| {r.model} | {r.form} | {r.profile} | {r.decisions} | {r.valid_first_try} "
            f"| {r.repaired} | {r.bad_output_holds} | {r.timeouts} | {r.trades} | {r.tokens_in} "
            f"| {r.tokens_out} | {r.latency_p50} s | {r.latency_p95} s | {r.sells_not_held} "
            f"| {r.buys_over_limit} | {r.copied_numbers} | {r.seconds} s | {r.date} | {r.load} |"
        )
    return "\n".join(lines)


def _load_rows() -> list[Row]:
    path = RESULTS / "llm_real.json"
    if not path.exists():
        return []
    known = {f.name for f in fields(Row)}
    return [Row(**{k: v for k, v in r.items() if k in known}) for r in json.loads(path.read_text())]


def save(row: Row) -> list[Row]:
    """Merge ``row`` into the results (replacing its model, form and profile) and rewrite them."""
    key = (row.model, row.form, row.profile)
    rows = [r for r in _load_rows() if (r.model, r.form, r.profile) != key] + [row]
    order = {m.name: i for i, m in enumerate(llamacpp.PACKAGED_MODELS)}
    forms = [f.value for f in FORMS]
    rows.sort(key=lambda r: (order.get(r.model, 99), forms.index(r.form), r.profile))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "llm_real.json").write_text(json.dumps([asdict(r) for r in rows], indent=1) + "\n")
    md = RESULTS / "llm_real.md"
    notes = md.read_text().partition("\n## Notes")[2] if md.exists() else ""
    models = "\n".join(
        f"- `{m.name}`: {m.title}, {m.params_millions}M parameters"
        for m in llamacpp.PACKAGED_MODELS
    )
    commands = "\n".join(f"- `{c}`" for c in dict.fromkeys(r.command for r in rows))
    errors = "\n".join(
        f"- {r.model}, {r.form}, {r.profile}: {r.first_error.replace('|', '/')}"
        for r in rows
        if r.first_error
    )
    md.write_text(
        "# LLM agents on a real model (benchmarks/llm_real.py)\n\n"
        f"llama-cpp-python's server, n_ctx {N_CTX}, one thread; BTC from the demo data, one "
        "decision per 1-minute bar; temperature 0, a call's timeout "
        f"{TIMEOUT_SECONDS} s. Tokens are the mean per first call, latency the median (p50) and "
        "p95 of the first calls, wall time the row's total; load is the machine's 1-minute load "
        "average at the row's start and end (2 cores, shared).\n\n"
        f"Models:\n{models}\n\nCommands:\n{commands}\n\n"
        + table(rows)
        + "\n"
        + (f"\nThe commonest error of a first call, per row:\n{errors}\n" if errors else "")
        + (f"\n## Notes{notes}" if notes else "")
    )
    return rows


async def main(decisions: int, models: list[str], forms: list[Form], profiles: list[str]) -> int:
    why = llamacpp.unavailable_reason()
    if why is not None:
        print(f"benchmarks/llm_real.py: {why}", file=sys.stderr)
        return 2
    command = "python benchmarks/llm_real.py " + " ".join(sys.argv[1:])
    for packaged, path in llamacpp.available_models():
        if models and packaged.name not in models:
            continue
        with llamacpp.LlamaServer(path, alias=packaged.name, n_ctx=N_CTX) as server:
            for form in forms:
                for profile in profiles:
                    row = await run_one(server, packaged.name, form, profile, decisions)
                    row.command = command.strip()
                    print(json.dumps(asdict(row)), flush=True)
                    save(row)
    missing = [m.name for m in llamacpp.PACKAGED_MODELS if not llamacpp.model_installed(m)]
    if missing:
        print(f"not installed: {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=10)
    parser.add_argument("--models", default="", help="comma-separated names (default: all)")
    parser.add_argument("--forms", default=",".join(f.value for f in FORMS))
    parser.add_argument("--profiles", default="full,compact")
    args = parser.parse_args()
    chosen = [m for m in args.models.split(",") if m]
    form_list = [Form(f) for f in args.forms.split(",")]
    sys.exit(asyncio.run(main(args.decisions, chosen, form_list, args.profiles.split(","))))
