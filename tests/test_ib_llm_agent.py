"""An LLM agent (through llm-sim) trading AAPL on an Interactive Brokers paper account - the IB
Gateway stand-in on a loopback socket - with the clock driven by the test: trades in market
hours (a partial fill whose rest arrives after a gateway restart, a disconnect in the middle of
an order), held outside them, and after a restart of the gateway and of PhantomEx the ledger
reconciles exactly with the account."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from ib_helpers import CLOSED, OPEN, Clock, D, gateway, ib_settings
from llm_kernel import run_ticks, sim_endpoint

from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.broker.ib_broker import IBBroker
from phantomex.broker.ib_feed import IBFeed
from phantomex.broker.paper import PaperBrokerConfig
from phantomex.broker.router import VenueRouter
from phantomex.broker.venues import ExchangeSettings
from phantomex.devtools.ib_gateway import Disconnect, Hold, IBGateway, Partial
from phantomex.devtools.llm_sim.server import SimServer
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Action, Decision
from phantomex.domain.risk import RiskProfile
from phantomex.kernel import exchange_setup
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.secrets import SecretBox
from phantomex.store.repo import Store

MODEL = "alpha:7b"
PLACE_ORDER = 3


def answer(action: str, quantity: int | None = None) -> str:
    return json.dumps(
        {
            "action": action,
            "symbol": "AAPL" if action != "hold" else None,
            "quantity": quantity,
            "notional": None,
            "reasoning": f"test: {action} {quantity or ''}".strip(),
            "confidence": 0.8,
        }
    )


@pytest.fixture
def sim() -> Iterator[SimServer]:
    with SimServer(models=[MODEL]) as server:
        server.configure(latency_seconds=0.0)
        yield server


def start(
    db: Path, settings: ExchangeSettings, sim: SimServer, clock: Clock
) -> tuple[Kernel, VenueRouter]:
    """PhantomEx as the server wires it: the venue router, the ib-paper venue (whose connection
    also feeds AAPL, delayed), the kernel, and the start-up reconciliation."""
    store = Store(f"sqlite:///{db}")
    box = SecretBox(Fernet.generate_key())
    router = exchange_setup.build_router(PaperBrokerConfig(), store, box, settings)
    exchange_setup.open_venue(router, store, box, settings, "ib-paper")
    ib = router.brokers["ib-paper"]
    assert isinstance(ib, IBBroker)
    feed = IBFeed(ib.link, ["AAPL"], interval_s=0, clock=clock)
    kernel = Kernel(
        store,
        feed,
        router,
        config=KernelConfig(persist_snapshots=False, await_slow_brains=True),
        llm=LLMRuntime([sim_endpoint(sim)], cache=store.cache_get),
    )
    kernel.load()
    kernel.warm_up()
    return kernel, router


async def stop(kernel: Kernel, router: VenueRouter) -> None:
    assert kernel.llm is not None
    await kernel.llm.aclose()
    for broker in router.brokers.values():
        if isinstance(broker, IBBroker):
            broker.link.close()
    kernel.store.close()


async def minute(kernel: Kernel, gw: IBGateway, clock: Clock, price: str) -> None:
    """One minute of market: the price moves at IB, then the kernel ticks."""
    clock.now += timedelta(minutes=1)
    gw.set_price("AAPL", price)
    await run_ticks(kernel, 1)


@pytest.mark.asyncio
async def test_llm_agent_trades_aapl_on_ib_paper(tmp_path: Path, sim: SimServer) -> None:
    clock = Clock(OPEN)
    gw = gateway(tmp_path / "ib-account.json", clock, cash="10000")
    gw.set_price("AAPL", "187.25")
    settings = ib_settings(gw)
    kernel, router = start(tmp_path / "px.db", settings, sim, clock)
    try:
        params = {"endpoint": "sim-ollama", "model": MODEL}
        agent_id = ib_agent(kernel, router, settings, "llm", params, interval_seconds=60)
        feed = kernel.feed
        assert isinstance(feed, IBFeed)

        # 1. in market hours: buy 5, IB fills 2 now and 3 at the next price
        sim.script(MODEL, [answer("buy", 5), answer("hold")])
        gw.script(Partial(D(2)))
        await minute(kernel, gw, clock, "187.25")
        assert feed.delayed == {"AAPL": True}  # no subscription: IB's delayed data, marked
        (rec,) = kernel.store.decisions(agent_id)
        assert rec.status == "executed", rec.reason
        assert kernel.ledger.wallet(agent_id).quantity("AAPL") == 2
        gw.restart()  # in the middle of the order: the rest fills after it, and is booked
        await _until(kernel, gw, clock, "187.40", lambda: _held(kernel, agent_id) == 5)

        # 2. sell 2; IB executes and the connection drops before the answer
        sim.script(MODEL, [answer("sell", 2)])
        gw.script(Disconnect())
        await minute(kernel, gw, clock, "187.60")
        assert _held(kernel, agent_id) == 3
        assert len(gw.requests(PLACE_ORDER)) == 2  # each order sent once

        # 3. after the close: the agent's buy is held, nothing reaches IB
        clock.now = CLOSED
        sim.script(MODEL, [answer("buy", 1)])
        await minute(kernel, gw, clock, "188.00")
        latest = kernel.store.decisions(agent_id)[0]
        assert latest.status == "held"
        assert latest.reason.startswith("market closed: next open 2026-12-03 14:30 UTC")
        assert len(gw.requests(PLACE_ORDER)) == 2

        trades, _ = kernel.store.trades(agent_id, limit=100)
        assert sorted((t["side"], t["quantity"], t["price"]) for t in trades) == [
            ("buy", D(2), D("187.25")),
            ("buy", D(3), D("187.40")),
            ("sell", D(2), D("187.60")),
        ]
        assert {t["fee"] for t in trades} == {D("1.00")}  # IB's commissions
        assert kernel.audit() == []  # the wallet rebuilds exactly from its trades
        cash = kernel.ledger.wallet(agent_id).cash
        assert (
            cash == gw.account().cash == D("10000") - D("374.50") - D("562.20") + D("375.20") - D(3)
        )
    finally:
        await stop(kernel, router)

    # 4. the gateway restarts, then PhantomEx: the start-up reconciliation is clean
    gw.restart()
    kernel, router = start(tmp_path / "px.db", settings, sim, clock)
    try:
        reports = exchange_setup.attach(kernel)
        (report,) = reports
        assert report.venue == "ib-paper" and report.agents == [agent_id]
        assert report.clean, report.lines()
        assert {a.asset: a.exchange for a in report.assets} == {"AAPL": D(3), "USD": cash}
    finally:
        await stop(kernel, router)
        gw.stop()


def ib_agent(
    kernel: Kernel,
    router: VenueRouter,
    settings: ExchangeSettings,
    brain: str,
    params: dict[str, object] | None = None,
    interval_seconds: int = 3600,
) -> str:
    """An AAPL agent on ib-paper with 10000 USD (its id)."""
    spec = AgentSpec(
        name=f"ib {brain}",
        brain=brain,
        params=params or {},
        symbols=["AAPL"],
        allowance=D(10000),
        interval_seconds=interval_seconds,
        # IB's delayed data is 15 minutes old: the agent accepts prices up to 20 minutes
        risk=RiskProfile(cooldown_seconds=0, max_price_age_seconds=1200),
    )
    agent = kernel.create_agent(spec)
    assert isinstance(kernel.store, Store)
    box = SecretBox(Fernet.generate_key())
    exchange_setup.set_agent_venue(router, kernel.store, box, settings, agent.id, "ib-paper")
    return agent.id


@pytest.mark.asyncio
@pytest.mark.parametrize("executed", [0, 2])
async def test_a_person_cancels_a_working_ib_order(
    tmp_path: Path, sim: SimServer, executed: int
) -> None:
    """The command layer's cancel of an ib-paper agent's working order reaches IB: IB cancels
    it; shares executed before (a partial fill) stay booked and their decision executed, an
    order with none is cancelled and its decision rejected. The wallet reconciles with IB."""
    clock = Clock(OPEN)
    gw = gateway(tmp_path / "ib-account.json", clock, cash="10000")
    gw.set_price("AAPL", "187.25")
    settings = ib_settings(gw)
    kernel, router = start(tmp_path / "px.db", settings, sim, clock)
    try:
        agent_id = ib_agent(kernel, router, settings, "rsi")  # no history: it holds
        await run_ticks(kernel, 1)  # the kernel has AAPL's delayed price; a person orders
        gw.script(Partial(D(executed)) if executed else Hold())
        rec = kernel.place(agent_id, Decision(Action.BUY, "AAPL", quantity=D(5)))
        (working,) = router.open_orders(agent_id)
        assert working.decision_id == rec.id
        assert kernel.cancel_order(working.id).id == working.id
        assert [o.status for o in gw.account().orders.values()] == ["Cancelled"]
        assert router.open_orders() == []
        decision = kernel.store.get_decision(rec.id)
        assert decision is not None
        assert decision.status == ("executed" if executed else "rejected")
        await minute(kernel, gw, clock, "187.60")  # would have filled the rest
        shares = sum((e.shares for e in gw.account().executions), D(0))
        assert _held(kernel, agent_id) == executed == shares
        assert kernel.ledger.wallet(agent_id).cash == gw.account().cash
        assert kernel.audit() == []
        assert len(gw.requests(PLACE_ORDER)) == 1  # sent once, never again
    finally:
        await stop(kernel, router)
        gw.stop()


def _held(kernel: Kernel, agent_id: str) -> Decimal:
    return kernel.ledger.wallet(agent_id).quantity("AAPL")


async def _until(kernel: Kernel, gw: IBGateway, clock: Clock, price: str, done: object) -> None:
    """Tick minute by minute (a generous wall-clock deadline) until ``done()``."""
    deadline = time.monotonic() + 30
    while not done():  # type: ignore[operator]
        assert time.monotonic() < deadline, "IB's fills never reached the ledger"
        await minute(kernel, gw, clock, price)
