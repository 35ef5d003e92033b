"""``/metrics`` in Prometheus's text format, counted from the kernel's events.

Ticks, resolved decisions (by status and source), fills (by side), kernel errors, and LLM calls
(latency histogram and outcomes by endpoint and purpose); agents and the kill switch are read at
scrape time. Each app has its own registry, so several servers in one process do not mix.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest

from phantomex.kernel.bus import Event
from phantomex.service import Queries

LLM_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class KernelMetrics:
    """Prometheus metrics fed by one kernel's event bus."""

    def __init__(self, queries: Queries) -> None:
        self.queries = queries
        self.registry = CollectorRegistry()
        r = self.registry
        self.ticks = Counter("phantomex_ticks", "Market ticks processed.", registry=r)
        self.decisions = Counter(
            "phantomex_decisions",
            "Decisions resolved, by final status and source.",
            ["status", "source"],
            registry=r,
        )
        self.fills = Counter("phantomex_fills", "Orders filled, by side.", ["side"], registry=r)
        self.errors = Counter("phantomex_errors", "Kernel and brain errors.", registry=r)
        self.llm_latency = Histogram(
            "phantomex_llm_call_seconds",
            "Latency of LLM calls (cached answers excluded).",
            ["endpoint", "purpose"],
            buckets=LLM_BUCKETS,
            registry=r,
        )
        self.llm_calls = Counter(
            "phantomex_llm_calls",
            "LLM calls by outcome (ok, error, cached).",
            ["endpoint", "purpose", "outcome"],
            registry=r,
        )
        self.agents = Gauge("phantomex_agents", "Agents, by status.", ["status"], registry=r)
        self.kill_switch = Gauge(
            "phantomex_kill_switch", "1 when the kill switch is on.", registry=r
        )

    def on_event(self, event: Event) -> None:
        data = event.data
        if event.type == "price":
            self.ticks.inc()
        elif event.type == "decision":
            rec = data.get("decision") or {}
            self.decisions.labels(str(rec.get("status")), _source(rec.get("source"))).inc()
        elif event.type == "trade":
            self.fills.labels(str((data.get("trade") or {}).get("side"))).inc()
        elif event.type == "error":
            self.errors.inc()
        elif event.type == "llm":
            for call in data.get("calls", []):
                self._llm_call(call)

    def _llm_call(self, call: dict[str, Any]) -> None:
        endpoint, purpose = str(call.get("endpoint")), str(call.get("purpose"))
        outcome = "cached" if call.get("cached") else "error" if call.get("error") else "ok"
        self.llm_calls.labels(endpoint, purpose, outcome).inc()
        latency = call.get("latency_seconds")
        if outcome != "cached" and isinstance(latency, int | float):
            self.llm_latency.labels(endpoint, purpose).observe(latency)

    def render(self) -> bytes:
        self.agents.clear()
        for status, count in self.queries.agent_counts().items():
            self.agents.labels(status).inc(count)
        self.kill_switch.set(1 if self.queries.kill_state().on else 0)
        return generate_latest(self.registry)


def _source(source: Any) -> str:
    """``brain``, ``manual`` or ``risk`` (``risk:<kind>`` folded, to bound the label's values)."""
    return str(source).split(":", 1)[0]


def attach(app: FastAPI, queries: Queries) -> None:
    """Count the kernel's events for ``app``'s ``/metrics`` (call once the kernel exists)."""
    metrics = KernelMetrics(queries)
    queries.subscribe(metrics.on_event)
    app.state.metrics = metrics


async def metrics_endpoint(request: Request) -> Response:
    metrics: KernelMetrics = request.app.state.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI) -> None:
    """Serve ``/metrics`` (outside the OpenAPI schema: it is not JSON)."""
    app.add_api_route("/metrics", metrics_endpoint, methods=["GET"], include_in_schema=False)
