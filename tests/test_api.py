"""The REST API and the WebSocket on a real uvicorn server over loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import uvicorn
import websockets

from phantomex.api.app import create_app
from phantomex.config import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path, speed: float, db_url: str | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        settings = Settings(
            data_dir=data_dir,
            port=self.port,
            replay_speed=speed,
            approval_ttl_seconds=600,
            db_url=db_url,
        )
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """The API on a real uvicorn server, once over SQLite and once over PostgreSQL."""
    db_url = None
    if request.param == "postgresql":
        db_url = request.getfixturevalue("postgres").new_database()
    with Server(tmp_path_factory.mktemp("api"), speed=600, db_url=db_url) as srv:
        yield srv


@pytest.fixture()
def client(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=30) as c:
        yield c


def agent_named(client: httpx.Client, name: str) -> dict:
    return next(a for a in client.get("/api/agents").json() if a["name"] == name)


def test_health_and_demo_agents(client: httpx.Client) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["agents"] == 3
    agents = client.get("/api/agents").json()
    names = {a["name"] for a in agents}
    assert names == {"Ruby RSI", "Max Momentum", "Sam Spike-Fade"}
    modes = {a["name"]: a["mode"] for a in agents}
    assert modes["Sam Spike-Fade"] == "advisory"
    for a in agents:
        w = a["wallet"]
        assert Decimal(w["allowance"]) == 10_000
        assert Decimal(w["equity"]) == Decimal(w["cash"]) + sum(
            Decimal(p["value"]) for p in w["positions"]
        )


def test_trades_appear_and_audit_passes(client: httpx.Client) -> None:
    deadline = time.monotonic() + 60
    total = 0
    while time.monotonic() < deadline and total == 0:
        total = client.get("/api/trades").json()["total"]
        time.sleep(0.5)
    assert total > 0
    page = client.get("/api/trades", params={"limit": 2}).json()
    assert len(page["trades"]) <= 2 and page["total"] >= total
    t = page["trades"][0]
    assert {"symbol", "side", "quantity", "price", "fee", "reasoning", "idempotency_key"} <= set(t)
    by_sym = client.get("/api/trades", params={"symbol": t["symbol"]}).json()
    assert all(row["symbol"] == t["symbol"] for row in by_sym["trades"])
    audit = client.get("/api/audit").json()
    assert audit["ok"] is True, audit


def test_prices_history_and_strategies(client: httpx.Client) -> None:
    prices = client.get("/api/market/prices").json()
    assert {p["symbol"] for p in prices} == {"BTC", "ETH", "SOL", "DOGE", "XRP"}
    assert all(Decimal(p["price"]) > 0 for p in prices)
    hist = client.get("/api/market/history", params={"symbol": "btc", "limit": 5}).json()
    assert hist["symbol"] == "BTC" and len(hist["bars"]) == 5
    times = [b["time"] for b in hist["bars"]]
    assert times == sorted(times)
    strategies = {s["name"] for s in client.get("/api/strategies").json()}
    assert {"rsi", "momentum", "spike_fade", "train_of_trade"} <= strategies


def test_agent_lifecycle(client: httpx.Client) -> None:
    # it decides on its first tick, then only when asked (a week of market time between): an
    # approval of its own would hold the person's order below behind it. Advisory from the start:
    # created autonomous, its first tick could trade before the mode changed (seen under load)
    body = {
        "name": "Api Bot",
        "brain": "rsi",
        "mode": "advisory",
        "symbols": ["btc"],
        "allowance": "2500.50",
        "interval_seconds": 7 * 86400,
    }
    created = client.post("/api/agents", json=body)
    assert created.status_code == 201, created.text
    agent = created.json()
    aid = agent["id"]
    assert agent["symbols"] == ["BTC"] and Decimal(agent["wallet"]["cash"]) == Decimal("2500.50")
    dep = client.post(f"/api/agents/{aid}/deposit", json={"amount": "0.01"}).json()
    assert Decimal(dep["wallet"]["deposits"]) == Decimal("0.01")
    assert client.patch(f"/api/agents/{aid}/mode", json={"mode": "advisory"}).json()["mode"] == (
        "advisory"
    )
    assert client.post(f"/api/agents/{aid}/pause").json()["status"] == "paused"
    assert client.post(f"/api/agents/{aid}/resume").json()["status"] == "running"
    # its first decision comes with its first tick: wait for it, and answer it if it asks
    deadline = time.monotonic() + 120
    while not client.get(f"/api/agents/{aid}/decisions").json():
        assert time.monotonic() < deadline, "the agent made no first decision"
        time.sleep(0.1)
    for rec in client.get("/api/decisions", params={"status": "pending", "agent_id": aid}).json():
        client.post(f"/api/decisions/{rec['id']}/reject")
    decision = client.post(f"/api/agents/{aid}/trade")
    assert decision.status_code == 200 and decision.json()["status"] in (
        "held",
        "pending",
        "rejected",
    )
    if decision.json()["status"] == "pending":  # answered, so the order below is not held
        client.post(f"/api/decisions/{decision.json()['id']}/reject")
    client.post(f"/api/agents/{aid}/pause")
    paused = client.post(f"/api/agents/{aid}/orders", json={"action": "buy", "symbol": "BTC"})
    assert paused.status_code == 409 and paused.json()["error"]["field"] == "status"
    assert client.post(f"/api/agents/{aid}/trade").status_code == 409
    client.post(f"/api/agents/{aid}/resume")
    order = client.post(f"/api/agents/{aid}/orders", json={"action": "buy", "symbol": "BTC"})
    assert order.status_code == 200 and order.json()["status"] == "pending"
    did = order.json()["id"]
    assert did in {d["id"] for d in client.get("/api/decisions?status=pending").json()}
    approved = client.post(f"/api/decisions/{did}/approve").json()
    assert approved["status"] == "executed", approved
    again = client.post(f"/api/decisions/{did}/approve")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    trades = client.get("/api/trades", params={"agent_id": aid}).json()
    assert trades["total"] == 1 and trades["trades"][0]["decision_id"] == did
    assert client.get(f"/api/agents/{aid}/decisions").json()[0]["agent_id"] == aid
    assert client.delete(f"/api/agents/{aid}").json() == {"deleted": aid}
    assert client.get(f"/api/agents/{aid}").status_code == 404
    assert client.get("/api/audit").json()["ok"] is True


def snapshot(client: httpx.Client) -> tuple[list, int]:
    agents = client.get("/api/agents").json()
    wallets = sorted((a["id"], a["wallet"]["cash"], a["wallet"]["deposits"]) for a in agents)
    return wallets, len(agents)


BAD_REQUESTS = [
    # (method, path-template, json body, expected status, field named)
    ("post", "/api/agents/{id}/deposit", {"amount": -5}, 422, "amount"),
    ("post", "/api/agents/{id}/deposit", {"amount": "NaN"}, 422, "amount"),
    ("post", "/api/agents/{id}/deposit", {"amount": "Infinity"}, 422, "amount"),
    ("post", "/api/agents/{id}/deposit", {"amount": "ten"}, 422, "amount"),
    ("post", "/api/agents/{id}/deposit", {"amount": 0}, 422, "amount"),
    ("post", "/api/agents/{id}/deposit", {"amount": "1e-40"}, 422, "amount"),
    ("post", "/api/agents/{id}/deposit", {}, 422, "amount"),
    ("post", "/api/agents/nope/deposit", {"amount": 5}, 404, None),
    ("post", "/api/agents/nope/trade", None, 404, None),
    ("get", "/api/agents/nope", None, 404, None),
    ("delete", "/api/agents/nope", None, 404, None),
    ("post", "/api/agents/nope/pause", None, 404, None),
    ("patch", "/api/agents/{id}/mode", {"mode": "yolo"}, 422, "mode"),
    ("post", "/api/agents", {"name": "x", "brain": "astrology", "symbols": ["BTC"]}, 422, "brain"),
    ("post", "/api/agents", {"name": "x", "brain": "rsi", "symbols": ["NOPE"]}, 422, "symbols"),
    (
        "post",
        "/api/agents",
        {"name": "x", "brain": "rsi", "symbols": ["BTC"], "params": {"period": -1}},
        422,
        "params.period",
    ),
    (
        "post",
        "/api/agents",
        {"name": "x", "brain": "rsi", "symbols": ["BTC"], "allowance": "NaN"},
        422,
        "allowance",
    ),
    ("post", "/api/agents", {"name": "Ruby RSI", "brain": "rsi", "symbols": ["BTC"]}, 409, "name"),
    ("post", "/api/agents/{id}/orders", {"action": "buy", "symbol": "NOPE"}, 422, "symbol"),
    ("post", "/api/agents/{id}/orders", {"action": "short", "symbol": "BTC"}, 422, "action"),
    (
        "post",
        "/api/agents/{id}/orders",
        {"action": "buy", "symbol": "BTC", "quantity": -1},
        422,
        "quantity",
    ),
    ("post", "/api/decisions/nope/approve", None, 404, None),
    ("post", "/api/decisions/nope/reject", None, 404, None),
    ("get", "/api/market/history?symbol=NOPE", None, 404, "symbol"),
    ("get", "/api/trades?limit=0", None, 422, "limit"),
    ("get", "/api/trades?limit=abc", None, 422, "limit"),
    ("get", "/api/decisions?status=bogus", None, 422, "status"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), BAD_REQUESTS)
def test_bad_input_gets_a_clear_4xx_and_writes_nothing(
    client: httpx.Client, method: str, path: str, body: object, status: int, field: str | None
) -> None:
    aid = agent_named(client, "Ruby RSI")["id"]
    client.post("/api/kill-switch")  # freeze trading so "nothing written" is observable
    try:
        before = snapshot(client)
        kwargs = {} if body is None else {"json": body}
        resp = client.request(method.upper(), path.format(id=aid), **kwargs)
        assert resp.status_code == status, resp.text
        err = resp.json()["error"]
        assert err["message"] and err["code"]
        if field:
            assert err["field"] == field, err
        assert snapshot(client) == before
    finally:
        client.post("/api/kill-switch/release")
        for a in client.get("/api/agents").json():
            if a["status"] == "stopped":
                client.post(f"/api/agents/{a['id']}/resume")


def test_raw_nan_json_literal_is_refused(client: httpx.Client) -> None:
    aid = agent_named(client, "Ruby RSI")["id"]
    before = agent_named(client, "Ruby RSI")["wallet"]["deposits"]
    resp = client.post(
        f"/api/agents/{aid}/deposit",
        content=b'{"amount": NaN}',
        headers={"content-type": "application/json"},
    )
    assert resp.status_code == 422 and resp.json()["error"]["field"] == "amount"
    malformed = client.post(
        f"/api/agents/{aid}/deposit",
        content=b'{"amount": ',
        headers={"content-type": "application/json"},
    )
    assert malformed.status_code == 422
    assert agent_named(client, "Ruby RSI")["wallet"]["deposits"] == before


def test_kill_switch_and_release(client: httpx.Client) -> None:
    resp = client.post("/api/kill-switch", json={"flatten": False}).json()
    assert resp["on"] is True and len(resp["agents"]) >= 3
    assert client.get("/health").json()["kill_switch"] is True
    assert all(a["status"] == "stopped" for a in client.get("/api/agents").json())
    trade = client.post(f"/api/agents/{agent_named(client, 'Ruby RSI')['id']}/trade")
    assert trade.status_code == 409
    assert client.post("/api/kill-switch/release").json()["on"] is False
    for a in client.get("/api/agents").json():
        resp = client.post(f"/api/agents/{a['id']}/resume")
        if resp.status_code == 409:  # hit its daily loss limit in the replay: resumes tomorrow
            assert "daily loss" in resp.json()["error"]["message"]
            continue
        assert resp.json()["status"] == "running"


def test_websocket_snapshot_then_typed_messages(server: Server) -> None:
    async def listen() -> list[dict]:
        url = server.url.replace("http", "ws") + "/ws"
        async with websockets.connect(url) as ws:
            first = json.loads(await asyncio.wait_for(ws.recv(), 10))
            messages = [first]
            while len(messages) < 6:
                messages.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
            return messages

    messages = asyncio.run(listen())
    snap = messages[0]
    assert snap["type"] == "snapshot"
    assert {a["name"] for a in snap["data"]["agents"]} >= {"Ruby RSI", "Max Momentum"}
    assert snap["data"]["prices"]
    kinds = {m["type"] for m in messages[1:]}
    assert "price" in kinds
    assert kinds <= {"price", "decision", "approval", "trade", "agent", "risk", "error"}
    assert all(m["ts"].endswith("Z") for m in messages[1:])
    price = next(m for m in messages[1:] if m["type"] == "price")
    assert {p["symbol"] for p in price["data"]["prices"]} == {"BTC", "ETH", "SOL", "DOGE", "XRP"}


def test_restart_keeps_wallets_positions_and_history(tmp_path: Path) -> None:
    with Server(tmp_path, speed=3000) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        deadline = time.monotonic() + 60
        while c.get("/api/trades").json()["total"] < 3 and time.monotonic() < deadline:
            time.sleep(0.3)
        c.post("/api/kill-switch")  # freeze so the state we compare is final
        agents = c.get("/api/agents").json()
        trades = c.get("/api/trades", params={"limit": 1000}).json()
    assert trades["total"] >= 3
    with Server(tmp_path, speed=3000) as srv, httpx.Client(base_url=srv.url, timeout=30) as c:
        assert c.get("/health").json()["kill_switch"] is True
        again = c.get("/api/agents").json()
        assert [a["id"] for a in again] == [a["id"] for a in agents]
        for a, b in zip(agents, again, strict=True):
            for key in ("cash", "allowance", "deposits", "realized_pnl", "fees_paid"):
                assert a["wallet"][key] == b["wallet"][key]
            assert [(p["symbol"], p["quantity"], p["cost"]) for p in a["wallet"]["positions"]] == [
                (p["symbol"], p["quantity"], p["cost"]) for p in b["wallet"]["positions"]
            ]
        assert c.get("/api/trades", params={"limit": 1000}).json() == trades
        assert c.get("/api/audit").json()["ok"] is True


def test_limit_order_rests_then_can_be_cancelled(client: httpx.Client) -> None:
    body = {"name": "Limit Bot", "brain": "rsi", "symbols": ["ETH"]}
    aid = client.post("/api/agents", json=body).json()["id"]
    price = Decimal(client.get("/api/market/history?symbol=ETH&limit=1").json()["bars"][0]["close"])
    far_below = str((price / 2).quantize(Decimal("0.01")))
    order = {
        "action": "buy",
        "symbol": "ETH",
        "type": "limit",
        "limit_price": far_below,
        "quantity": "0.01",
    }
    rec = client.post(f"/api/agents/{aid}/orders", json=order).json()
    assert rec["status"] == "approved" and rec["meta"]["order"]["type"] == "limit"
    open_orders = client.get("/api/orders", params={"agent_id": aid}).json()
    assert [o["id"] for o in open_orders] == [rec["id"]]
    assert open_orders[0]["limit_price"] == far_below
    # the order rests unfilled (the agent's own RSI trades may come and go meanwhile)
    trades = client.get("/api/trades", params={"agent_id": aid, "limit": 1000}).json()["trades"]
    assert rec["id"] not in {t["order_id"] for t in trades}
    cancelled = client.delete(f"/api/orders/{rec['id']}")
    assert cancelled.status_code == 200
    assert client.get("/api/orders", params={"agent_id": aid}).json() == []
    assert client.delete(f"/api/orders/{rec['id']}").status_code == 404
    decision = next(
        d for d in client.get(f"/api/agents/{aid}/decisions").json() if d["id"] == rec["id"]
    )
    assert decision["status"] == "rejected" and "cancelled" in decision["reason"]
    for bad, field in (
        ({"type": "limit"}, "limit_price"),
        ({"type": "market", "stop_price": "5"}, "stop_price"),
        ({"type": "stop", "stop_price": "-5"}, "stop_price"),
    ):
        resp = client.post(
            f"/api/agents/{aid}/orders", json={"action": "buy", "symbol": "ETH", **bad}
        )
        assert resp.status_code == 422 and resp.json()["error"]["field"] == field
    client.delete(f"/api/agents/{aid}")
