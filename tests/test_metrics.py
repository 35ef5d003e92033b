"""``/metrics``: a real server replaying the demo with an LLM agent on the local simulator, read
with Prometheus's own text parser."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from conftest import serve
from prometheus_client.parser import text_string_to_metric_families

from phantomex.devtools.llm_sim.server import SimServer

WAIT = 60.0  # seconds the server has to produce the activity asserted below


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(models=["alpha:7b"]) as server:
        yield server


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    resp = httpx.get(f"{url}/metrics", timeout=30)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def total(values: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    return sum(v for (n, _), v in values.items() if n == name)


def test_metrics_count_ticks_decisions_fills_and_llm_calls(tmp_path: Path, sim: SimServer) -> None:
    with serve(tmp_path) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        endpoint = {"name": "sim", "kind": "ollama", "base_url": sim.url}
        assert c.post("/api/llm/endpoints", json=endpoint).status_code == 201
        llm_agent = {
            "name": "metered",
            "brain": "llm",
            "symbols": ["BTC"],
            "interval_seconds": 60,
            "params": {"endpoint": "sim", "model": "alpha:7b"},
        }
        assert c.post("/api/agents", json=llm_agent).status_code == 201
        rules = {"name": "buyer", "brain": "rsi", "symbols": ["BTC"], "interval_seconds": 3600}
        created = c.post("/api/agents", json=rules)
        assert created.status_code == 201, created.text
        order = {"action": "buy", "symbol": "BTC", "notional": "100"}
        placed = c.post(f"/api/agents/{created.json()['id']}/orders", json=order)
        assert placed.status_code == 200, placed.text
        assert placed.json()["status"] == "executed"

        deadline = time.monotonic() + WAIT
        values = samples(srv.url)
        while time.monotonic() < deadline and not total(values, "phantomex_llm_calls_total"):
            time.sleep(0.5)
            values = samples(srv.url)
        health = c.get("/health").json()

    assert 0 < total(values, "phantomex_ticks_total") <= health["ticks"]
    assert values[("phantomex_fills_total", (("side", "buy"),))] >= 1
    executed = (("source", "manual"), ("status", "executed"))
    assert values[("phantomex_decisions_total", executed)] >= 1
    ok_calls = (("endpoint", "sim"), ("outcome", "ok"), ("purpose", "decide"))
    assert values[("phantomex_llm_calls_total", ok_calls)] >= 1
    latency = (("endpoint", "sim"), ("purpose", "decide"))
    assert values[("phantomex_llm_call_seconds_count", latency)] >= 1
    assert values[("phantomex_agents", (("status", "running"),))] == 5  # 3 demo agents + 2
    assert values[("phantomex_kill_switch", ())] == 0
