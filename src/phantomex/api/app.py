"""The FastAPI application: builds the kernel from settings and runs it for the app's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from fastapi import FastAPI

from phantomex import __version__
from phantomex.api import (
    auth,
    dashboard,
    equity_routes,
    errors,
    exchange_routes,
    llm_routes,
    metrics,
    openapi,
    routes,
    session_routes,
    sources,
    system_routes,
    ws,
)
from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.broker import exchange_setup
from phantomex.broker.paper import PaperBrokerConfig
from phantomex.config import Settings
from phantomex.demo import seed_demo, seed_llm_demo
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.kernel.shutdown import shutdown
from phantomex.market.base import MarketFeed
from phantomex.market.sources import build_sources
from phantomex.notify.service import Notifications
from phantomex.secrets import SecretBox
from phantomex.sessions.manager import SessionManager
from phantomex.store.repo import Store

log = logging.getLogger(__name__)


def build_feed(settings: Settings, store: Store) -> MarketFeed:
    """The feed of the configured sources (a replay resumes after the stored clock)."""
    return build_sources(settings.sources, settings, store)


def build_kernel(
    settings: Settings, store: Store, box: SecretBox, feed: MarketFeed | None = None
) -> Kernel:
    broker = exchange_setup.build_router(  # a PaperBroker that routes exchange agents' orders
        PaperBrokerConfig(fee_bps=settings.fee_bps, slippage_bps=settings.slippage_bps),
        store,
        box,
        settings.exchange,
    )
    config = KernelConfig(
        approval_ttl=timedelta(seconds=settings.approval_ttl_seconds),
        price_guard=settings.price_guard,
    )
    saved = [
        e
        for e in llm_routes.load_saved(store, box)
        if e.name not in {s.name for s in settings.llm_endpoints}
    ]
    llm = LLMRuntime([*settings.llm_endpoints, *saved], cache=store.cache_get)
    kernel = Kernel(store, feed or build_feed(settings, store), broker, config=config, llm=llm)
    kernel.llm_static = {e.name for e in settings.llm_endpoints}
    kernel.load()
    exchange_setup.attach(kernel)  # kill switch → exchange orders; start-up reconciliation
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
        kernel.bus.subscribe(sources.SourceWatch(kernel).on_event)
        metrics.attach(app, kernel)
        app.state.kernel, app.state.hub, app.state.settings = kernel, hub, settings
        if settings.demo and kernel.llm is not None:
            async with kernel.lock:
                joined = await seed_llm_demo(kernel, kernel.llm)
            if joined:
                log.info("LLM demo agents joined: %s", ", ".join(joined))
        app.state.notifications = await Notifications.open(settings, kernel)
        app.state.sessions = SessionManager(
            kernel, store, fee_bps=settings.fee_bps, slippage_bps=settings.slippage_bps
        )
        task = asyncio.create_task(kernel.run(), name="kernel")
        log.info("PhantomEx %s serving on %s", __version__, settings.base_url)
        try:
            yield
        finally:
            await app.state.sessions.aclose()
            await shutdown(kernel, task)  # in-flight decisions finish or are recorded abandoned
            if kernel.llm is not None:
                await kernel.llm.aclose()
            await app.state.notifications.close()
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
    app.include_router(session_routes.router)
    app.include_router(equity_routes.router)
    app.include_router(sources.router)
    app.include_router(exchange_routes.router)
    app.include_router(system_routes.router)
    app.include_router(ws.router)
    auth.install(app)
    metrics.install(app)
    openapi.install(app)
    dashboard.mount_dashboard(app)
    return app
