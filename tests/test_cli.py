"""The ``phantomex`` CLI against a real server: every command runs as its own process.

Checks that need no CLI (the state after a command) read the API directly, which keeps the
module fast: a CLI process costs most of a second on a small machine.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from conftest import CLI, ServerHandle, free_port, kill_pid, run_cli, server_env, terminate

DEMO_NAMES = {"Ruby RSI", "Max Momentum", "Sam Spike-Fade"}
T = TypeVar("T")


# -- helpers --------------------------------------------------------------------------------------
def ok(server: ServerHandle, *args: str) -> str:
    """Run a command that must succeed; returns its stdout."""
    rc, out, err = server.cli(*args)
    assert rc == 0, f"phantomex {' '.join(args)} exited {rc}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in out + err
    return out


def as_json(server: ServerHandle, *args: str) -> Any:
    return json.loads(ok(server, *args, "--json"))


def fails(server: ServerHandle, *args: str) -> str:
    """Run a command that must exit 1 with a message and no traceback; returns the output."""
    rc, out, err = server.cli(*args)
    assert rc == 1, f"phantomex {' '.join(args)} exited {rc}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in out + err
    assert (out + err).strip(), "no message printed"
    return out + err


def poll(fn: Callable[[], T | None], timeout: float, interval: float = 0.2) -> T | None:
    """The first truthy ``fn()`` within ``timeout`` seconds, else None."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def by_name(server: ServerHandle, name: str) -> dict[str, Any]:
    """An agent from the API (not the CLI)."""
    agents = server.get("/api/agents")
    return next(a for a in agents if a["name"] == name)


def names(server: ServerHandle) -> set[str]:
    return {a["name"] for a in server.get("/api/agents")}


def wallet_state(a: dict[str, Any]) -> dict[str, Any]:
    """The stored part of an agent's wallet (nothing priced at marks): survives a restart."""
    w = a["wallet"]
    keys = ("allowance", "cash", "deposits", "realized_pnl", "fees_paid")
    return {
        "status": a["status"],
        **{k: Decimal(w[k]) for k in keys},
        "positions": {
            p["symbol"]: (Decimal(p["quantity"]), Decimal(p["cost"])) for p in w["positions"]
        },
    }


@pytest.fixture(scope="module")
def server(running_server: ServerHandle) -> ServerHandle:
    return running_server


@pytest.fixture(scope="module")
def quiet_agent(server: ServerHandle) -> dict[str, Any]:
    """An agent created through the CLI and paused at once: its cash moves only by deposits."""
    name = "Quiet Test"
    created = as_json(
        server, "agents", "add", name, "--brain", "rsi", "--symbols", "BTC,eth",
        "--param", "period=10", "--param", "oversold=25", "--allowance", "5000",
    )  # fmt: skip
    server.post(f"/api/agents/{created['id']}/pause")
    assert created["params"] == {"period": 10, "oversold": 25}
    assert created["symbols"] == ["BTC", "ETH"]
    assert Decimal(created["wallet"]["allowance"]) == Decimal(5000)
    return created


def wallet(server: ServerHandle, agent_id: str) -> dict[str, Any]:
    return server.get(f"/api/agents/{agent_id}")["wallet"]


# -- reading --------------------------------------------------------------------------------------
def test_status_and_agents_list_show_the_demo_agents(server: ServerHandle) -> None:
    out = ok(server, "status")
    assert f"running at {server.url}" in out
    assert all(name in out for name in DEMO_NAMES)
    out = ok(server, "agents", "list")
    assert all(name in out for name in DEMO_NAMES)
    agents = as_json(server, "agents", "list")
    assert {a["name"] for a in agents} >= DEMO_NAMES
    spike = next(a for a in agents if a["name"] == "Sam Spike-Fade")
    assert (spike["mode"], spike["brain"]) == ("advisory", "spike_fade")


def test_json_outputs_parse(server: ServerHandle) -> None:
    status = as_json(server, "status")
    assert status["health"]["status"] == "ok" and status["url"] == server.url
    assert {a["name"] for a in status["agents"]} >= DEMO_NAMES
    prices = as_json(server, "prices")
    assert {"BTC", "ETH", "SOL"} <= {p["symbol"] for p in prices}
    assert all(Decimal(p["price"]) > 0 for p in prices)
    assert {"rsi", "momentum", "spike_fade"} <= {s["name"] for s in as_json(server, "strategies")}
    assert isinstance(as_json(server, "pending"), list)
    ruby = by_name(server, "Ruby RSI")
    decisions = as_json(server, "decisions", "ruby rsi", "-n", "3")  # names: case-insensitive
    assert len(decisions) <= 3 and all(d["agent_id"] == ruby["id"] for d in decisions)


def test_trades_appear_within_a_bounded_wait(server: ServerHandle) -> None:
    page = poll(lambda: (p := server.get("/api/trades")) and p["total"] > 0 and p, 30)
    assert page, "no trade within 30 s of fast replay"
    first = page["trades"][-1]
    name, symbol = first["agent_name"], first["symbol"]
    # filters by agent name and by symbol (lower case), with paging
    got = as_json(server, "trades", "--agent", name, "--symbol", symbol.lower(), "-n", "2")
    assert got["total"] >= 1 and got["limit"] == 2 and 1 <= len(got["trades"]) <= 2
    assert {(t["agent_name"], t["symbol"]) for t in got["trades"]} == {(name, symbol)}
    out = ok(server, "trades", "-n", "3", "--offset", "1")
    shown = re.search(r"Trades \((2-[234]|0) of (\d+)\)", out)
    assert shown, out
    assert shown[1] == "0" or any(n in out for n in DEMO_NAMES)


def test_agents_show_by_id_and_an_unknown_agent(server: ServerHandle) -> None:
    ruby = by_name(server, "Ruby RSI")
    shown = as_json(server, "agents", "show", "RUBY RSI")
    assert shown["id"] == ruby["id"]
    out = ok(server, "agents", "show", ruby["id"][:10])  # a unique id prefix
    assert "Ruby RSI" in out and "Cash" in out
    assert "Nobody Here" in fails(server, "agents", "show", "Nobody Here")


def test_deposit_changes_cash_by_exactly_the_amount(
    server: ServerHandle, quiet_agent: dict[str, Any]
) -> None:
    aid = quiet_agent["id"]
    before = wallet(server, aid)
    amount = Decimal("123.456789")
    out = as_json(server, "deposit", quiet_agent["name"].lower(), str(amount))
    assert Decimal(out["wallet"]["cash"]) == Decimal(before["cash"]) + amount
    after = wallet(server, aid)
    assert Decimal(after["cash"]) == Decimal(before["cash"]) + amount
    assert Decimal(after["deposits"]) == Decimal(before["deposits"]) + amount
    assert "deposited $1.00 into" in ok(server, "deposit", aid, "1")
    assert Decimal(wallet(server, aid)["cash"]) == Decimal(after["cash"]) + 1


def test_deposit_rejects_bad_amounts(server: ServerHandle, quiet_agent: dict[str, Any]) -> None:
    aid = quiet_agent["id"]
    before = wallet(server, aid)
    for amount, says in [
        ("-5", "greater than 0"),
        ("NaN", "finite"),
        ("abc", "number"),
        ("1e13", "less than or equal"),
    ]:
        msg = fails(server, "deposit", aid, amount)
        assert "amount" in msg and says in msg, msg
    after = wallet(server, aid)
    assert (after["cash"], after["deposits"]) == (before["cash"], before["deposits"])


def test_agents_add_errors_name_the_field(server: ServerHandle) -> None:
    msg = fails(server, "agents", "add", "Bad Brain", "--brain", "no_such", "--symbols", "BTC")
    assert "brain" in msg and "no_such" in msg
    msg = fails(server, "agents", "add", "Bad Symbol", "--brain", "rsi", "--symbols", "BTC,NOPE")
    assert "symbols" in msg and "NOPE" in msg
    msg = fails(
        server, "agents", "add", "Bad Param", "--brain", "rsi", "--symbols", "BTC",
        "--param", "period=soon",
    )  # fmt: skip
    assert "params.period" in msg
    assert not names(server) & {"Bad Brain", "Bad Symbol", "Bad Param"}


def test_agents_add_mode_and_remove(server: ServerHandle) -> None:
    name = "Remove Me"
    out = ok(
        server, "agents", "add", name, "--brain", "momentum", "--symbols", "SOL",
        "--param", "ma=ema", "--param", "fast=3", "--mode", "advisory", "--interval", "120",
        "--goal", "[b]x[/b]", "--risk", "stop_loss_pct=3",
    )  # fmt: skip
    assert name in out
    a = by_name(server, name)
    assert (a["mode"], a["interval_seconds"], a["goal"]) == ("advisory", 120, "[b]x[/b]")
    assert a["params"] == {"ma": "ema", "fast": 3} and Decimal(a["risk"]["stop_loss_pct"]) == 3
    ok(server, "agents", "mode", name, "autonomous")
    assert by_name(server, name)["mode"] == "autonomous"
    fails(server, "agents", "remove", name)  # no --yes and no terminal to answer: aborted
    assert name in names(server)
    ok(server, "agents", "remove", "remove me", "--yes")
    assert name not in names(server)


def test_pause_and_resume(server: ServerHandle) -> None:
    # an agent of the test's own that cannot trade (RSI 200 never leaves 0.01..99.99 on real
    # data), so no daily loss limit of a demo agent can refuse the resume
    name = "Pause Resume"
    ok(
        server, "agents", "add", name, "--brain", "rsi", "--symbols", "BTC",
        "--param", "period=200", "--param", "oversold=0.01", "--param", "overbought=99.99",
    )  # fmt: skip
    try:
        assert "paused" in ok(server, "agents", "pause", "pause resume")
        assert by_name(server, name)["status"] == "paused"
        assert "running" in ok(server, "agents", "resume", name)
        assert by_name(server, name)["status"] == "running"
    finally:
        ok(server, "agents", "remove", name, "--yes")


def test_trade_now_shows_the_decision(server: ServerHandle) -> None:
    ruby = by_name(server, "Ruby RSI")
    rec = as_json(server, "trade", "Ruby RSI")
    assert rec["agent_id"] == ruby["id"] and rec["source"] == "manual"
    assert rec["action"] in ("buy", "sell", "hold")
    assert rec["status"] in ("executed", "held", "rejected")
    stored = server.get(f"/api/agents/{ruby['id']}/decisions", limit=1000)
    assert rec["id"] in {d["id"] for d in stored}
    out = ok(server, "trade", "ruby rsi")
    assert "Decision" in out and "manual" in out and "Ruby RSI" in out


# -- a person's own orders, LLM endpoints, strategies, narrow terminals ---------------------------
# An agent that never trades by itself (it buys 99.9 % below its reference and sells at +1000 %)
# and seldom decides (once a market week).
IDLE = [
    *("--brain", "train_of_trade", "-p", "entry_drop_pct=99.9", "-p", "take_profit_pct=1000"),
    *("--interval", "604800"),
]


@pytest.fixture(scope="module")
def hand(server: ServerHandle) -> dict[str, Any]:
    """Two idle agents and what a person did with them from the CLI: a bought and sold 0.0123
    BTC for the autonomous one (flat again, so its equity stays put), a pending buy for the
    advisory one."""
    trader = as_json(server, "agents", "add", "Hand Trader", *IDLE, "--symbols", "BTC,ETH")
    advisor = as_json(
        server, "agents", "add", "Hand Advisor", *IDLE, "--symbols", "BTC", "--mode", "advisory"
    )
    buy = as_json(server, "order", "hand trader", "buy", "btc", "--quantity", "0.0123")
    sell = as_json(server, "order", trader["id"], "SELL", "BTC", "--reason", "done")
    return {"trader": trader, "advisor": advisor, "buy": buy, "sell": sell}


def test_order_from_the_cli(server: ServerHandle, hand: dict[str, Any]) -> None:
    trader, buy, sell = hand["trader"], hand["buy"], hand["sell"]
    assert (buy["status"], buy["source"], buy["action"]) == ("executed", "manual", "buy")
    assert Decimal(buy["quantity"]) == Decimal("0.0123")
    assert (sell["status"], Decimal(sell["quantity"]), sell["reasoning"]) == (
        "executed",
        Decimal("0.0123"),  # no size given: the whole position
        "done",
    )
    trades = server.get("/api/trades", agent_id=trader["id"])["trades"]
    assert {t["decision_id"] for t in trades} == {buy["id"], sell["id"]}
    assert server.get(f"/api/agents/{trader['id']}")["wallet"]["positions"] == []

    limit = as_json(
        server, "order", "Hand Trader", "buy", "ETH", "--notional", "50", "--type", "limit",
        "--limit-price", "1",
    )  # fmt: skip
    (resting,) = server.get("/api/orders", agent_id=trader["id"])
    assert (resting["symbol"], Decimal(resting["limit_price"])) == ("ETH", 1)
    assert limit["status"] != "rejected"
    httpx.delete(f"{server.url}/api/orders/{resting['id']}", timeout=30).raise_for_status()

    pending = as_json(server, "order", "Hand Advisor", "buy", "BTC", "--notional", "100.5")
    assert pending["status"] == "pending"  # an advisory agent's order waits for a person
    server.post(f"/api/decisions/{pending['id']}/reject")

    rc, out, err = server.cli("order", "Hand Trader", "sell", "ETH", "--quantity", "1")
    assert rc == 1 and "rejected" in out and "not held" in out, out + err  # nothing to sell
    for args, says in [
        (["--quantity", "1", "--notional", "2"], "not both"),
        (["--quantity", "abc"], "--quantity: must be a number"),
        (["--notional", "-5"], "--notional: must be a positive number"),
        (["--limit-price", "5"], "limit_price"),  # the API: not for a market order
        (["--type", "limit", "--quantity", "1"], "limit_price"),  # a limit order needs one
    ]:
        assert says in fails(server, "order", "Hand Trader", "buy", "BTC", *args)
    assert len(server.get("/api/trades", agent_id=trader["id"])["trades"]) == 2


def test_llm_endpoints_from_the_cli(server: ServerHandle) -> None:
    env = {**server.env, "E2E_LLM_KEY": "sk-test"}
    rc, out, err = run_cli(
        "llm", "add", "e2e-cli", "--kind", "openai", "--base-url", "http://127.0.0.1:9/v1",
        "--keep-alive", "keep", "--timeout", "12.5", "--max-concurrency", "3",
        "--api-key-env", "E2E_LLM_KEY", env=env,
    )  # fmt: skip
    assert rc == 0 and "added LLM endpoint e2e-cli" in out, out + err
    (added,) = [e for e in server.get("/api/llm/endpoints") if e["name"] == "e2e-cli"]
    assert added == {
        "name": "e2e-cli",
        "kind": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "timeout_seconds": 12.5,
        "max_concurrency": 3,
        "keep_alive": "keep",
        "price_per_1k_input": None,
        "price_per_1k_output": None,
        "context_window": None,  # learnt from the server when not set
        "has_api_key": True,
    }
    out = ok(server, "llm", "list")
    assert "e2e-cli" in out and "12.5 s" in out and "sk-test" not in out
    assert "exists" in fails(
        server, "llm", "add", "e2e-cli", "--kind", "ollama", "--base-url", "http://127.0.0.1:9"
    )
    msg = fails(
        server, "llm", "add", "e2e-nokey", "--kind", "openai", "--base-url", "http://127.0.0.1:9",
        "--api-key-env", "E2E_NOT_SET",
    )  # fmt: skip
    assert "E2E_NOT_SET is not set" in msg
    assert "removed LLM endpoint e2e-cli" in ok(server, "llm", "remove", "e2e-cli")
    names_now = {e["name"] for e in server.get("/api/llm/endpoints")}
    assert not names_now & {"e2e-cli", "e2e-nokey"}
    assert "e2e-cli" in fails(server, "llm", "remove", "e2e-cli")


def test_every_strategy_is_listed_and_accepted(server: ServerHandle) -> None:
    from phantomex.brains.registry import strategy_names
    from phantomex.devtools.llm_sim.server import SimServer

    every = strategy_names()
    assert {"sma_cross", "ema_cross", "llm"} <= set(every)
    assert [s["name"] for s in server.get("/api/strategies")] == every
    assert [s["name"] for s in as_json(server, "strategies")] == every
    with SimServer(models=["alpha:7b"]) as sim:
        ok(server, "llm", "add", "e2e-sim", "--kind", "ollama", "--base-url", sim.url)
        try:
            for brain in every:
                name = f"Every {brain}"
                extra = ["-p", "endpoint=e2e-sim", "-p", "model=alpha:7b"] if brain == "llm" else []
                out = as_json(
                    server, "agents", "add", name, "--brain", brain, "--symbols", "BTC", *extra
                )
                assert out["brain"] == brain
                ok(server, "agents", "remove", name, "--yes")
        finally:
            ok(server, "llm", "remove", "e2e-sim")


def narrow(server: ServerHandle, *args: str) -> str:
    """A command's output in an 80-column terminal, where nothing may be cut short."""
    rc, out, err = run_cli(*args, env={**server.env, "COLUMNS": "80"})
    assert rc == 0, f"phantomex {' '.join(args)} exited {rc}\n{out}{err}"
    assert "…" not in out, out  # Rich's mark of a cut cell
    return out


def test_tables_keep_key_values_whole_in_80_columns(
    server: ServerHandle, hand: dict[str, Any]
) -> None:
    from phantomex import formatting as fmt

    trader = server.get(f"/api/agents/{hand['trader']['id']}")  # flat: its equity stays put
    out = narrow(server, "agents", "list")
    for a in server.get("/api/agents"):
        assert a["id"][:8] in out and a["mode"] in out
    assert fmt.money(trader["wallet"]["equity"]) in out and "autonomous" in out
    out = narrow(server, "status")
    assert trader["id"][:8] in out and fmt.money(trader["wallet"]["equity"]) in out
    out = narrow(server, "agents", "show", "Hand Trader")
    assert fmt.money(trader["wallet"]["cash"]) in out and "train_of_trade" in out

    out = narrow(server, "trades", "--agent", "Hand Trader")
    trades = server.get("/api/trades", agent_id=trader["id"])["trades"]
    assert len(trades) == 2
    for tr in trades:
        for value in (
            tr["side"],
            fmt.quantity(tr["quantity"]),
            fmt.price(tr["price"]),
            fmt.money(tr["notional"]),
            fmt.money(tr["fee"]),
        ):
            assert value in out, value
    assert "0.0123" in out
    sold = next(tr for tr in trades if tr["side"] == "sell")
    assert fmt.money(sold["realized_pnl"], sign=True) in out

    for command in (["decisions", "Hand Trader", "-n", "20"], ["trade", "Hand Trader"]):
        out = narrow(server, *command)
        assert "hold" in out or "executed" in out
    out = narrow(server, "decisions", "Hand Trader", "-n", "20")
    for d in (hand["buy"], hand["sell"]):
        for value in (d["id"][:8], d["action"], fmt.quantity(d["quantity"]), fmt.price(d["price"])):
            assert value in out, value

    waiting = as_json(server, "order", "Hand Advisor", "buy", "BTC", "--notional", "100")
    try:
        out = narrow(server, "pending")
        for value in (
            waiting["id"][:8],
            "buy",
            "BTC",
            fmt.quantity(waiting["quantity"]),
            fmt.price(waiting["price"]),
            "pending",
            "manual order",  # the reason: below the table, whole
        ):
            assert value in out, value
    finally:
        server.post(f"/api/decisions/{waiting['id']}/reject")

    out = narrow(server, "prices")
    assert all(p["symbol"] in out for p in server.get("/api/market/prices"))
    out = narrow(server, "strategies")
    assert all(s["name"] in out for s in server.get("/api/strategies"))
    assert "replay" in narrow(server, "sources")


def _pending_of(server: ServerHandle, agent_id: str, exclude: set[str]) -> list[dict[str, Any]]:
    pending = server.get("/api/decisions", status="pending")
    return [d for d in pending if d["agent_id"] == agent_id and d["id"] not in exclude]


def _wait_pending(server: ServerHandle, agent_id: str, exclude: set[str], timeout: float) -> str:
    """Let the agent decide until it leaves a new pending decision, then pause it so that the
    decision is not superseded by the next one; returns the decision's id ('' if none)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.post(f"/api/agents/{agent_id}/resume")
        poll(lambda: _pending_of(server, agent_id, exclude), deadline - time.monotonic(), 0.05)
        server.post(f"/api/agents/{agent_id}/pause")
        found = _pending_of(server, agent_id, exclude)
        if found:
            return str(found[0]["id"])
    return ""


def test_approve_and_reject_pending_decisions(server: ServerHandle) -> None:
    agent = by_name(server, "Sam Spike-Fade")
    first = _wait_pending(server, agent["id"], set(), 20)
    if not first:  # no spike in this stretch of data: ask an advisory Ruby instead
        agent = by_name(server, "Ruby RSI")
        ok(server, "agents", "mode", agent["id"], "advisory")
        first = _wait_pending(server, agent["id"], set(), 20)
    assert first, "no pending decision appeared"
    try:
        out = ok(server, "pending")
        assert first[:8] in out and agent["name"] in out
        rec = as_json(server, "approve", first[:10])  # a unique prefix is enough
        assert rec["id"] == first
        assert rec["status"] in ("executed", "rejected"), rec  # rejected: risk re-check failed
        if rec["status"] == "executed":
            trades = server.get("/api/trades", agent_id=agent["id"], limit=1000)["trades"]
            assert first in {t["decision_id"] for t in trades}
        else:
            assert rec["reason"].startswith("re-check failed")
        assert "not pending" in fails(server, "approve", first)

        second = _wait_pending(server, agent["id"], {first}, 20)
        assert second, "no second pending decision appeared"
        assert "rejected" in ok(server, "reject", second)
        stored = server.get(f"/api/agents/{agent['id']}/decisions", limit=1000)
        rec = next(d for d in stored if d["id"] == second)
        assert (rec["status"], rec["reason"]) == ("rejected", "rejected by a person")
        assert not _pending_of(server, agent["id"], set())
        assert "no pending decision" in fails(server, "reject", "ffffffffff")
    finally:
        server.post(f"/api/agents/{agent['id']}/resume")


def test_kill_and_release(server: ServerHandle) -> None:
    agents = server.get("/api/agents")
    running = [a["id"] for a in agents if a["status"] == "running"]
    # a running agent: one the daily loss limit paused (a fast replay crosses many days) would
    # refuse the resume below until its pause ends
    target = next(a for a in agents if a["status"] == "running")
    assert target["name"] in ok(server, "kill", "--agent", target["name"], "--yes")
    assert by_name(server, target["name"])["status"] == "stopped"
    assert server.get("/health")["kill_switch"] is False
    server.post(f"/api/agents/{target['id']}/resume")

    fails(server, "kill")  # no --yes and no terminal to answer: aborted, nothing happens
    assert server.get("/health")["kill_switch"] is False

    assert as_json(server, "kill", "--yes")["on"] is True
    assert server.get("/health")["kill_switch"] is True
    assert {a["status"] for a in server.get("/api/agents")} == {"stopped"}
    assert server.get("/api/decisions", status="pending") == []  # approvals are cancelled
    assert "kill switch" in fails(server, "trade", "Ruby RSI")

    assert "released" in ok(server, "kill", "--release")
    assert server.get("/health")["kill_switch"] is False
    assert {a["status"] for a in server.get("/api/agents")} == {"stopped"}  # until resumed
    server.post("/api/kill-switch")
    assert as_json(server, "release")["on"] is False
    for agent_id in running:
        resp = httpx.post(f"{server.url}/api/agents/{agent_id}/resume", timeout=30)
        if resp.status_code == 409:  # hit its daily loss limit meanwhile: resumes tomorrow
            assert "daily loss" in resp.json()["error"]["message"]
            continue
        assert resp.status_code == 200 and resp.json()["status"] == "running"


def test_audit_passes_while_running(server: ServerHandle) -> None:
    n = len(server.get("/api/agents"))
    out = ok(server, "audit")
    assert f"audit passed: {n} wallets reconcile with their history" in out
    assert "running server" in out
    result = as_json(server, "audit")
    assert result["ok"] is True and result["mismatches"] == []


def test_foreground_start_refuses_a_busy_port(server: ServerHandle, tmp_path: Path) -> None:
    msg = fails(server, "start", "--port", str(server.port), "--data-dir", str(tmp_path / "d"))
    assert f"port {server.port}" in msg and "in use" in msg
    assert not (tmp_path / "d" / "phantomex.db").exists()


# -- the life cycle: daemon, restart, stop, offline audit, tampering -------------------------------
@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[ServerHandle]:
    """Environment for daemons the test starts; any still running at the end are killed."""
    data_dir = tmp_path / "data"
    port = free_port()
    handle = ServerHandle(
        url=f"http://127.0.0.1:{port}", port=port, data_dir=data_dir, env=server_env(port, data_dir)
    )
    handle.extra["pids"] = ""
    try:
        yield handle
    finally:
        pids = {int(p) for p in handle.extra["pids"].split()}
        pid_file = data_dir / "phantomex.pid"
        if pid_file.exists():
            pids.add(int(pid_file.read_text().strip()))
        for pid in pids:
            kill_pid(pid)


def _pid(h: ServerHandle) -> int:
    pid = int((h.data_dir / "phantomex.pid").read_text().strip())
    h.extra["pids"] += f" {pid}"
    return pid


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_daemon_restart_stop_offline_audit_and_tamper(daemon: ServerHandle) -> None:
    h = daemon
    out = ok(h, "start", "--daemon")
    pid = _pid(h)
    assert f"started (pid {pid}) at {h.url}" in out
    assert h.get("/health")["status"] == "ok"
    assert "already running" in ok(h, "start", "--daemon")
    assert poll(lambda: h.get("/api/trades")["total"] > 0, 30), "no trade within 30 s"

    # pause every agent so the wallets read now are the wallets stored at the restart
    agents = h.get("/api/agents")
    assert {a["name"] for a in agents} == DEMO_NAMES
    for a in agents:
        h.post(f"/api/agents/{a['id']}/pause")
    before = {a["id"]: wallet_state(a) for a in h.get("/api/agents")}
    assert any(w["positions"] or w["cash"] != w["allowance"] for w in before.values())

    # restart = stop + start --daemon; --speed reaches the new process (nothing would move)
    out = ok(h, "restart", "--speed", "0.001")
    pid2 = _pid(h)
    assert f"stopped (pid {pid})" in out and f"started (pid {pid2})" in out
    assert _gone(pid) and pid2 != pid
    after = {a["id"]: wallet_state(a) for a in h.get("/api/agents")}
    assert after == before
    assert "/health" in ok(h, "logs", "-n", "100")  # the daemon's access log

    assert f"stopped (pid {pid2})" in ok(h, "stop")
    assert not (h.data_dir / "phantomex.pid").exists()
    assert poll(lambda: _gone(pid2), 5)
    for args in (("status",), ("deposit", "Ruby RSI", "5")):
        msg = fails(h, *args)
        assert f"PhantomEx is not running at {h.url}" in msg and "phantomex start" in msg
        assert len(msg.strip().splitlines()) == 1
    assert "not running" in ok(h, "stop")

    out = ok(h, "audit")  # offline: straight from the database
    assert "audit passed: 3 wallets reconcile with their history" in out and "offline" in out

    # change one wallet behind the ledger's back: the offline audit names the agent
    ruby = next(a for a in agents if a["name"] == "Ruby RSI")
    db = sqlite3.connect(h.data_dir / "phantomex.db")
    with db:
        changed = db.execute("UPDATE wallets SET cash = '1' WHERE agent_id = ?", (ruby["id"],))
        assert changed.rowcount == 1
    db.close()
    msg = fails(h, "audit")
    assert ruby["id"] in msg and "Ruby RSI" in msg and "cash is 1" in msg
    assert f"difference {Decimal(1) - before[ruby['id']]['cash']:+f}" in msg
    assert not any(a["id"] in msg for a in agents if a["id"] != ruby["id"])
    rc, out, _ = h.cli("audit", "--json")
    result = json.loads(out)
    assert rc == 1 and result["ok"] is False and result["offline"] is True
    assert {m["agent_id"] for m in result["mismatches"]} == {ruby["id"]}


def test_logs_tail_and_follow(tmp_path: Path) -> None:
    env = server_env(free_port(), tmp_path)
    assert "no log file" in run_cli("logs", env=env)[2]
    log = tmp_path / "phantomex.log"
    log.write_text("one\ntwo\nthree\n")
    assert run_cli("logs", "-n", "2", env=env)[:2] == (0, "two\nthree\n")
    out = tmp_path / "follow.out"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [*CLI, "logs", "-f", "-n", "1"], env=env, stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        assert poll(lambda: out.read_text() == "three\n", 15), out.read_text()
        with log.open("a") as f:
            f.write("four\n")
        assert poll(lambda: out.read_text() == "three\nfour\n", 15), out.read_text()
        proc.send_signal(signal.SIGINT)  # Ctrl-C ends the follow quietly
        assert proc.wait(10) == 0
        assert "Traceback" not in out.read_text()
    finally:
        terminate(proc)
