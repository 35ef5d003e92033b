"""The FastAPI application: builds the kernel from settings and runs it for the app's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI

from phantomex import __version__
from phantomex.api import dashboard, errors, llm_routes, routes, ws
from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.broker.paper import PaperBroker, PaperBrokerConfig
from phantomex.config import Settings
from phantomex.demo import seed_demo, seed_llm_demo
from phantomex.kernel.runtime import CLOCK_KEY, Kernel, KernelConfig
from phantomex.kernel.shutdown import shutdown
from phantomex.market.base import MarketFeed
from phantomex.market.replay import replay_dataset, replay_from_files
from phantomex.secrets import SecretBox
from phantomex.store.repo import Store

log = logging.getLogger(__name__)


def build_feed(settings: Settings, store: Store) -> MarketFeed:
    """The replay feed from settings, resuming after the stored clock."""
    cursor = store.get_state(CLOCK_KEY)
    start_after = datetime.fromisoformat(cursor["time"]) if cursor else None
    kwargs: dict[str, Any] = {
        "speed": settings.replay_speed,
        "loop": settings.replay_loop,
        "warmup_bars": settings.warmup_bars,
        "start_after": start_after,
    }
    if settings.replay_files:
        return replay_from_files(settings.replay_files, **kwargs)
    return replay_dataset("demo", **kwargs)


def build_kernel(
    settings: Settings, store: Store, box: SecretBox, feed: MarketFeed | None = None
) -> Kernel:
    broker = PaperBroker(
        PaperBrokerConfig(fee_bps=settings.fee_bps, slippage_bps=settings.slippage_bps)
    )
    config = KernelConfig(approval_ttl=timedelta(seconds=settings.approval_ttl_seconds))
    saved = [
        e
        for e in llm_routes.load_saved(store, box)
        if e.name not in {s.name for s in settings.llm_endpoints}
    ]
    llm = LLMRuntime([*settings.llm_endpoints, *saved], cache=store.cache_get)
    kernel = Kernel(store, feed or build_feed(settings, store), broker, config=config, llm=llm)
    kernel.llm_static = {e.name for e in settings.llm_endpoints}
    kernel.load()
    kernel.warm_up()
    if settings.demo:
        created = seed_demo(kernel)
        if created:
            log.info("created %d demo agents", created)
    return kernel


def create_app(settings: Settings, feed: MarketFeed | None = None) -> FastAPI:
    """The app; the kernel starts with the app's lifespan and stops with it."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.database_url)
        box = SecretBox.for_data_dir(settings.data_dir)
        kernel = build_kernel(settings, store, box, feed)
        app.state.secrets = box
        hub = ws.Hub()
        kernel.bus.subscribe(hub.on_event)
        app.state.kernel, app.state.hub, app.state.settings = kernel, hub, settings
        if settings.demo and kernel.llm is not None:
            async with kernel.lock:
                joined = await seed_llm_demo(kernel, kernel.llm)
            if joined:
                log.info("LLM demo agents joined: %s", ", ".join(joined))
        task = asyncio.create_task(kernel.run(), name="kernel")
        log.info("PhantomEx %s serving on %s", __version__, settings.base_url)
        try:
            yield
        finally:
            await shutdown(kernel, task)  # in-flight decisions finish or are recorded abandoned
            if kernel.llm is not None:
                await kernel.llm.aclose()
            store.close()

    app = FastAPI(
        title="PhantomEx",
        version=__version__,
        description="AI and rule agents trading paper wallets on live or replayed markets.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.include_router(routes.router)
    app.include_router(llm_routes.router)
    app.include_router(ws.router)
    dashboard.mount_dashboard(app)
    return app
