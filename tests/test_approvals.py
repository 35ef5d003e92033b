"""Approving with a person's delays: at demo speed (one bar a second) an advisory spike-fade
agent decides on every bar, and the decision a person is asked about stays approvable until its
expiry or the person's answer; the agent's newer decisions wait behind it, visibly.

A real server (uvicorn over loopback) replays falling DOGE prices, one bar at a time when the
test says so, and its approval deadlines follow an injected wall clock that moves one second a
bar: nothing here sleeps hoping time passed. The CLI runs as a subprocess against it."""

from __future__ import annotations

import asyncio
import dataclasses
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from conftest import free_port, run_cli, server_env

from phantomex.api.app import create_app
from phantomex.approvals import deadline_text, pending_summary, waiting_behind, waiting_text
from phantomex.config import Settings
from phantomex.domain.clock import SimulatedClock
from phantomex.domain.models import Bar, Instrument, Tick
from phantomex.kernel.runtime import Kernel
from phantomex.market.replay import ReplayFeed

SYMBOL = "DOGE"
BARS = 300
WARMUP = 10
TTL = timedelta(minutes=5)
PERSON_DELAY = 8  # bars (= seconds at demo speed) between the question and the answer
START = datetime(2023, 4, 1, tzinfo=UTC)


def falling_bars() -> list[Bar]:
    """DOGE falling 0.2% a minute: a spike-fade agent with a 5-bar window at 0.5% sees a sharp
    drop at every bar and, while flat, asks to buy it every time."""
    bars, price = [], Decimal("1")
    for i in range(BARS):
        close = (price * Decimal("0.998")).quantize(Decimal("0.000001"))
        t = START + timedelta(minutes=i)
        bars.append(Bar(SYMBOL, t, price, price, close, close, Decimal(1000)))
        price = close
    return bars


class SteppedReplay:
    """A replay that moves only when the test releases bars: :meth:`advance` returns once the
    kernel has processed them (it asks for the next tick only after a tick's unit committed)."""

    def __init__(self) -> None:
        self.inner = ReplayFeed({SYMBOL: falling_bars()}, speed=0, warmup_bars=WARMUP)
        self._cond = threading.Condition()
        self._released = self._taken = 0
        self._idle = False
        self._closed = False

    @property
    def instruments(self) -> dict[str, Instrument]:
        return self.inner.instruments

    def warmup(self) -> list[Tick]:
        return self.inner.warmup()

    async def next_tick(self) -> Tick | None:
        while True:
            with self._cond:
                if self._closed:
                    return None
                if self._taken < self._released:
                    self._taken += 1
                    break
                self._idle = True
                self._cond.notify_all()
            await asyncio.sleep(0.005)
        return await self.inner.next_tick()

    def close(self) -> None:
        with self._cond:
            self._closed = True
        self.inner.close()

    def advance(self, bars: int = 1, timeout: float = 60) -> None:
        with self._cond:
            self._released += bars
            self._idle = False
            done = self._cond.wait_for(
                lambda: self._idle and self._taken == self._released, timeout
            )
        assert done, f"the kernel did not process {bars} bar(s) within {timeout} s"


@dataclasses.dataclass
class Rig:
    url: str
    env: dict[str, str]
    feed: SteppedReplay
    wall: SimulatedClock  # a person's clock for approval deadlines, moved by the test
    kernel: Kernel
    http: httpx.Client

    def seconds(self, n: int) -> None:
        """``n`` seconds of a person's time at demo speed: one bar, one second each."""
        for _ in range(n):
            self.wall.advance(timedelta(seconds=1))
            self.feed.advance(1)

    def cli(self, *args: str) -> tuple[int, str, str]:
        return run_cli(*args, env=self.env)

    def get(self, path: str, **params: Any) -> Any:
        resp = self.http.get(path, params=params)
        resp.raise_for_status()
        return resp.json()

    def post(self, path: str, body: Any = None) -> Any:
        resp = self.http.post(path, json=body)
        resp.raise_for_status()
        return resp.json()

    def decisions(self, agent_id: str) -> list[dict[str, Any]]:
        return list(self.get(f"/api/agents/{agent_id}/decisions", limit=1000))

    def pending(self, agent_id: str) -> list[dict[str, Any]]:
        return [
            d for d in self.get("/api/decisions", status="pending") if d["agent_id"] == agent_id
        ]

    def price(self) -> Decimal:
        return Decimal(next(p["price"] for p in self.get("/api/market/prices")))


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    data_dir = tmp_path_factory.mktemp("approvals")
    port = free_port()
    settings = Settings(
        data_dir=data_dir, port=port, demo=False, approval_ttl_seconds=int(TTL.total_seconds())
    )
    feed = SteppedReplay()
    wall = SimulatedClock(datetime.now(UTC).replace(microsecond=0))
    app = create_app(settings, feed=feed, clock=wall)  # type: ignore[arg-type]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            deadline = time.monotonic() + 90
            while not getattr(app.state, "kernel", None) or not server.started:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.05)
            kernel: Kernel = app.state.kernel
            yield Rig(url, server_env(port, Path(data_dir)), feed, wall, kernel, http)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def spike_fader(rig: Rig, name: str) -> str:
    """A new advisory spike-fade agent deciding every bar (the demo's Sam, made jumpier)."""
    body = {
        "name": name,
        "brain": "spike_fade",
        "params": {"windows": [5], "spike_threshold_pct": 0.5, "min_bars": 5},
        "mode": "advisory",
        "symbols": [SYMBOL],
        "interval_seconds": 60,
        "allowance": "1000",
    }
    return str(rig.post("/api/agents", body)["id"])


def asked(rig: Rig, agent_id: str) -> dict[str, Any]:
    """The next bar: the agent asks a person to approve a buy; returns that decision."""
    rig.seconds(1)
    pending = rig.pending(agent_id)
    assert len(pending) == 1, pending
    assert pending[0]["action"] == "buy" and pending[0]["meta"].get("waiting_behind", 0) == 0
    return pending[0]


def wait_like_a_person(rig: Rig, agent_id: str, question: dict[str, Any]) -> None:
    """PERSON_DELAY seconds pass; the agent decides at each of them, and each newer decision is
    held behind the question instead of replacing it."""
    rig.seconds(PERSON_DELAY)
    (still,) = rig.pending(agent_id)
    assert still["id"] == question["id"]
    assert still["expires_at"] == question["expires_at"]  # the stated deadline holds
    assert still["meta"]["waiting_behind"] == PERSON_DELAY
    newer = [d for d in rig.decisions(agent_id) if d["time"] > question["time"]]
    assert len(newer) == PERSON_DELAY
    for d in newer:
        assert (d["action"], d["status"]) == ("buy", "held"), d
        assert d["reason"] == f"waiting for your answer on decision {question['id'][:12]}"
        assert d["meta"]["waiting_for"] == question["id"]


def test_cli_approve_after_a_persons_delay(rig: Rig) -> None:
    agent_id = spike_fader(rig, "Cli Approver")
    question = asked(rig, agent_id)
    wait_like_a_person(rig, agent_id, question)

    rc, out, err = rig.cli("pending")
    assert rc == 0, err
    line = next(x for x in out.splitlines() if x.startswith(question["id"][:12] + " "))
    assert "Cli Approver" in line and f"{PERSON_DELAY} newer decisions waiting behind it" in line
    assert re.search(r"expires in [0-5]:\d\d \(\d\d:\d\d:\d\d UTC\)", line), line

    now = rig.price()
    rc, out, err = rig.cli("approve", question["id"], "--json")
    assert rc == 0, err
    assert '"status": "executed"' in out
    (trade,) = rig.get("/api/trades", agent_id=agent_id)["trades"]
    assert trade["decision_id"] == question["id"]
    # risk was checked again and the order filled at the price of now, not of the question
    assert abs(Decimal(trade["price"]) / now - 1) < Decimal("0.001")
    assert Decimal(question["price"]) / now > Decimal("1.01")
    assert rig.pending(agent_id) == []
    rig.post(f"/api/agents/{agent_id}/pause")


def test_cli_reject_after_a_persons_delay(rig: Rig) -> None:
    agent_id = spike_fader(rig, "Cli Rejecter")
    question = asked(rig, agent_id)
    wait_like_a_person(rig, agent_id, question)
    rc, out, err = rig.cli("reject", question["id"])
    assert rc == 0, err
    assert "rejected" in out
    rec = next(d for d in rig.decisions(agent_id) if d["id"] == question["id"])
    assert (rec["status"], rec["reason"]) == ("rejected", "rejected by a person")
    assert rig.get("/api/trades", agent_id=agent_id)["total"] == 0
    # answered: the agent's next decision is the next question
    assert asked(rig, agent_id)["id"] != question["id"]
    rig.post(f"/api/agents/{agent_id}/pause")


def test_rest_approve_and_reject_after_a_persons_delay(rig: Rig) -> None:
    agent_id = spike_fader(rig, "Rest Person")
    question = asked(rig, agent_id)
    wait_like_a_person(rig, agent_id, question)
    # a person's own order meanwhile waits too: it does not replace the question either
    own = rig.post(f"/api/agents/{agent_id}/orders", {"action": "buy", "symbol": SYMBOL})
    assert own["status"] == "held" and own["meta"]["waiting_for"] == question["id"]
    assert rig.pending(agent_id)[0]["meta"]["waiting_behind"] == PERSON_DELAY + 1
    rejected = rig.post(f"/api/decisions/{question['id']}/reject")
    assert (rejected["status"], rejected["reason"]) == ("rejected", "rejected by a person")

    second = asked(rig, agent_id)
    wait_like_a_person(rig, agent_id, second)
    approved = rig.post(f"/api/decisions/{second['id']}/approve")
    assert approved["status"] == "executed", approved
    (trade,) = rig.get("/api/trades", agent_id=agent_id)["trades"]
    assert trade["decision_id"] == second["id"]
    again = rig.http.post(f"/api/decisions/{second['id']}/approve")
    assert again.status_code == 409 and "executed, not pending" in again.text
    rig.post(f"/api/agents/{agent_id}/pause")


def test_expiry_follows_the_wall_clock(rig: Rig) -> None:
    agent_id = spike_fader(rig, "Slow Person")
    question = asked(rig, agent_id)
    rig.wall.advance(TTL - timedelta(seconds=2))  # a person away for almost five minutes
    rig.seconds(1)
    (still,) = rig.pending(agent_id)
    assert still["id"] == question["id"] and still["meta"]["waiting_behind"] == 1

    rig.seconds(1)  # the deadline passes on this bar: the question expires, a new one is asked
    expired = next(d for d in rig.decisions(agent_id) if d["id"] == question["id"])
    assert (expired["status"], expired["reason"]) == ("expired", "no answer before the expiry")
    (fresh,) = rig.pending(agent_id)
    assert fresh["id"] != question["id"] and fresh["meta"].get("waiting_behind", 0) == 0
    rc, _, err = rig.cli("approve", question["id"])
    assert rc != 0 and "expired, not pending" in err

    # between bars: an answer after the deadline does not trade
    rig.wall.advance(TTL)
    late = rig.post(f"/api/decisions/{fresh['id']}/approve")
    assert (late["status"], late["reason"]) == ("expired", "approved after the expiry")
    assert rig.get("/api/trades", agent_id=agent_id)["total"] == 0
    rig.post(f"/api/agents/{agent_id}/pause")


def test_deadline_and_waiting_read_the_same_everywhere() -> None:
    now = datetime(2023, 4, 1, 12, 0, tzinfo=UTC)
    pending = {"expires_at": "2023-04-01T12:05:00Z", "meta": {"waiting_behind": 3}}
    assert pending_summary(pending, now) == (
        "expires in 5:00 (12:05:00 UTC); 3 newer decisions waiting behind it"
    )
    assert deadline_text("2023-04-01T12:00:00.5Z", now) == "expires in 0:01 (12:00:00 UTC)"
    assert deadline_text("2023-04-01T12:00:00Z", now) == "expired at 12:00:00 UTC"
    assert waiting_text(waiting_behind({"meta": {"waiting_behind": 1}})) == (
        "1 newer decision waiting behind it"
    )
    assert waiting_text(waiting_behind({"meta": {}})) == "no newer decision waiting"
