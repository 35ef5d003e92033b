"""Sessions on real kernels and a real SQLite store: replay and live runs, results that
reconcile with the trades, stops, restarts and summaries."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.brains.llm.types import EndpointConfig
from phantomex.broker.paper import PaperBroker
from phantomex.devtools.llm_sim.server import SimServer
from phantomex.domain.models import AgentStatus
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.market.replay import ReplayFeed
from phantomex.sessions.manager import SessionManager, _bars
from phantomex.sessions.spec import SessionError, SessionSpec, parse_duration
from phantomex.store.repo import Store

WINDOW = {"dataset": "demo", "start": "2023-04-10T00:00:00Z", "end": "2023-04-10T01:30:00Z"}
AGENTS = [{"name": "ruby", "brain": "rsi"}, {"name": "max", "brain": "sma_cross"}]


def spec(**changes: Any) -> SessionSpec:
    body = {"name": "s", "symbols": ["BTC", "ETH"], "agents": AGENTS, "replay": WINDOW}
    return SessionSpec.model_validate({**body, **changes})


@asynccontextmanager
async def manager(
    db: Path, *, live_speed: float = 0.0, endpoints: list[EndpointConfig] | None = None
) -> AsyncIterator[SessionManager]:
    """A live kernel (replaying BTC and ETH; running when ``live_speed`` > 0) and its manager."""
    store = Store(f"sqlite:///{db}")
    data = {s: _bars("demo", s) for s in ("BTC", "ETH")}
    feed = ReplayFeed(data, speed=live_speed, warmup_bars=60, start_after=data["BTC"][3000].time)
    kernel = Kernel(
        store,
        feed,
        PaperBroker(),
        config=KernelConfig(persist_snapshots=False),
        llm=LLMRuntime(endpoints or []),
    )
    kernel.load()
    kernel.warm_up()
    m = SessionManager(kernel, store, fee_bps=Decimal(10), slippage_bps=Decimal(0))
    task = asyncio.create_task(kernel.run()) if live_speed else None
    try:
        yield m
    finally:
        await m.aclose()
        kernel.stop()
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        store.close()


async def finished(m: SessionManager, session_id: str) -> dict[str, Any]:
    run = m.runs.get(session_id)
    if run is not None and run.task is not None:
        await run.task
    return m.get(session_id)


def test_spec_refuses_bad_sessions() -> None:
    for changes, field in [
        ({"agents": []}, "agents"),
        ({"cash": "-5"}, "cash"),
        ({"cash": "NaN"}, "cash"),
        ({"replay": {**WINDOW, "end": WINDOW["start"]}}, "replay"),
        ({"agents": [AGENTS[0], AGENTS[0]]}, None),
        ({"kind": "live", "replay": None}, None),
        ({"kind": "live", "duration": "forever"}, "duration"),
        ({"agents": [{"name": "x", "brain": "rsi", "risk": {"stop_loss_pct": -1}}]}, "agents"),
    ]:
        with pytest.raises(ValidationError) as exc:
            spec(**changes)
        if field:
            assert exc.value.errors()[0]["loc"][0] == field
    assert parse_duration("1h") == timedelta(hours=1)
    assert parse_duration("24h") == timedelta(hours=24)
    assert parse_duration(90) == timedelta(seconds=90)


def test_replay_session_results_reconcile_with_the_trades(tmp_path: Path) -> None:
    async def go() -> dict[str, Any]:
        async with manager(tmp_path / "db.sqlite") as m:
            started = await m.start(spec(summary_every_hours=0.5))
            assert started["status"] == "running"
            done = await finished(m, started["id"])
            done["summaries"] = m.summaries(started["id"])
            return done

    s = asyncio.run(go())
    assert s["status"] == "finished" and s["error"] is None and s["progress"] == 1.0
    assert len(s["times"]) == 91  # the start, then 90 one-minute bars
    assert s["window"]["symbols"] == ["BTC", "ETH"] and s["elapsed_seconds"] == 5400
    roles = {a["name"]: a["role"] for a in s["agents"]}
    assert roles == {
        "ruby": "agent",
        "max": "agent",
        "buy-and-hold": "benchmark",
        "cash": "benchmark",
    }
    traded = 0
    for a in s["agents"]:
        assert len(a["equity"]) == 91 and a["equity"][0] == "10000"
        assert Decimal(a["pnl"]) == Decimal(a["equity"][-1]) - Decimal(10_000)
        if a["role"] != "agent":
            continue
        cash, held = Decimal(10_000), {"BTC": Decimal(0), "ETH": Decimal(0)}
        for t in a["trades"]:
            q, p, fee = Decimal(t["quantity"]), Decimal(t["price"]), Decimal(t["fee"])
            sign = 1 if t["side"] == "buy" else -1
            cash -= sign * q * p + fee
            held[t["symbol"]] += sign * q
        assert cash >= 0 and all(q >= 0 for q in held.values())
        if not any(held.values()):  # flat at the end: equity is exactly the cash
            assert Decimal(a["equity"][-1]) == cash
        traded += len(a["trades"])
        assert a["metrics"]["trades"] == len(a["trades"])
        for d in a["decisions"]:
            assert d["action"] in ("buy", "sell") and d["reasoning"]
        assert a["holds"] > 0 and a["metrics"]["hold_reasons"]
    assert traded > 0
    assert {a["name"]: a["equity"] for a in s["agents"]}["cash"][-1] == "10000"
    kinds = [x["kind"] for x in s["summaries"]]
    assert kinds.count("periodic") >= 2 and kinds[-1] == "final"
    final = s["summaries"][-1]
    assert final["author"] == "template" and "ruby" in final["text"] and "Leader" in final["text"]


def test_stopping_early_keeps_the_results_so_far(tmp_path: Path) -> None:
    async def go() -> tuple[dict[str, Any], dict[str, Any]]:
        async with manager(tmp_path / "db.sqlite") as m:
            long = {**WINDOW, "end": "2023-04-12T00:00:00Z", "speed": 600}  # 10 bars a second
            started = await m.start(spec(replay=long))
            while len(m.runs[started["id"]].tracker.times) < 5:
                await asyncio.sleep(0.1)
            stopped = await m.stop(started["id"])
            with pytest.raises(SessionError) as exc:
                await m.stop(started["id"])
            assert exc.value.code == "conflict"
            return stopped, m.summaries(started["id"])[-1]

    stopped, summary = asyncio.run(go())
    assert stopped["status"] == "stopped" and 0 < stopped["progress"] < 1
    n = len(stopped["times"])
    assert n >= 5 and all(len(a["equity"]) == n for a in stopped["agents"])
    assert summary["kind"] == "final" and "stopped" in summary["text"]


def test_a_session_cut_by_a_restart_is_interrupted_with_its_saved_results(tmp_path: Path) -> None:
    db = tmp_path / "db.sqlite"

    async def first() -> str:
        async with manager(db) as m:
            long = {**WINDOW, "end": "2023-04-12T00:00:00Z", "speed": 600}
            started = await m.start(spec(replay=long))
            while len(m.runs[started["id"]].tracker.times) < 5:
                await asyncio.sleep(0.1)
            return str(started["id"])  # the server stops with the session running

    async def second(session_id: str) -> dict[str, Any]:
        async with manager(db) as m:
            return m.get(session_id)

    session_id = asyncio.run(first())
    s = asyncio.run(second(session_id))
    assert s["status"] == "interrupted" and "server stopped" in s["error"]
    assert len(s["times"]) >= 5 and len(s["agents"][0]["equity"]) == len(s["times"])


def test_unknown_symbols_or_windows_without_data_are_refused(tmp_path: Path) -> None:
    async def go() -> list[SessionError]:
        errors = []
        async with manager(tmp_path / "db.sqlite") as m:
            for bad in (
                spec(replay={**WINDOW, "start": "2020-01-01", "end": "2020-01-02"}),
                spec(replay={**WINDOW, "dataset": "nope"}),
                spec(kind="live", duration="1h", symbols=["NOPE"]),
            ):
                with pytest.raises(SessionError) as exc:
                    await m.start(bad)
                errors.append(exc.value)
            assert m.overview() == []  # nothing was written
        return errors

    window, dataset, symbol = asyncio.run(go())
    assert window.field == "replay" and "covers 2023-04-01" in str(window)
    assert dataset.field == "replay.dataset"
    assert symbol.field == "symbols"


def test_live_session_trades_in_the_live_kernel_and_pauses_its_agents(tmp_path: Path) -> None:
    async def go() -> tuple[dict[str, Any], dict[str, AgentStatus]]:
        async with manager(tmp_path / "db.sqlite", live_speed=600) as m:
            started = await m.start(spec(kind="live", replay=None, duration=2))
            assert started["status"] == "running" and started["remaining_seconds"] > 0
            names = {a.name for a in m.kernel.agents.values()}
            assert {f"ruby s{started['id'][:6]}", f"max s{started['id'][:6]}"} <= names
            done = await finished(m, started["id"])
            return done, {a.name: a.status for a in m.kernel.agents.values()}

    s, statuses = asyncio.run(go())
    assert s["status"] == "finished" and s["kind"] == "live"
    assert s["window"]["source"] == "live:ReplayFeed"
    assert len(s["times"]) >= 2
    assert set(statuses.values()) == {AgentStatus.PAUSED}
    assert all(a["agent_id"] for a in s["agents"] if a["role"] == "agent")


def test_an_llm_agent_in_a_duel_sees_real_24h_changes_from_its_first_decision(
    tmp_path: Path,
) -> None:
    """The README's duel, on a window where the market moved: the LLM agent's prompts carry the
    24h change from its first decision (warmed from the data before the window), so it trades
    instead of holding for want of data."""
    window = {"dataset": "demo", "start": "2023-04-06T00:00:00Z", "end": "2023-04-06T02:00:00Z"}
    bot = {
        "name": "bot",
        "brain": "llm",
        "params": {"endpoint": "local", "model": "qwen2.5:7b"},
        "interval_seconds": 300,
    }

    async def go(sim: SimServer) -> dict[str, Any]:
        local = EndpointConfig(name="local", kind="ollama", base_url=sim.url)
        async with manager(tmp_path / "db.sqlite", endpoints=[local]) as m:
            started = await m.start(spec(agents=[*AGENTS, bot], replay=window))
            return await finished(m, started["id"])

    with SimServer(models=["qwen2.5:7b"]) as sim:
        s = asyncio.run(go(sim))
        prompts = [r["body"]["messages"][-1]["content"] for r in sim.requests("/api/chat")]
    assert s["status"] == "finished", s["error"]
    assert len(prompts) == 24  # every 5 minutes for 2 hours
    for prompt in prompts:
        for symbol in ("BTC", "ETH"):
            assert re.search(rf"^{symbol} price=\S+ change_24h=[+-]\d+\.\d\d%$", prompt, re.M)
        assert "=n/a" not in prompt  # no value is missing
    llm = next(a for a in s["agents"] if a["name"] == "bot")
    assert llm["trades"], llm["metrics"].get("hold_reasons")
    assert {t["side"] for t in llm["trades"]} >= {"buy"}


def test_the_template_summary_writes_money_percent_and_times_one_way() -> None:
    from phantomex.sessions.summary import template_text

    trip = {"agent": "max", "symbol": "ETH", "return": -0.0032}
    agent = {
        "name": "max", "brain": "momentum", "model": None, "return": -0.0123,
        "net_profit": "-1234.5", "max_drawdown": -0.02, "buys": 1, "sells": 1, "holds": 3,
        "rejected": 0, "latest_reasons": [], "hold_reasons": [],
    }  # fmt: skip
    text = template_text(
        {
            "session": "s", "kind": "replay", "status": "finished", "symbols": ["ETH"],
            "start": "2023-04-10T00:00:00Z", "end": "2023-04-10T01:30:00.250000Z",
            "agents": [agent], "benchmarks": {},
            "best_trade": {**trip, "pnl": "-3.24", "entry": "2023-04-10T00:05:00Z",
                           "exit": "2023-04-10T00:09:00Z"},
            "worst_trade": {**trip, "pnl": "-3.24", "entry": "2023-04-10T00:05:00Z",
                            "exit": "2023-04-10T00:09:00Z"},
        }
    )  # fmt: skip
    assert "2023-04-10 00:00:00 to 2023-04-10 01:30:00 UTC" in text  # no microseconds
    assert "Leader: max −1.23% (−$1,234.50)" in text
    assert (
        "Best trade: max ETH −$3.24 (−0.32%), 2023-04-10 00:05:00 to 2023-04-10 00:09:00." in text
    )
    assert "$-" not in text
