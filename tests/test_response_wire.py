"""The response models change nothing on the wire: for representative answers of every route
with a model (outside ``api/routes.py``), the body is byte for byte what FastAPI rendered from
the handler's return value before the models (``jsonable_encoder`` + ``JSONResponse``).

The server is real (uvicorn on loopback) with the demo agents, an LLM simulator and a Binance
testnet stand-in; each handler's return value is recorded as it leaves the handler."""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fakeapi import FakeAPI, Reply, fixture
from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from phantomex.api.app import create_app
from phantomex.broker.venues import ExchangeSettings
from phantomex.config import Settings
from phantomex.devtools.llm_sim.server import SimServer

MODULES = {
    f"phantomex.api.{m}"
    for m in (
        "equity_routes",
        "exchange_routes",
        "llm_routes",
        "session_routes",
        "sources",
        "system_routes",
    )
}
WINDOW = {"start": "2023-04-10T00:00:00Z", "end": "2023-04-10T00:40:00Z"}
DEADLINE = 180.0  # seconds: generous, the machine is shared


@dataclass
class Wired:
    url: str
    returned: list[Any] = field(default_factory=list)
    checked: set[str] = field(default_factory=set)

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        """The answer to a request, after checking its body against the handler's value."""
        self.returned.clear()
        resp = httpx.request(method, self.url + path, json=body, params=params, timeout=60)
        assert resp.is_success, f"{method} {path}: {resp.status_code} {resp.text[:500]}"
        assert len(self.returned) == 1, f"{method} {path}: not a recorded route"
        before = JSONResponse(jsonable_encoder(self.returned[0])).body
        assert resp.content == before, f"{method} {path}:\n{resp.content!r}\n!=\n{before!r}"
        self.checked.add(f"{method} {resp.request.url.path}")
        return resp.json()

    def until(self, ready: Callable[[Any], bool], method: str, path: str, **params: Any) -> Any:
        deadline = time.monotonic() + DEADLINE
        while True:
            answer = self.call(method, path, **params)
            if ready(answer) or time.monotonic() > deadline:
                return answer
            time.sleep(0.3)


@contextlib.contextmanager
def recording(returned: list[Any]) -> Iterator[None]:
    """While open, the routes of :data:`MODULES` in apps created append their handler's return
    value to ``returned`` (the routers' endpoints are wrapped; FastAPI builds an app's routes
    from them when the app includes the routers)."""
    routes = [
        r
        for m in MODULES
        for r in importlib.import_module(m).router.routes
        if isinstance(r, APIRoute)
    ]
    originals = [r.endpoint for r in routes]
    for route, call in zip(routes, originals, strict=True):
        route.endpoint = _recorded(call, returned)
    try:
        yield
    finally:
        for route, call in zip(routes, originals, strict=True):
            route.endpoint = call


def _recorded(call: Callable[..., Any], returned: list[Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(call):

        @functools.wraps(call)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            value = await call(*args, **kwargs)
            returned.append(value)
            return value

        return wrapper

    @functools.wraps(call)
    def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
        value = call(*args, **kwargs)
        returned.append(value)
        return value

    return sync_wrapper


@pytest.fixture(scope="module")
def binance() -> Iterator[FakeAPI]:
    with FakeAPI() as api:
        api.route("GET", "/api/v3/exchangeInfo", Reply(body=fixture("binance/exchange_info.json")))
        api.route("GET", "/api/v3/openOrders", Reply(body=fixture("binance/open_orders.json")))
        api.route("DELETE", "/api/v3/order", Reply(body=fixture("binance/order_cancel.json")))
        api.route("GET", "/api/v3/account", Reply(body=fixture("binance/account.json")))
        yield api


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(models=["alpha:7b"]) as server:
        yield server


@pytest.fixture(scope="module")
def wired(tmp_path_factory: pytest.TempPathFactory, binance: FakeAPI) -> Iterator[Wired]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    urls = {"public": f"{binance.url}/api/v3", "private": f"{binance.url}/api/v3"}
    settings = Settings(
        data_dir=Path(tmp_path_factory.mktemp("wire")),
        port=port,
        replay_speed=600,
        exchange=ExchangeSettings(api_urls={"binance-testnet": urls}, timeout_ms=3000),
    )
    handle = Wired(f"http://127.0.0.1:{port}")
    with recording(handle.returned):
        app = create_app(settings)
        yield from _serve(app, port, handle)


def _serve(app: FastAPI, port: int, handle: Wired) -> Iterator[Wired]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + DEADLINE
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.started, "the server did not start"
    yield handle
    server.should_exit = True
    thread.join(timeout=30)


def test_system_sources_and_equity(wired: Wired) -> None:
    assert wired.call("GET", "/api/system/database")["backend"] == "sqlite"
    sources = wired.call("GET", "/api/sources")["sources"]
    assert sources and sources[0]["prices"]
    agents = httpx.get(f"{wired.url}/api/agents", timeout=30).json()
    aid = agents[0]["id"]
    bought = httpx.post(
        f"{wired.url}/api/agents/{aid}/orders",
        json={"action": "buy", "symbol": agents[0]["symbols"][0], "notional": "100"},
        timeout=30,
    )
    assert bought.is_success, bought.text
    one = wired.call("GET", f"/api/agents/{aid}/equity", points=20)
    assert one["points"] and one["deposits"][0]["initial"] is True
    every = wired.call("GET", "/api/equity", points=5)
    assert len(every["agents"]) == len(agents)
    wired.call("GET", "/api/equity", agent_id=aid, since=one["points"][0]["time"])


def test_llm_endpoints_and_a_decision_with_its_calls(wired: Wired, sim: SimServer) -> None:
    made = wired.call("POST", "/api/llm/endpoints", {"name": "sim", "kind": "openai",
                                                     "base_url": sim.openai_url})  # fmt: skip
    assert made["has_api_key"] is False
    wired.call("POST", "/api/llm/endpoints", {"name": "gone", "kind": "ollama",
                                              "base_url": "http://127.0.0.1:9",
                                              "price_per_1k_input": "0.0005"})  # fmt: skip
    assert len(wired.call("GET", "/api/llm/endpoints")) == 2
    assert wired.call("GET", "/api/llm/endpoints/sim/models")["models"]
    wired.call("GET", "/api/llm/endpoints/sim/loaded")
    assert wired.call("POST", "/api/llm/endpoints/sim/test")["ok"] is True
    assert wired.call("POST", "/api/llm/endpoints/gone/test")["ok"] is False
    assert wired.call("DELETE", "/api/llm/endpoints/gone") == {"deleted": "gone"}
    spec = {
        "name": "llm one",
        "brain": "llm",
        "symbols": ["BTC"],
        "interval_seconds": 60,
        "params": {"endpoint": "sim", "model": "alpha:7b"},
    }
    agent = httpx.post(f"{wired.url}/api/agents", json=spec, timeout=30).json()
    decisions: list[Any] = []
    deadline = time.monotonic() + DEADLINE
    while not decisions and time.monotonic() < deadline:
        decisions = httpx.get(f"{wired.url}/api/agents/{agent['id']}/decisions", timeout=30).json()
        time.sleep(0.3)
    assert decisions, "the LLM agent made no decision"
    detail = wired.call("GET", f"/api/agents/{agent['id']}/decisions/{decisions[0]['id']}")
    assert detail["llm_calls"] and detail["llm_calls"][0]["model"] == "alpha:7b"


def test_exchange_venues_keys_and_reconciliation(wired: Wired) -> None:
    agent = httpx.get(f"{wired.url}/api/agents", timeout=30).json()[0]
    wired.call("GET", "/api/exchange/venues")
    keys = {"api_key": "testnet-key-5f1c9a7e", "secret": "testnet-secret-0b4d2e8c"}
    assert wired.call("PUT", "/api/exchange/keys/binance-testnet", keys)["available"] is True
    moved = wired.call("PUT", f"/api/agents/{agent['id']}/venue", {"venue": "binance-testnet"})
    assert moved["venue"] == "binance-testnet"
    venues = wired.call("GET", "/api/exchange/venues")
    assert any(v["agents"] == [agent["id"]] for v in venues)
    reports = wired.call("GET", "/api/exchange/reconcile")
    assert reports and reports[0]["assets"] and reports[0]["findings"]
    wired.call("POST", "/api/exchange/cancel-open-orders")
    wired.call("PUT", f"/api/agents/{agent['id']}/venue", {"venue": "paper"})
    assert wired.call("DELETE", "/api/exchange/keys/binance-testnet")["has_keys"] is False


def test_sessions_summaries_and_the_leaderboard(wired: Wired) -> None:
    agents = [{"name": "ruby", "brain": "rsi"}, {"name": "max", "brain": "momentum"}]
    body = {"name": "wire", "symbols": ["BTC", "ETH"], "replay": WINDOW, "agents": agents}
    started = wired.call("POST", "/api/sessions", body)
    sid = started["id"]
    done = wired.until(lambda s: s["status"] != "running", "GET", f"/api/sessions/{sid}")
    assert done["status"] == "finished", done["error"]
    short = wired.call("GET", f"/api/sessions/{sid}", curves="false")
    assert "times" not in short and "equity" not in short["agents"][0]
    assert wired.call("GET", "/api/sessions")[0]["id"] == sid
    summary = wired.until(lambda s: bool(s["summaries"]), "GET", f"/api/sessions/{sid}/summary")
    assert summary["latest"]["template"]
    assert wired.call("POST", f"/api/sessions/{sid}/summary")["latest"]["kind"] == "manual"
    board = wired.call("GET", "/api/leaderboard", resamples=200)
    assert board["groups"][0]["rows"] and sid in {s["id"] for s in board["sessions"]}
    wired.call("GET", "/api/leaderboard", session_id=sid, by="sharpe", resamples=200)


def test_a_running_session_and_its_draft_summary(wired: Wired) -> None:
    body = {"name": "live one", "kind": "live", "duration": "1h",
            "symbols": ["BTC"], "agents": [{"name": "ruby", "brain": "rsi"}]}  # fmt: skip
    started = wired.call("POST", "/api/sessions", body)
    draft = wired.call("GET", f"/api/sessions/{started['id']}/summary")
    assert draft["latest"]["kind"] == "draft" and draft["summaries"] == []
    running = wired.call("GET", f"/api/sessions/{started['id']}", curves="false")
    assert running["status"] == "running" and "progress" in running
    assert wired.call("POST", f"/api/sessions/{started['id']}/stop")["status"] == "stopped"
