"""Crash safety: SIGKILL a real server at random moments of a fast replay, restart it, check it.

Five agents (three demo agents, one of them advisory, plus two added here) trade a fast replay.
Each round waits a random time (seeded; the seed is printed), approves a pending decision or
places a limit order through the API, notes every trade the API has reported, then kills the
server's process group with SIGKILL. With the server dead, the database must pass
``PRAGMA integrity_check`` and the offline audit (what ``phantomex audit --offline`` runs); no
trade may be duplicated (one per idempotency key, one per decision); every trade the API
reported before the kill must still be there unchanged; the trade count and the stored clock
never go back; each agent's ledger sequence has no hole. After the restart the same agents run,
the live wallets reconcile with the history (``/api/audit``) and the clock resumes at or after
the stored one.

``PHANTOMEX_KILL_LOOPS`` sets the number of kills (default 8; ``make crash-test`` runs 50),
``PHANTOMEX_KILL_SEED`` the random seed, ``PHANTOMEX_KILL_SPEED`` the replay speed (default 3000:
50 ticks, so 50 commits, per second; 0 is as fast as the kernel goes).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from conftest import CLI, free_port, server_env, wait_health

from phantomex.cli.audit import offline_audit
from phantomex.config import Settings

START_TIMEOUT = 180.0  # generous: on a busy shared machine the imports alone can take a minute
KILLS = int(os.environ.get("PHANTOMEX_KILL_LOOPS", "8"))
SPEED = os.environ.get("PHANTOMEX_KILL_SPEED", "3000")  # 50 one-minute bars per second
SEED = int(os.environ.get("PHANTOMEX_KILL_SEED", str(time.time_ns() % 1_000_000)))
EXTRA_AGENTS = [
    {
        "name": "Kim Quick RSI",
        "brain": "rsi",
        "params": {"period": 5, "oversold": 40, "overbought": 60},
        "symbols": ["BTC", "ETH", "DOGE"],
        "interval_seconds": 60,
        "risk": {"cooldown_seconds": 0, "max_allocation_pct": "10"},
    },
    {
        "name": "Lea Limits",
        "brain": "momentum",
        "params": {"fast": 3, "slow": 8},
        "symbols": ["SOL", "XRP"],
        "interval_seconds": 120,
        "risk": {"cooldown_seconds": 0},
    },
]


class Server:
    """``phantomex start`` in its own process group, so SIGKILL takes everything it runs."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = server_env(self.port, data_dir, PHANTOMEX_REPLAY_SPEED=SPEED)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> dict[str, Any]:
        with (self.data_dir / "server-output.log").open("ab") as out:
            self.proc = subprocess.Popen(
                [*CLI, "start"],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return wait_health(self.url, START_TIMEOUT, self.proc)

    def kill(self) -> None:
        """SIGKILL the server's process group (if it runs) and reap it."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)

    def get(self, path: str, **params: Any) -> Any:
        resp = httpx.get(f"{self.url}{path}", params=params, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, timeout=30)


def stored(db: Path) -> dict[str, Any]:
    """What the database holds at rest, read with the sqlite3 module (not our store code)."""
    con = sqlite3.connect(db)
    try:
        rows = con.execute(
            "SELECT idempotency_key, decision_id, agent_id, seq, side, quantity, price, fee "
            "FROM trades"
        ).fetchall()
        seqs: dict[str, list[int]] = {}
        for agent_id, seq in con.execute(
            "SELECT agent_id, seq FROM trades UNION ALL SELECT agent_id, seq FROM deposits"
        ):
            seqs.setdefault(agent_id, []).append(seq)
        clock = con.execute("SELECT value FROM kernel_state WHERE key = 'clock'").fetchone()
        return {
            "integrity": con.execute("PRAGMA integrity_check").fetchall(),
            "trades": {r[0]: r[1:] for r in rows},
            "trade_rows": len(rows),
            "decision_ids": [r[1] for r in rows if r[1] is not None],
            "seqs": seqs,
            "clock": datetime.fromisoformat(json.loads(clock[0])["time"]) if clock else None,
            "agents": {i for (i,) in con.execute("SELECT id FROM agents WHERE deleted_at IS NULL")},
        }
    finally:
        con.close()


def reported_trades(server: Server) -> dict[str, tuple[Any, ...]]:
    """Every trade the API reports (newest first, paged), keyed by idempotency key."""
    out: dict[str, tuple[Any, ...]] = {}
    offset = 0
    while True:
        page = server.get("/api/trades", limit=1000, offset=offset)
        for t in page["trades"]:
            out[t["idempotency_key"]] = (t["decision_id"], t["agent_id"], t["seq"], t["side"])
        offset += len(page["trades"])
        if not page["trades"] or offset >= page["total"]:
            return out


def poke(server: Server, rng: random.Random) -> None:
    """A command just before the kill: approve a pending decision or place a limit order."""
    pending = server.get("/api/decisions", status="pending")
    if pending and rng.random() < 0.5:
        server.post(f"/api/decisions/{pending[0]['id']}/approve")
        return
    agents = {a["name"]: a for a in server.get("/api/agents")}
    lea = agents.get("Lea Limits")
    prices = {p["symbol"]: p["price"] for p in server.get("/api/market/prices")}
    if lea and "SOL" in prices:
        below = f"{float(prices['SOL']) * 0.999:.4f}"
        body = {"action": "buy", "symbol": "SOL", "notional": "50", "type": "limit"}
        server.post(f"/api/agents/{lea['id']}/orders", body | {"limit_price": below})


def test_sigkill_loop_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    print(f"kill loop: {KILLS} kills, seed {SEED} (PHANTOMEX_KILL_SEED={SEED} reruns it)")
    server = Server(tmp_path)
    try:
        kill_loop(server, tmp_path / "phantomex.db", random.Random(SEED))
    finally:
        server.kill()


def kill_loop(server: Server, db: Path, rng: random.Random) -> None:
    settings = Settings(data_dir=db.parent, db_url=f"sqlite:///{db}")
    server.start()
    for spec in EXTRA_AGENTS:
        assert server.post("/api/agents", spec).status_code == 201
    before: dict[str, Any] = {"trades": {}, "trade_rows": 0, "clock": None, "agents": set()}
    agents = {a["id"] for a in server.get("/api/agents")}
    for kill in range(1, KILLS + 1):
        time.sleep(rng.uniform(0.2, 2.5))
        poke(server, rng)
        reported = reported_trades(server)
        time.sleep(rng.uniform(0.0, 0.5))
        server.kill()

        after = stored(db)
        where = f"kill {kill}/{KILLS} (seed {SEED})"
        assert after["integrity"] == [("ok",)], where
        audit, _ = offline_audit(settings)  # what `phantomex audit --offline` runs
        assert audit.ok and audit.wallets == len(agents), f"{where}: {audit.mismatches}"
        assert len(after["decision_ids"]) == len(set(after["decision_ids"])), where
        lost = {k for k in reported if k not in after["trades"]}
        assert not lost, f"{where}: trades reported by the API are gone: {sorted(lost)}"
        changed = {k for k, v in reported.items() if after["trades"][k][:4] != v}
        assert not changed, f"{where}: trades changed: {sorted(changed)}"
        assert set(before["trades"]) <= set(after["trades"]), where
        assert after["trade_rows"] >= before["trade_rows"], where
        assert before["clock"] is None or after["clock"] >= before["clock"], where
        for agent_id, seqs in after["seqs"].items():
            assert sorted(seqs) == list(range(1, len(seqs) + 1)), f"{where}: {agent_id} {seqs}"
        assert after["agents"] == agents, where

        health = server.start()
        assert datetime.fromisoformat(health["clock"]) >= after["clock"], where
        assert {a["id"] for a in server.get("/api/agents")} == agents, where
        live_audit = server.get("/api/audit")
        assert live_audit["ok"], f"{where}: {live_audit}"
        before = after
        print(f"kill {kill}: ok, {after['trade_rows']} trades, clock {after['clock']}", flush=True)
    assert before["trade_rows"] > 0, "the agents never traded: the test proved nothing"
    print(
        f"kill loop passed: {KILLS} kills, {before['trade_rows']} trades, clock {before['clock']}"
    )
