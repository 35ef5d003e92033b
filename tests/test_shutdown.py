"""Graceful shutdown: SIGTERM while an LLM agent is thinking, against a real server and simulator.

The decision outlives the shutdown grace, so it must be recorded as an abandoned hold; the server
exits 0, and what it leaves behind passes the integrity check and the audit."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

from conftest import run_cli, serve

from phantomex.devtools.llm_sim.server import SimServer

MODEL = "slow:7b"


def test_sigterm_records_the_decision_in_flight_as_abandoned(tmp_path: Path) -> None:
    with SimServer(models=[MODEL]) as sim:
        sim.configure(latency_seconds=60.0)  # far longer than the shutdown grace
        endpoint = {"name": "sim", "kind": "ollama", "base_url": sim.url, "timeout_seconds": 900}
        data = tmp_path / "data"
        with serve(
            data,
            PHANTOMEX_DEMO="false",
            PHANTOMEX_REPLAY_SPEED="600",
            PHANTOMEX_LLM_ENDPOINTS=json.dumps([endpoint]),
        ) as srv:
            agent = srv.post(
                "/api/agents",
                {
                    "name": "Slow Thinker",
                    "brain": "llm",
                    "params": {"endpoint": "sim", "model": MODEL},
                    "symbols": ["BTC"],
                    "interval_seconds": 60,
                },
            )
            deadline = time.monotonic() + 60
            while srv.get(f"/api/agents/{agent['id']}")["last_decided_at"] is None:
                assert time.monotonic() < deadline, "the agent never started deciding"
                time.sleep(0.2)
            assert srv.proc is not None
            srv.proc.send_signal(signal.SIGTERM)
            assert srv.proc.wait(60) == 0, srv.server_output()

    con = sqlite3.connect(data / "phantomex.db")
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = con.execute(
            "SELECT status, reason, meta FROM decisions WHERE agent_id = ?", (agent["id"],)
        ).fetchall()
    finally:
        con.close()
    abandoned = [r for r in rows if "abandoned" in r[1]]
    assert len(abandoned) == 1, rows
    status, _, meta = abandoned[0]
    assert status == "held" and json.loads(meta).get("abandoned") is True
    rc, out, err = run_cli("audit", "--offline", env=srv.env)
    assert rc == 0 and "audit passed" in out, out + err
