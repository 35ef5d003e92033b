"""LLM endpoints through the API: added, listed without their keys, kept encrypted, removed."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from conftest import run_cli, server_env
from test_api import Server

from phantomex.devtools.llm_sim.server import SimServer

SECRET = "sk-test-very-secret-9f8e7d"


@pytest.fixture(scope="module")
def sim() -> SimServer:
    with SimServer(models=["alpha:7b", "beta:8b"]) as server:
        yield server  # type: ignore[misc]


def test_endpoint_lifecycle_keeps_the_key_secret(
    tmp_path: Path, sim: SimServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    body = {"name": "router", "kind": "openai", "base_url": sim.openai_url, "api_key": SECRET}
    with Server(tmp_path, speed=600) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        created = c.post("/api/llm/endpoints", json=body)
        assert created.status_code == 201, created.text
        assert SECRET not in created.text and created.json()["has_api_key"] is True
        assert c.post("/api/llm/endpoints", json=body).status_code == 409
        bad = c.post("/api/llm/endpoints", json={**body, "name": "x y", "kind": "grpc"})
        assert bad.status_code == 422
        listed = c.get("/api/llm/endpoints")
        assert SECRET not in listed.text and [e["name"] for e in listed.json()] == ["router"]
        models = c.get("/api/llm/endpoints/router/models").json()
        assert {m["name"] for m in models["models"]} >= {"alpha:7b", "beta:8b"}
        assert c.post("/api/llm/endpoints/router/test").json()["ok"] is True
        agent = c.post(
            "/api/agents",
            json={
                "name": "llm one",
                "brain": "llm",
                "symbols": ["BTC"],
                "interval_seconds": 60,
                "params": {"endpoint": "router", "model": "alpha:7b"},
            },
        )
        assert agent.status_code == 201, agent.text
        aid = agent.json()["id"]
        assert c.delete("/api/llm/endpoints/router").status_code == 409  # in use
        deadline = time.monotonic() + 30
        decisions: list = []
        while not decisions and time.monotonic() < deadline:
            decisions = c.get(f"/api/agents/{aid}/decisions").json()
            time.sleep(0.2)
        assert decisions
        detail = c.get(f"/api/agents/{aid}/decisions/{decisions[0]['id']}").json()
        assert detail["llm_calls"] and detail["llm_calls"][0]["model"] == "alpha:7b"
        assert SECRET not in str(detail)
    # restart: the endpoint is still there, its key still works and is stored encrypted
    with Server(tmp_path, speed=600) as srv, httpx.Client(base_url=srv.url, timeout=20) as c:
        assert [e["name"] for e in c.get("/api/llm/endpoints").json()] == ["router"]
        assert c.post("/api/llm/endpoints/router/test").json()["ok"] is True
        c.delete(f"/api/agents/{aid}")
        assert c.delete("/api/llm/endpoints/router").json() == {"deleted": "router"}
        assert c.get("/api/llm/endpoints").json() == []
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("phantomex.db*"))
    assert SECRET.encode() not in raw
    assert SECRET not in caplog.text
    key_file = tmp_path / "secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    with sqlite3.connect(tmp_path / "phantomex.db") as db:
        assert db.execute("select count(*) from llm_calls").fetchone()[0] > 0


def test_unknown_endpoint_for_an_llm_agent_names_the_field(tmp_path: Path) -> None:
    with Server(tmp_path, speed=600) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        resp = c.post(
            "/api/agents",
            json={
                "name": "lost",
                "brain": "llm",
                "symbols": ["BTC"],
                "params": {"endpoint": "nowhere", "model": "m"},
            },
        )
        assert resp.status_code == 422 and resp.json()["error"]["field"] == "params.endpoint"
        assert c.get("/api/llm/endpoints/nowhere/models").status_code == 404


def test_parser_warnings_are_stored_and_shown_by_decisions_show_prompt(
    tmp_path: Path, sim: SimServer
) -> None:
    """A single-shot answer that parses with warnings: they are on the stored decision (API)
    and `phantomex decisions AGENT --show-prompt` prints them."""
    sim.reset()
    sim.script(
        "beta:8b",
        [
            'My answer: {"action": "hold", "symbol": null, "reasoning": "flat market", '
            '"reasoning": "no edge", "confidence": 0.5}'
        ],
    )
    warnings = [
        "ignored text around the JSON",
        "reasoning given 2 times ('reasoning', 'reasoning'); used the first, 'flat market'",
    ]
    with Server(tmp_path, speed=600) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        body = {"name": "warned", "kind": "ollama", "base_url": sim.url}
        assert c.post("/api/llm/endpoints", json=body).status_code == 201
        agent = c.post(
            "/api/agents",
            json={
                "name": "warned bot",
                "brain": "llm",
                "symbols": ["BTC"],
                "interval_seconds": 86400,  # one decision while the test runs
                "params": {"endpoint": "warned", "model": "beta:8b"},
            },
        )
        assert agent.status_code == 201, agent.text
        aid = agent.json()["id"]
        deadline = time.monotonic() + 60
        decisions: list = []
        while not decisions and time.monotonic() < deadline:
            decisions = c.get(f"/api/agents/{aid}/decisions").json()
            time.sleep(0.2)
        assert decisions, "the LLM agent made no decision"
        (rec,) = decisions
        assert rec["reasoning"] == "flat market"
        assert all(w in rec["meta"]["warnings"] for w in warnings), rec["meta"]
        rc, out, err = run_cli(
            "decisions", "warned bot", "--show-prompt", env=server_env(srv.port, tmp_path)
        )
    assert rc == 0, out + err
    assert f"warnings of decision {rec['id'][:12]}" in out
    for warning in warnings:
        assert f"- {warning}" in out
