"""One working IB order cancelled (by the broker, and by a person through the kernel), and fills
stamped with IB's execution time - against the IB Gateway stand-in on a loopback socket."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from ib_helpers import OPEN, Clock, D, broker, gateway, ib_settings
from llm_kernel import run_ticks

from phantomex.broker.base import OrderRejected
from phantomex.broker.ib_broker import IBBroker, client_order_id
from phantomex.broker.ib_feed import IBFeed
from phantomex.broker.paper import PaperBrokerConfig
from phantomex.broker.router import VenueRouter
from phantomex.devtools.ib_gateway import Hold, IBGateway, Partial
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Action, Decision, Fill, Order, Side, Snapshot, Tick, Wallet
from phantomex.domain.risk import RiskProfile
from phantomex.kernel import exchange_setup
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.secrets import SecretBox
from phantomex.store.repo import Store

AGENT = "b" * 32
CANCEL_ORDER = 4


@pytest.fixture
def clock() -> Clock:
    return Clock(OPEN)


@pytest.fixture
def gw(tmp_path: Path, clock: Clock) -> Iterator[IBGateway]:
    g = gateway(tmp_path / "account.json", clock)
    g.set_price("AAPL", "187.25")
    yield g
    g.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'px.db'}")
    yield s
    s.close()


@pytest.fixture
def ib(gw: IBGateway, store: Store) -> Iterator[IBBroker]:
    b = broker(store, ib_settings(gw))
    yield b
    b.link.close()


def order(n: int, qty: str = "5") -> Order:
    oid = f"{n:08x}{'0' * 24}"  # distinct in the 24 characters the orderRef carries
    return Order(oid, AGENT, "AAPL", Side.BUY, D(qty), f"order:{oid}", decision_id=oid)


def snap(clock: Clock) -> Snapshot:
    return Snapshot("AAPL", clock.now, D("187.25"))


def wallet() -> Wallet:
    return Wallet(AGENT, allowance=D(10000), cash=D(10000))


def test_one_working_order_is_cancelled(ib: IBBroker, gw: IBGateway, clock: Clock) -> None:
    gw.script(Hold(), Hold())
    assert ib.submit(order(1), wallet(), snap(clock), clock.now) is None  # working at IB
    assert ib.submit(order(2), wallet(), snap(clock), clock.now) is None
    cancelled = ib.cancel(order(1).id)
    assert cancelled is not None and cancelled.id == order(1).id
    statuses = sorted((o.order_ref, o.status) for o in gw.account().orders.values())
    assert statuses == [
        (client_order_id(order(1)), "Cancelled"),
        (client_order_id(order(2)), "Submitted"),
    ]
    assert len(gw.requests(CANCEL_ORDER)) == 1  # only that one
    assert [o.id for o in ib.open_orders()] == [order(2).id]
    assert ib.cancel(order(1).id) is None  # no longer working
    assert ib.on_tick(Tick(clock.now, {}), {}) == []  # nothing to book, nothing re-sent


def test_a_cancel_after_a_partial_fill_keeps_the_executed_part(
    ib: IBBroker, gw: IBGateway, clock: Clock
) -> None:
    gw.script(Partial(D(2)))
    first = ib.submit(order(1), wallet(), snap(clock), clock.now)
    assert first is not None and first.quantity == 2
    assert ib.cancel(order(1).id) is not None
    gw.set_price("AAPL", "187.60")  # would have filled the rest
    assert ib.on_tick(Tick(clock.now, {}), {}) == [] and ib.open_orders() == []
    (ex,) = gw.account().executions
    assert ex.shares == 2 and gw.account().positions["AAPL"].quantity == 2


def test_a_filled_order_is_not_cancelled(ib: IBBroker, gw: IBGateway, clock: Clock) -> None:
    assert ib.submit(order(1), wallet(), snap(clock), clock.now) is not None
    assert ib.cancel(order(1).id) is None
    assert gw.requests(CANCEL_ORDER) == []


def test_fills_carry_ibs_execution_time(ib: IBBroker, gw: IBGateway, clock: Clock) -> None:
    """The kernel's clock is not IB's: each fill is stamped with its execution report's time."""
    gw.script(Partial(D(2)))
    later = clock.now + timedelta(seconds=42)  # the kernel's clock runs ahead of IB's
    first = ib.submit(order(1), wallet(), snap(clock), later)
    assert first is not None and first.time == OPEN
    clock.now = OPEN + timedelta(minutes=3, seconds=17)
    gw.set_price("AAPL", "187.40")  # the rest executes now, at IB
    tick_time = OPEN + timedelta(hours=1)  # and is booked on a much later tick
    rest = _drain(ib, tick_time)
    assert rest.time == OPEN + timedelta(minutes=3, seconds=17) and rest.quantity == 3


@pytest.fixture
def kernel(gw: IBGateway, clock: Clock, store: Store) -> Iterator[Kernel]:
    """The kernel as the server wires it, its prices from the venue's connection."""
    settings = ib_settings(gw)
    box = SecretBox(Fernet.generate_key())
    router = exchange_setup.build_router(PaperBrokerConfig(), store, box, settings)
    exchange_setup.open_venue(router, store, box, settings, "ib-paper")
    ib = router.brokers["ib-paper"]
    assert isinstance(ib, IBBroker)
    feed = IBFeed(ib.link, ["AAPL"], interval_s=0, clock=clock)
    k = Kernel(store, feed, router, config=KernelConfig(persist_snapshots=False))
    try:
        k.load()
        yield k
    finally:
        ib.link.close()


async def ib_agent(kernel: Kernel, gw: IBGateway) -> str:
    """An agent on ib-paper whose brain holds; the kernel has seen AAPL's (delayed) price."""
    spec = AgentSpec(
        name="ib manual",
        brain="rsi",
        symbols=["AAPL"],
        allowance=D(10000),
        interval_seconds=3600,
        risk=RiskProfile(cooldown_seconds=0, max_price_age_seconds=1200),
    )
    agent = kernel.create_agent(spec)
    assert isinstance(kernel.broker, VenueRouter) and isinstance(kernel.store, Store)
    box = SecretBox(Fernet.generate_key())
    settings = ib_settings(gw)
    exchange_setup.set_agent_venue(kernel.broker, kernel.store, box, settings, agent.id, "ib-paper")
    await run_ticks(kernel, 1)
    return agent.id


@pytest.mark.asyncio
async def test_kernel_cancel_order_reaches_ib(
    kernel: Kernel, gw: IBGateway, clock: Clock, store: Store
) -> None:
    """A person cancels an ib-paper agent's working order: IB cancels it, the order is stored
    cancelled, its decision rejected, and nothing is booked."""
    agent_id = await ib_agent(kernel, gw)
    router = kernel.broker
    assert isinstance(router, VenueRouter)
    gw.script(Hold())
    rec = kernel.place(agent_id, Decision(Action.BUY, "AAPL", quantity=D(3)))
    (working,) = router.open_orders(agent_id)
    assert working.decision_id == rec.id
    cancelled = kernel.cancel_order(working.id)
    assert cancelled.id == working.id
    assert [o.status for o in gw.account().orders.values()] == ["Cancelled"]
    assert router.open_orders() == []
    assert store.get_decision(rec.id).status == "rejected"  # type: ignore[union-attr]
    clock.now += timedelta(minutes=1)
    await run_ticks(kernel, 1)
    assert kernel.ledger.wallet(agent_id).quantity("AAPL") == 0
    assert kernel.ledger.wallet(agent_id).cash == D(10000)
    assert len(gw.requests(3)) == 1  # placed once, never again


@pytest.mark.asyncio
async def test_kernel_cancel_after_a_partial_fill(
    kernel: Kernel, gw: IBGateway, clock: Clock, store: Store
) -> None:
    """2 of 5 shares executed, then a person cancels the rest: the 2 stay booked, the decision
    stays executed, the wallet reconciles with the trades and with IB."""
    agent_id = await ib_agent(kernel, gw)
    gw.script(Partial(D(2)))
    rec = kernel.place(agent_id, Decision(Action.BUY, "AAPL", quantity=D(5)))
    assert rec.status == "executed"
    (working,) = kernel.broker.open_orders(agent_id)
    assert kernel.cancel_order(working.id).id == working.id
    assert store.get_decision(rec.id).status == "executed"  # type: ignore[union-attr]
    clock.now += timedelta(minutes=1)
    gw.set_price("AAPL", "187.60")  # would have filled the rest
    await run_ticks(kernel, 1)
    assert kernel.ledger.wallet(agent_id).quantity("AAPL") == 2
    assert gw.account().positions["AAPL"].quantity == 2
    assert D(10000) - kernel.ledger.wallet(agent_id).cash == D(100000) - gw.account().cash
    assert kernel.audit() == []


def _drain(ib: IBBroker, at: object) -> Fill:
    """on_tick until the one fill arrives (generous deadline; the gateway answers in ms)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = ib.on_tick(Tick(at, {}), {})  # type: ignore[arg-type]
        if got:
            ((_, fill),) = got
            assert not isinstance(fill, OrderRejected)
            return fill
        time.sleep(0.05)
    raise AssertionError("the execution never arrived")
