"""The command-and-query layer (phantomex.service): commands take the kernel's lock themselves,
and the read models are what the REST API and the WebSocket snapshot send, byte for byte in
the wire format the API had before the layer existed (money as exact decimal strings, times
as ISO-8601 UTC)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from notify_helpers import dataset, make_kernel, next_minute, tick_at

from phantomex.api.app import create_app
from phantomex.config import Settings
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Action, Decision, DecisionStatus, Mode, OrderType
from phantomex.domain.money import ZERO
from phantomex.kernel.runtime import Kernel, KernelError, NotFound
from phantomex.market.replay import ReplayFeed
from phantomex.serialize import jsonable
from phantomex.service import Service

D = Decimal


def spec(name: str, **extra: Any) -> AgentSpec:
    return AgentSpec(name=name, brain="rsi", symbols=["BTC", "SOL"], allowance=D(1000), **extra)


async def yield_a_while() -> None:
    """Let every other ready task run (a task blocked on a lock stays blocked)."""
    for _ in range(20):
        await asyncio.sleep(0)


# -- commands take the lock ------------------------------------------------------------------
@pytest.mark.asyncio
async def test_a_command_waits_for_the_tick_holding_the_lock_and_both_reconcile(
    tmp_path: Path,
) -> None:
    kernel = make_kernel(tmp_path / "k.db")
    service = Service.of(kernel)
    try:
        agent = await service.commands.create_agent(spec("Ann"))
        t0 = next_minute(kernel)
        await kernel.step(tick_at(t0, {"BTC": "30000", "SOL": "150"}))
        await service.commands.place_order(agent.id, Decision(Action.BUY, "BTC", notional=D(500)))

        async with kernel.exclusive():  # a tick in progress holds the lock
            deposit = asyncio.create_task(service.commands.deposit(agent.id, D(250)))
            kill = asyncio.create_task(service.commands.kill(agent.id))
            await yield_a_while()
            assert not deposit.done() and not kill.done()
            assert kernel.ledger.wallet(agent.id).deposits == ZERO  # nothing ran meanwhile
            with kernel.unit():
                await kernel.step(tick_at(next_minute(kernel), {"BTC": "31000", "SOL": "150"}))
        view = await deposit
        stopped = await kill

        # the tick's marks and the deposit both show, and the wallet matches the history
        assert D(view.wallet.deposits) == 250
        (position,) = view.wallet.positions
        assert position.mark == D(31000)
        assert view.wallet.equity == view.wallet.cash + position.quantity * D(31000)
        assert stopped.agents == [agent.id] and not stopped.on
        assert service.queries.agent(agent.id).status.value == "stopped"
        audit = await service.queries.audit()
        assert audit.ok and audit.agents == 1
    finally:
        kernel.records().close()


@pytest.mark.asyncio
async def test_commands_refuse_with_the_kernels_errors(tmp_path: Path) -> None:
    kernel = make_kernel(tmp_path / "k.db")
    c, q = Service.of(kernel).commands, Service.of(kernel).queries
    try:
        agent = await c.create_agent(spec("Bo"))
        with pytest.raises(KernelError, match="exists"):
            await c.create_agent(spec("bo"))
        with pytest.raises(NotFound):
            await c.pause("no-such-agent")
        with pytest.raises(KernelError, match="needs limit_price"):
            await c.place_order(
                agent.id, Decision(Action.BUY, "BTC", quantity=D(1), order_type=OrderType.LIMIT)
            )
        with pytest.raises(KernelError, match="no single agent"):
            q.resolve_agent("nobody")
        assert q.resolve_agent("BO").id == q.resolve_agent(agent.id[:6]).id == agent.id
        await c.delete_agent(agent.id)
        assert q.agents() == [] and q.agent_name(agent.id) is None
    finally:
        kernel.records().close()


# -- read models are the API's bodies, in the wire format of before ---------------------------
def old_agent_view(kernel: Kernel, agent_id: str) -> dict[str, Any]:
    """``Kernel.agent_view`` as it was before the service layer (the wire format to keep)."""
    agent = kernel.get(agent_id)
    wallet = kernel.ledger.wallet(agent.id)
    equity = wallet.equity(kernel.marks)
    pnl = equity - wallet.funding
    positions = []
    for sym, pos in sorted(wallet.positions.items()):
        mark = kernel.marks.get(sym)
        positions.append(
            {
                "symbol": sym,
                "quantity": pos.quantity,
                "avg_cost": pos.avg_cost,
                "cost": pos.cost,
                "mark": mark,
                "value": pos.value(mark) if mark is not None else None,
                "unrealized_pnl": pos.unrealized_pnl(mark) if mark is not None else None,
                "opened_at": pos.opened_at,
            }
        )
    return jsonable(
        {
            "id": agent.id,
            "name": agent.name,
            "brain": agent.spec.brain,
            "brain_description": kernel.brains[agent.id].describe(),
            "notes": list(agent.brain_state.get("notes", [])),
            "params": agent.spec.params,
            "goal": agent.spec.goal,
            "mode": agent.spec.mode,
            "status": agent.status,
            "status_reason": agent.status_reason,
            "symbols": agent.spec.symbols,
            "interval_seconds": agent.spec.interval_seconds,
            "risk": agent.spec.risk.model_dump(mode="json"),
            "created_at": agent.created_at,
            "last_decided_at": agent.last_decided_at,
            "wallet": {
                "allowance": wallet.allowance,
                "cash": wallet.cash,
                "deposits": wallet.deposits,
                "funding": wallet.funding,
                "equity": equity,
                "pnl": pnl,
                "pnl_pct": (pnl / wallet.funding * 100) if wallet.funding else ZERO,
                "realized_pnl": wallet.realized_pnl,
                "unrealized_pnl": wallet.unrealized_pnl(kernel.marks),
                "fees_paid": wallet.fees_paid,
                "positions": positions,
            },
        }
    )


def old_price_list(kernel: Kernel) -> list[dict[str, Any]]:
    """``Kernel.price_list`` as it was before the service layer."""
    suspects = kernel.guard.suspects()
    out = []
    for sym in sorted(kernel.prices):
        row = jsonable(kernel.prices[sym])
        row["suspect"] = sym in suspects
        row["suspect_detail"] = suspects[sym].as_json() if sym in suspects else None
        out.append(row)
    return out


@dataclass
class Rig:
    http: TestClient
    kernel: Kernel
    service: Service

    def post(self, path: str, body: Any = None) -> Any:
        resp = self.http.post(path, json=body)
        assert resp.status_code in (200, 201), resp.text
        return resp.json()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """The app in process over a replay that ends after ten bars: a state that stands still."""
    data_dir = tmp_path_factory.mktemp("service")
    bars = {s: series[:40] for s, series in dataset().items()}
    feed = ReplayFeed(bars, speed=0, warmup_bars=30)
    settings = Settings(data_dir=data_dir, demo=False, approval_ttl_seconds=600)
    with TestClient(create_app(settings, feed=feed)) as http:
        kernel: Kernel = http.app.state.kernel  # type: ignore[attr-defined]
        for _ in range(2000):  # the kernel runs on the client's event loop thread
            if http.get("/health").json()["ticks"] == len(bars["BTC"]):
                break
        assert http.get("/health").json()["ticks"] == len(bars["BTC"])  # the feed has ended
        yield Rig(http, kernel, http.app.state.service)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def traded(rig: Rig) -> dict[str, str]:
    """Agents with trades, a resting order, an approval, a rejection, a deposit and a kill."""
    ann = rig.post("/api/agents", spec("Ann").model_dump(mode="json"))["id"]
    bob = rig.post("/api/agents", spec("Bob", mode=Mode.ADVISORY).model_dump(mode="json"))["id"]
    rig.post(
        f"/api/agents/{ann}/orders",
        {"action": "buy", "symbol": "SOL", "quantity": "0.5", "type": "limit", "limit_price": "1"},
    )
    rig.post(f"/api/agents/{ann}/orders", {"action": "buy", "symbol": "btc", "notional": "300"})
    asked = rig.post(
        f"/api/agents/{bob}/orders", {"action": "buy", "symbol": "SOL", "notional": "100"}
    )
    assert asked["status"] == DecisionStatus.PENDING.value
    rig.post(f"/api/agents/{bob}/deposit", {"amount": "0.00000001"})
    rig.post(f"/api/decisions/{asked['id']}/approve")
    cy = rig.post("/api/agents", spec("Cy", mode=Mode.ADVISORY).model_dump(mode="json"))["id"]
    refused = rig.post(
        f"/api/agents/{cy}/orders", {"action": "buy", "symbol": "BTC", "notional": "100"}
    )
    rig.post(f"/api/decisions/{refused['id']}/reject")
    rig.post("/api/kill-switch", {"agent_id": bob})
    return {"ann": ann, "bob": bob, "cy": cy}


def test_agent_and_price_views_keep_their_wire_format(rig: Rig, traded: dict[str, str]) -> None:
    k, q = rig.kernel, rig.service.queries
    for agent_id in traded.values():
        old = old_agent_view(k, agent_id)
        assert rig.http.get(f"/api/agents/{agent_id}").json() == old
        assert q.agent(agent_id).model_dump(mode="json") == old
    assert rig.http.get("/api/agents").json() == [old_agent_view(k, a) for a in traded.values()]
    assert old_agent_view(k, traded["ann"])["wallet"]["positions"][0]["quantity"] != "0"
    assert rig.http.get("/api/market/prices").json() == old_price_list(k)


def test_history_reads_keep_their_wire_format(rig: Rig, traded: dict[str, str]) -> None:
    store, http = rig.kernel.records(), rig.http
    decisions = http.get("/api/decisions").json()
    assert decisions == jsonable(store.decisions()) and len(decisions) == 4
    ann = http.get(f"/api/agents/{traded['ann']}/decisions").json()
    assert ann == jsonable(store.decisions(traded["ann"]))
    rows, total = store.trades()
    assert http.get("/api/trades").json() == {
        "trades": jsonable(rows),
        "total": total,
        "limit": 100,
        "offset": 0,
    }
    assert total == 2
    (order,) = http.get("/api/orders").json()
    assert order == jsonable(rig.kernel.open_orders()[0]) and order["limit_price"] == "1"
    events = http.get("/api/risk/events").json()
    assert events == jsonable(store.risk_events()) and events[0]["kind"] == "kill"
    assert http.get("/api/kill-switch").json() == {"on": False}
    history = http.get("/api/market/history", params={"symbol": "btc", "limit": 3}).json()
    now = rig.kernel.now
    assert now is not None
    assert history == {
        "symbol": "BTC",
        "bars": jsonable(rig.kernel.history.view(now).bars("BTC", 3)),
    }
    audit = http.get("/api/audit").json()
    assert audit == {"ok": True, "agents": 3, "mismatches": []}
    health = http.get("/health").json()
    assert health == {
        "status": "ok",
        "clock": jsonable(now),
        "ticks": rig.kernel.ticks,
        "agents": 3,
        "kill_switch": False,
        "problems": [],
    }


def test_the_websocket_snapshot_is_the_queries_snapshot(rig: Rig, traded: dict[str, str]) -> None:
    k = rig.kernel
    with rig.http.websocket_connect("/ws") as ws:
        first = ws.receive_json()
    assert first["type"] == "snapshot" and first["ts"] == jsonable(k.now)
    assert first["data"] == {
        "agents": [old_agent_view(k, a) for a in traded.values()],
        "prices": old_price_list(k),
        "pending": jsonable(k.pending()),
        "kill_switch": False,
    }


def test_commands_answer_with_the_read_models_the_api_sends(
    rig: Rig, traded: dict[str, str]
) -> None:
    bob = traded["bob"]
    paused = rig.post(f"/api/agents/{bob}/pause")
    assert paused == old_agent_view(rig.kernel, bob) and paused["status"] == "paused"
    resumed = rig.post(f"/api/agents/{bob}/resume")
    assert resumed == rig.service.queries.agent(bob).model_dump(mode="json")
    assert resumed["status"] == "running"
    mode = rig.http.patch(f"/api/agents/{bob}/mode", json={"mode": "autonomous"}).json()
    assert mode == old_agent_view(rig.kernel, bob) and mode["mode"] == "autonomous"
    (order,) = rig.http.get("/api/orders").json()
    cancelled = rig.http.delete(f"/api/orders/{order['id']}").json()
    assert cancelled == order
    assert rig.http.get("/api/orders").json() == []


def test_every_route_here_declares_its_response_body(rig: Rig) -> None:
    spec_ = rig.http.get("/openapi.json").json()
    paths = [
        ("/health", "get"),
        ("/api/agents", "get"),
        ("/api/agents", "post"),
        ("/api/agents/{agent_id}", "delete"),
        ("/api/agents/{agent_id}/trade", "post"),
        ("/api/agents/{agent_id}/orders", "post"),
        ("/api/orders", "get"),
        ("/api/decisions", "get"),
        ("/api/market/prices", "get"),
        ("/api/market/history", "get"),
        ("/api/trades", "get"),
        ("/api/strategies", "get"),
        ("/api/risk/defaults", "get"),
        ("/api/risk/events", "get"),
        ("/api/kill-switch", "post"),
        ("/api/audit", "get"),
    ]
    for path, method in paths:
        ok = next(v for s, v in spec_["paths"][path][method]["responses"].items() if s[0] == "2")
        schema = ok["content"]["application/json"]["schema"]
        assert schema.get("$ref") or schema.get("items", {}).get("$ref"), (path, schema)


def test_strategies_and_risk_defaults_keep_their_wire_format(rig: Rig) -> None:
    from phantomex.brains.registry import strategy_schemas
    from phantomex.domain.risk import RiskProfile

    assert rig.http.get("/api/strategies").json() == strategy_schemas()
    assert rig.http.get("/api/risk/defaults").json() == {
        "defaults": RiskProfile().model_dump(mode="json"),
        "schema": RiskProfile.model_json_schema(),
    }


def test_a_settled_overview_waits_for_the_lock(tmp_path: Path) -> None:
    async def scenario() -> None:
        kernel = make_kernel(tmp_path / "k.db")
        q = Service.of(kernel).queries
        try:
            async with kernel.exclusive():
                overview = asyncio.create_task(q.settled_overview())
                await yield_a_while()
                assert not overview.done()
                kernel.begin_at((kernel.now or next_minute(kernel)) + timedelta(minutes=5))
            assert (await overview).clock == kernel.now
        finally:
            kernel.records().close()

    asyncio.run(scenario())
