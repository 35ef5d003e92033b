"""The composition root: every kernel (live, session, backtest) is assembled here.

Replays (sessions, backtests) run on a :class:`~phantomex.store.memory.MemoryStore`: their
kernel lives as long as the run, its results are read from it while it runs (and a session
copies them into the main database), so nothing needs a database of its own; the in-memory
store passes the same contract suite as the SQL store and is the fastest of the two. The live
server passes its SQL store.
"""

from __future__ import annotations

from datetime import datetime

from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.broker.base import Broker
from phantomex.broker.paper import PaperBroker
from phantomex.domain.clock import Clock
from phantomex.kernel import exchange_setup
from phantomex.kernel.runtime import Kernel
from phantomex.kernel.state import KernelConfig
from phantomex.market.base import MarketFeed
from phantomex.problems import Problems
from phantomex.store.memory import MemoryStore
from phantomex.store.port import KernelStore


def build_kernel(
    feed: MarketFeed,
    broker: Broker | None = None,
    *,
    store: KernelStore | None = None,
    config: KernelConfig | None = None,
    llm: LLMRuntime | None = None,
    clock: Clock | None = None,
    problems: Problems | None = None,
    warm_up: bool = False,
    start: datetime | None = None,
) -> Kernel:
    """A kernel restored from ``store`` (a fresh in-memory store when none) and wired to its
    venues (a :class:`~phantomex.broker.router.VenueRouter`'s kill switch and reconciliation);
    with ``warm_up``, the feed's warm-up bars are in its history; with ``start``, a replay
    begins then (agents created before the first tick are dated ``start``)."""
    kernel = Kernel(
        store if store is not None else MemoryStore(),
        feed,
        broker or PaperBroker(),
        config=config,
        llm=llm,
        clock=clock,
        problems=problems,
    )
    kernel.load()
    exchange_setup.attach(kernel)  # kill switch → exchange orders; start-up reconciliation
    if warm_up:
        kernel.warm_up()
    if start is not None:
        kernel.begin_at(start)
    return kernel
