"""The ``phantomex`` CLI against a real server (subprocesses all the way down)."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from conftest import ServerHandle, free_port, kill_pid, run_cli, server_env

DEMO_NAMES = {"Ruby RSI", "Max Momentum", "Sam Spike-Fade"}
T = TypeVar("T")


# -- helpers -----------------------------------------------------------------------------------------
def ok(server: ServerHandle, *args: str) -> str:
    rc, out, err = server.cli(*args)
    assert rc == 0, f"phantomex {' '.join(args)} exited {rc}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in out + err
    return out


def as_json(server: ServerHandle, *args: str) -> Any:
    return json.loads(ok(server, *args, "--json"))


def fails(server: ServerHandle, *args: str) -> str:
    """Run a command that must exit 1 with a message (and no traceback); returns the output."""
    rc, out, err = server.cli(*args)
    assert rc == 1, f"phantomex {' '.join(args)} exited {rc}\nstdout: {out}\nstderr: {err}"
    assert "Traceback" not in out + err
    assert (out + err).strip(), "no message printed"
    return out + err


def poll(fn: Callable[[], T | None], timeout: float, interval: float = 0.3) -> T | None:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def agent(server: ServerHandle, name: str) -> dict[str, Any]:
    return as_json(server, "agents", "show", name)  # type: ignore[no-any-return]


def wallet_state(a: dict[str, Any]) -> dict[str, Any]:
    """The stored part of a wallet (no marks): what must survive a restart."""
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
def quiet_agent(server: ServerHandle) -> str:
    """An agent created by the test and paused at once: its cash only moves by deposits."""
    name = "Quiet Test"
    created = as_json(
        server, "agents", "add", name, "--brain", "rsi", "--symbols", "BTC,eth",
        "--param", "period=10", "--param", "oversold=25", "--allowance", "5000",
    )  # fmt: skip
    assert created["params"] == {"period": 10, "oversold": 25}
    assert created["symbols"] == ["BTC", "ETH"]
    assert Decimal(created["wallet"]["allowance"]) == Decimal(5000)
    ok(server, "agents", "pause", name)
    assert agent(server, name)["status"] == "paused"
    return name


# -- reading -----------------------------------------------------------------------------------------
def test_status_and_agents_list_show_the_demo_agents(server: ServerHandle) -> None:
    out = ok(server, "status")
    assert f"running at {server.url}" in out
    for name in DEMO_NAMES:
        assert name in out
    out = ok(server, "agents", "list")
    for name in DEMO_NAMES:
        assert name in out
    agents = as_json(server, "agents", "list")
    assert {a["name"] for a in agents} >= DEMO_NAMES
    spike = next(a for a in agents if a["name"] == "Sam Spike-Fade")
    assert spike["mode"] == "advisory" and spike["brain"] == "spike_fade"


def test_json_outputs_parse(server: ServerHandle) -> None:
    status = as_json(server, "status")
    assert status["health"]["status"] == "ok"
    assert {a["name"] for a in status["agents"]} >= DEMO_NAMES
    prices = as_json(server, "prices")
    assert {"BTC", "ETH"} <= {p["symbol"] for p in prices}
    assert all(Decimal(p["price"]) > 0 for p in prices)
    names = {s["name"] for s in as_json(server, "strategies")}
    assert {"rsi", "momentum", "spike_fade"} <= names
    assert isinstance(as_json(server, "pending"), list)
    page = as_json(server, "trades", "-n", "5")
    assert page["limit"] == 5 and isinstance(page["trades"], list)
    decisions = as_json(server, "decisions", "ruby rsi", "-n", "3")  # name: case-insensitive
    assert len(decisions) <= 3


def test_trades_appear_within_a_bounded_wait(server: ServerHandle) -> None:
    page = poll(lambda: (p := as_json(server, "trades", "-n", "50")) and p["total"] > 0 and p, 30)
    assert page, "no trade within 30 s of fast replay"
    trade = page["trades"][0]
    assert trade["agent_name"] in DEMO_NAMES
    assert trade["side"] in ("buy", "sell")
    # filters: by agent name and by symbol
    name = trade["agent_name"]
    mine = as_json(server, "trades", "--agent", name, "-n", "100")
    assert mine["total"] >= 1 and {t["agent_name"] for t in mine["trades"]} == {name}
    sym = as_json(server, "trades", "--symbol", trade["symbol"].lower(), "-n", "100")
    assert sym["total"] >= 1 and {t["symbol"] for t in sym["trades"]} == {trade["symbol"]}
    offset = as_json(server, "trades", "-n", "1", "--offset", "1")
    assert offset["offset"] == 1
    assert "Trades" in ok(server, "trades", "-n", "3")


def test_agents_show_by_id_and_unknown_agent(server: ServerHandle) -> None:
    ruby = agent(server, "RUBY RSI")
    assert ruby["name"] == "Ruby RSI"
    assert agent(server, ruby["id"])["id"] == ruby["id"]
    out = ok(server, "agents", "show", ruby["id"])
    assert "Ruby RSI" in out and "Cash" in out
    msg = fails(server, "agents", "show", "Nobody Here")
    assert "Nobody Here" in msg


def test_deposit_changes_cash_by_exactly_the_amount(server: ServerHandle, quiet_agent: str) -> None:
    before = agent(server, quiet_agent)["wallet"]
    out = as_json(server, "deposit", quiet_agent, "123.456789")
    amount = Decimal("123.456789")
    assert Decimal(out["wallet"]["cash"]) == Decimal(before["cash"]) + amount
    after = agent(server, quiet_agent)["wallet"]
    assert Decimal(after["cash"]) == Decimal(before["cash"]) + amount
    assert Decimal(after["deposits"]) == Decimal(before["deposits"]) + amount
    assert Decimal(after["funding"]) == Decimal(before["funding"]) + amount
    assert "deposited 1 USD" in ok(server, "deposit", quiet_agent, "1")
    assert Decimal(agent(server, quiet_agent)["wallet"]["cash"]) == Decimal(after["cash"]) + 1


@pytest.mark.parametrize("amount", ["-5", "0", "NaN", "inf", "abc", "", "1e13"])
def test_deposit_rejects_bad_amounts(server: ServerHandle, quiet_agent: str, amount: str) -> None:
    before = agent(server, quiet_agent)["wallet"]
    msg = fails(server, "deposit", quiet_agent, amount)
    assert "amount" in msg
    after = agent(server, quiet_agent)["wallet"]
    assert (after["cash"], after["deposits"]) == (before["cash"], before["deposits"])


def test_agents_add_errors_name_the_field(server: ServerHandle) -> None:
    msg = fails(server, "agents", "add", "Bad Brain", "--brain", "no_such", "--symbols", "BTC")
    assert "brain" in msg and "no_such" in msg
    msg = fails(server, "agents", "add", "Bad Sym", "--brain", "rsi", "--symbols", "BTC,NOPE")
    assert "symbols" in msg and "NOPE" in msg
    msg = fails(
        server, "agents", "add", "Bad Param", "--brain", "rsi", "--symbols", "BTC",
        "--param", "period=soon",
    )  # fmt: skip
    assert "params.period" in msg
    msg = fails(server, "agents", "add", "ruby rsi", "--brain", "rsi", "--symbols", "BTC")
    assert "name" in msg and "exists" in msg
    names = {a["name"] for a in as_json(server, "agents", "list")}
    assert not names & {"Bad Brain", "Bad Sym", "Bad Param"}


def test_agents_add_mode_and_remove(server: ServerHandle) -> None:
    name = "Remove Me"
    out = ok(
        server, "agents", "add", name, "--brain", "momentum", "--symbols", "SOL",
        "--param", "ma=ema", "--mode", "advisory", "--interval", "120", "--goal", "[b]x[/b]",
        "--risk", "stop_loss_pct=3",
    )  # fmt: skip
    assert name in out
    a = agent(server, name)
    assert (a["mode"], a["interval_seconds"], a["goal"]) == ("advisory", 120, "[b]x[/b]")
    assert a["params"]["ma"] == "ema" and Decimal(a["risk"]["stop_loss_pct"]) == 3
    ok(server, "agents", "mode", name, "autonomous")
    assert agent(server, name)["mode"] == "autonomous"
    assert fails(server, "agents", "remove", name)  # no --yes and no terminal: aborted
    assert name in {x["name"] for x in as_json(server, "agents", "list")}
    ok(server, "agents", "remove", name, "--yes")
    assert name not in {x["name"] for x in as_json(server, "agents", "list")}


def test_pause_and_resume(server: ServerHandle) -> None:
    assert "paused" in ok(server, "agents", "pause", "max momentum")
    assert agent(server, "Max Momentum")["status"] == "paused"
    assert "running" in ok(server, "agents", "resume", "Max Momentum")
    assert agent(server, "Max Momentum")["status"] == "running"


def test_trade_now_shows_the_decision(server: ServerHandle) -> None:
    ruby = agent(server, "Ruby RSI")
    rec = as_json(server, "trade", "Ruby RSI")
    assert rec["agent_id"] == ruby["id"] and rec["source"] == "manual"
    assert rec["action"] in ("buy", "sell", "hold")
    assert rec["status"] in ("executed", "held", "rejected", "pending")
    out = ok(server, "trade", "ruby rsi")
    assert "Decision" in out and "manual" in out
    assert "Ruby RSI" in out


def _wait_pending(server: ServerHandle, name: str, exclude: set[str], timeout: float) -> str | None:
    """Let ``name`` decide until it leaves a new pending decision; pause it so that decision is
    not superseded; return its id."""
    a = agent(server, name)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ok(server, "agents", "resume", name)
        found = poll(
            lambda: [
                d
                for d in as_json(server, "pending")
                if d["agent_id"] == a["id"] and d["id"] not in exclude
            ],
            min(5.0, max(0.1, deadline - time.monotonic())),
        )
        ok(server, "agents", "pause", name)
        if not found:
            continue
        still = [d for d in as_json(server, "pending") if d["agent_id"] == a["id"]]
        if still and still[0]["id"] not in exclude:
            return str(still[0]["id"])
    return None


def test_approve_and_reject_pending_decisions(server: ServerHandle) -> None:
    name = "Sam Spike-Fade"
    first = _wait_pending(server, name, set(), 20)
    if first is None:  # the dataset gave no spike: ask an advisory Ruby instead
        name = "Ruby RSI"
        ok(server, "agents", "mode", name, "advisory")
        first = _wait_pending(server, name, set(), 20)
    assert first, "no pending decision appeared"
    try:
        out = ok(server, "pending")
        assert first[:12] in out and name in out
        rec = as_json(server, "approve", first[:10])  # a unique prefix is enough
        assert rec["id"] == first
        assert rec["status"] in ("executed", "rejected")  # rejected: the risk re-check failed
        if rec["status"] == "executed":
            trades = as_json(server, "trades", "--agent", name, "-n", "1000")["trades"]
            assert first in {t["decision_id"] for t in trades}
        else:
            assert rec["reason"].startswith("re-check failed")
        msg = fails(server, "approve", first)
        assert "not pending" in msg

        second = _wait_pending(server, name, {first}, 20)
        assert second, "no second pending decision appeared"
        out = ok(server, "reject", second)
        assert "rejected" in out
        stored = next(d for d in as_json(server, "decisions", name, "-n", "1000") if d["id"] == second)
        assert (stored["status"], stored["reason"]) == ("rejected", "rejected by a person")
        assert second not in {d["id"] for d in as_json(server, "pending")}
        assert "no pending decision" in fails(server, "reject", "ffffffffff")
    finally:
        ok(server, "agents", "resume", name)


def test_kill_and_release(server: ServerHandle) -> None:
    out = ok(server, "kill", "--agent", "Max Momentum", "--yes")
    assert "Max Momentum" in out
    assert agent(server, "Max Momentum")["status"] == "stopped"
    assert as_json(server, "status")["health"]["kill_switch"] is False
    ok(server, "agents", "resume", "Max Momentum")

    assert fails(server, "kill")  # no --yes and no terminal: aborted, nothing happens
    assert as_json(server, "status")["health"]["kill_switch"] is False

    killed = as_json(server, "kill", "--yes")
    assert killed["on"] is True
    status = as_json(server, "status")
    assert status["health"]["kill_switch"] is True
    assert {a["status"] for a in status["agents"]} == {"stopped"}
    assert "kill switch" in fails(server, "trade", "Ruby RSI")
    assert as_json(server, "pending") == []  # the kill cancels waiting approvals

    assert "released" in ok(server, "kill", "--release")
    status = as_json(server, "status")
    assert status["health"]["kill_switch"] is False
    assert {a["status"] for a in status["agents"]} == {"stopped"}  # until resumed
    ok(server, "kill", "--yes")
    assert as_json(server, "release")["on"] is False
    for a in status["agents"]:
        ok(server, "agents", "resume", a["id"])
    assert {a["status"] for a in as_json(server, "agents", "list")} == {"running"}


def test_audit_passes_while_running(server: ServerHandle) -> None:
    n = len(as_json(server, "agents", "list"))
    out = ok(server, "audit")
    assert f"audit passed: {n} wallets reconcile with their history" in out
    result = as_json(server, "audit")
    assert result["ok"] is True and result["mismatches"] == []


def test_foreground_start_refuses_a_busy_port(server: ServerHandle, tmp_path: Path) -> None:
    msg = fails(server, "start", "--port", str(server.port), "--data-dir", str(tmp_path / "d"))
    assert "in use" in msg
    assert not (tmp_path / "d" / "phantomex.db").exists()


# -- the life cycle: daemon, stop, offline audit, restart, tampering -------------------------------
@pytest.fixture
def daemon_env(tmp_path: Path) -> Iterator[ServerHandle]:
    """Environment for a daemon started by the test; whatever runs at the end is killed."""
    data_dir = tmp_path / "data"
    port = free_port()
    env = server_env(port, data_dir)
    handle = ServerHandle(url=f"http://127.0.0.1:{port}", port=port, data_dir=data_dir, env=env)
    seen: set[int] = set()
    handle.extra["pids"] = ""
    try:
        yield handle
    finally:
        pid_file = data_dir / "phantomex.pid"
        if pid_file.exists():
            seen.add(int(pid_file.read_text().strip()))
        seen |= {int(p) for p in handle.extra["pids"].split() if p}
        for pid in seen:
            kill_pid(pid)


def _start_daemon(h: ServerHandle, *flags: str) -> int:
    out = ok(h, "start", "--daemon", *flags)
    pid = int((h.data_dir / "phantomex.pid").read_text().strip())
    h.extra["pids"] += f" {pid}"
    assert f"started (pid {pid}) at {h.url}" in out
    assert httpx.get(f"{h.url}/health", timeout=5).json()["status"] == "ok"
    return pid


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_daemon_stop_offline_audit_restart_and_tamper(daemon_env: ServerHandle) -> None:
    h = daemon_env
    pid = _start_daemon(h)
    assert "already running" in ok(h, "start", "--daemon")
    assert poll(lambda: as_json(h, "trades")["total"] > 0, 30), "no trade within 30 s"

    # freeze trading so the wallets read now are the wallets stored at stop
    agents = as_json(h, "agents", "list")
    assert {a["name"] for a in agents} == DEMO_NAMES
    for a in agents:
        ok(h, "agents", "pause", a["id"])
    before = {a["id"]: wallet_state(a) for a in as_json(h, "agents", "list")}
    assert any(w["positions"] or w["cash"] != w["allowance"] for w in before.values())
    assert "/health" in ok(h, "logs", "-n", "200")

    assert f"stopped (pid {pid})" in ok(h, "stop")
    assert not (h.data_dir / "phantomex.pid").exists()
    assert poll(lambda: _gone(pid), 5)
    for args in (("status",), ("agents", "list"), ("trade", "Ruby RSI"), ("kill", "--yes")):
        msg = fails(h, *args)
        assert f"PhantomEx is not running at {h.url}" in msg and "phantomex start" in msg
        assert len(msg.strip().splitlines()) == 1
    assert "not running" in ok(h, "stop")

    out = ok(h, "audit")  # offline: reads the database
    assert "audit passed: 3 wallets reconcile with their history" in out
    assert "offline" in out
    assert as_json(h, "audit")["offline"] is True

    # start again, slowly (the flag reaches the daemon): the wallets are the stored ones
    pid2 = _start_daemon(h, "--speed", "0.001")
    after = {a["id"]: wallet_state(a) for a in as_json(h, "agents", "list")}
    assert after == before
    assert "audit passed: 3 wallets" in ok(h, "audit")
    out = ok(h, "restart", "--speed", "0.001")
    pid3 = int((h.data_dir / "phantomex.pid").read_text().strip())
    h.extra["pids"] += f" {pid3}"
    assert f"stopped (pid {pid2})" in out and f"started (pid {pid3})" in out and pid3 != pid2
    ok(h, "stop")
    assert poll(lambda: _gone(pid3), 5)

    # tamper with one wallet behind the ledger's back: the offline audit names the agent
    ruby = next(a for a in agents if a["name"] == "Ruby RSI")
    db = sqlite3.connect(h.data_dir / "phantomex.db")
    with db:
        changed = db.execute("UPDATE wallets SET cash = '1' WHERE agent_id = ?", (ruby["id"],))
        assert changed.rowcount == 1
    db.close()
    msg = fails(h, "audit")
    assert ruby["id"] in msg and "Ruby RSI" in msg and "cash" in msg
    assert f"difference {Decimal(1) - before[ruby['id']]['cash']:+f}" in msg
    others = [a for a in agents if a["id"] != ruby["id"]]
    assert not any(a["id"] in msg for a in others)
    rc, out, _ = run_cli("audit", "--json", env=h.env)
    assert rc == 1 and json.loads(out)["ok"] is False
