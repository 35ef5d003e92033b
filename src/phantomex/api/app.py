"""The FastAPI application: builds the kernel from settings and runs it for the app's lifetime."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from fastapi import Depends, FastAPI
from fastapi_offline import FastAPIOffline

from phantomex import __version__
from phantomex.api import (
    auth,
    body_limit,
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
from phantomex.api.strict_query import refuse_unknown_query
from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.brains.llm.types import EndpointConfig
from phantomex.broker.paper import PaperBrokerConfig
from phantomex.config import Settings
from phantomex.demo import seed_demo, seed_llm_demo, start_local_model
from phantomex.feeds import build_sources
from phantomex.kernel import exchange_setup
from phantomex.kernel.llm_endpoints import load_saved
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.kernel.shutdown import shutdown
from phantomex.market.base import MarketFeed
from phantomex.notify.service import Notifications
from phantomex.problems import Problem, Problems
from phantomex.secrets import SecretBox
from phantomex.sessions.manager import SessionManager
from phantomex.store.repo import Store

log = logging.getLogger(__name__)
DOCS_ASSETS = auth.DOCS_ASSETS


SOURCE_FIX = "fix `sources` (or its source's table) in the settings file"


def build_feed(settings: Settings, store: Store, problems: Problems) -> MarketFeed:
    """The feed of the configured sources (a replay resumes after the stored clock); a source
    that cannot be built is skipped and listed in ``problems``."""

    def skip(spec: str, reason: str) -> None:
        problems.add(Problem("source", spec, reason, fix=SOURCE_FIX))

    return build_sources(settings.sources, settings, store, skip=skip)


def seeds_demo(settings: Settings, kernel: Kernel) -> bool:
    """Whether to seed demo agents: not while stored agents were skipped (the database is not
    empty; a demo copy beside them would trade under the same names)."""
    return settings.demo and not any(p.kind == "agent" for p in kernel.problems)


def build_kernel(
    settings: Settings,
    store: Store,
    box: SecretBox,
    feed: MarketFeed | None = None,
    local: EndpointConfig | None = None,
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
    problems = Problems()  # whatever cannot be used is skipped, never fatal
    for problem in settings.skipped:
        problems.add(problem)
    saved = [
        e
        for e in load_saved(store, box, problems)
        if e.name not in {s.name for s in settings.llm_endpoints}
    ]
    served = [local] if local is not None else []  # the local model, when one is served
    llm = LLMRuntime([*settings.llm_endpoints, *saved, *served], cache=store.cache_get)
    feed = feed or build_feed(settings, store, problems)
    kernel = Kernel(store, feed, broker, config=config, llm=llm)
    kernel.problems = problems
    kernel.llm_static = {e.name for e in settings.llm_endpoints}
    kernel.load()
    exchange_setup.attach(kernel)  # kill switch → exchange orders; start-up reconciliation
    kernel.warm_up()
    if seeds_demo(settings, kernel):
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
        local = await asyncio.to_thread(start_local_model) if settings.local_model else None
        kernel = build_kernel(settings, store, box, feed, local.endpoint if local else None)
        app.state.secrets = box
        hub = ws.Hub()
        kernel.bus.subscribe(hub.on_event)
        kernel.bus.subscribe(sources.SourceWatch(kernel).on_event)
        metrics.attach(app, kernel)
        app.state.kernel, app.state.hub, app.state.settings = kernel, hub, settings
        if seeds_demo(settings, kernel) and kernel.llm is not None:
            async with kernel.lock:
                joined = await seed_llm_demo(kernel, kernel.llm, speed=settings.replay_speed)
            if joined:
                log.info("LLM demo agents joined: %s", ", ".join(joined))
        app.state.notifications = await Notifications.open(
            settings.notifications, kernel, data_dir=settings.data_dir, base_url=settings.base_url
        )
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
            if local is not None:
                await asyncio.to_thread(local.server.stop)

    app = FastAPIOffline(  # /docs and /redoc load their scripts from this server, not a CDN
        title="PhantomEx",
        version=__version__,
        description="AI and rule agents trading paper wallets on live or replayed markets.",
        lifespan=lifespan,
        static_url=DOCS_ASSETS,
        dependencies=[Depends(refuse_unknown_query)],
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
    body_limit.install(app, settings.max_body_bytes)  # last: it runs first, before auth
    return app
