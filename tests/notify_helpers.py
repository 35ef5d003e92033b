"""Shared by the notification tests: a real kernel over replayed prices, ticks at set prices,
and a FakeAPI route that records what apprise's ``json://`` plugin posts."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fakeapi import FakeAPI, Reply

from phantomex.broker.paper import PaperBroker
from phantomex.domain.clock import SimulatedClock
from phantomex.domain.models import Bar, Snapshot, Tick
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.store.repo import Store

WEBHOOK = "/hooks/phantomex"


@functools.cache
def dataset() -> dict[str, list[Bar]]:
    """200 real 1-minute bars of BTC, ETH and SOL (loaded once: the file is large)."""
    return {s: bars[:200] for s, bars in load_dataset("demo", ["BTC", "ETH", "SOL"]).items()}


def make_kernel(db: Path) -> Kernel:
    """A kernel with a SQLite store over :func:`dataset`; a person's clock (approval expiry)
    stands still until the test moves it."""
    feed = ReplayFeed(dataset(), speed=0, warmup_bars=30)
    kernel = Kernel(
        Store(f"sqlite:///{db}"),
        feed,
        PaperBroker(),
        config=KernelConfig(persist_snapshots=False),
        clock=SimulatedClock(datetime.now(UTC).replace(microsecond=0)),
    )
    kernel.load()
    kernel.warm_up()
    return kernel


def tick_at(time: datetime, prices: dict[str, str]) -> Tick:
    return Tick(time=time, snapshots={s: Snapshot(s, time, Decimal(p)) for s, p in prices.items()})


def next_minute(kernel: Kernel, minutes: int = 1) -> datetime:
    assert kernel.now is not None
    return kernel.now + timedelta(minutes=minutes)


def webhook(api: FakeAPI, status: int = 200) -> str:
    """Script the webhook route; returns the apprise URL that posts to it."""
    api.route("POST", WEBHOOK, Reply(status=status, body={"ok": status < 400}))
    return f"json://{api.url.removeprefix('http://')}{WEBHOOK}"


def posted(api: FakeAPI) -> list[dict[str, Any]]:
    """The JSON bodies apprise posted (``{"version","title","message","type",...}``)."""
    return [r.json() for r in api.calls(WEBHOOK)]
