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
    agent_routes,
    auth,
    body_limit,
    dashboard,
    decision_routes,
    equity_routes,
    errors,
    exchange_routes,
    health_routes,
    llm_routes,
    market_routes,
    metrics,
    news_routes,
    openapi,
    order_routes,
    risk_routes,
    session_routes,
    sources,
    system_routes,
    trade_routes,
    ws,
)
from phantomex.api.strict_query import refuse_unknown_query
from phantomex.brains.llm.runtime import LLMRuntime
from phantomex.brains.llm.types import EndpointConfig
from phantomex.broker.paper import PaperBrokerConfig
from phantomex.config import Settings
from phantomex.demo import seed_demo, seed_llm_demo, start_local_model
from phantomex.domain.clock import Clock
from phantomex.feeds import build_sources, session_live_sources
from phantomex.kernel import exchange_setup
from phantomex.kernel.compose import build_kernel
from phantomex.kernel.llm_endpoints import load_saved
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.kernel.shutdown import shutdown
from phantomex.market.base import MarketFeed
from phantomex.mcp_server import http as mcp_http
from phantomex.mcp_server.server import build_mcp
from phantomex.mcp_server.toolsets import Toolset
from phantomex.news.collect import poll
from phantomex.news.settings import NewsSettings
from phantomex.news.sources import sources_from_settings
from phantomex.notify.service import Notifications
from phantomex.problems import Problem, Problems
from phantomex.research.jobs import JobRunner
from phantomex.secrets import SecretBox
from phantomex.service import Service
from phantomex.service.news import News
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


def live_kernel(
    settings: Settings,
    store: Store,
    box: SecretBox,
    feed: MarketFeed | None = None,
    clock: Clock | None = None,
    local: EndpointConfig | None = None,
) -> Kernel:
    """The live kernel of ``settings`` (see :func:`phantomex.kernel.compose.build_kernel`)."""
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
    llm = LLMRuntime([*settings.llm_endpoints, *saved, *served], cache=store.cache_get, news=store)
    feed = feed or build_feed(settings, store, problems)
    kernel = build_kernel(
        feed,
        broker,
        store=store,
        config=config,
        llm=llm,
        clock=clock,
        problems=problems,
        warm_up=True,
    )
    if seeds_demo(settings, kernel):
        created = seed_demo(kernel)
        if created:
            log.info("created %d demo agents", created)
    return kernel


def start_news(settings: NewsSettings, store: Store, news: News) -> asyncio.Task[None] | None:
    """Poll the configured news sources in the background, each round's reports kept by
    ``news`` (None: no source, or polling off)."""
    sources = sources_from_settings(settings)
    if not sources or settings.poll_seconds <= 0:
        return None
    every, timeout = settings.poll_seconds, settings.timeout_seconds
    rounds = poll(sources, store, every=every, timeout=timeout, on_round=news.record)
    return asyncio.create_task(rounds, name="news")


def create_app(
    settings: Settings, feed: MarketFeed | None = None, clock: Clock | None = None
) -> FastAPI:
    """The app; the kernel starts with the app's lifespan and stops with it. ``clock`` is a
    person's time (the wall clock unless a test passes its own)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.database_url)
        box = SecretBox.for_data_dir(settings.data_dir)
        local = await asyncio.to_thread(start_local_model) if settings.local_model else None
        kernel = live_kernel(settings, store, box, feed, clock, local.endpoint if local else None)
        service = Service.of(
            kernel,
            llm_static=frozenset(e.name for e in settings.llm_endpoints),
            venues=(store, box, settings.exchange),
            news=(store, settings.news),
        )
        app.state.secrets, app.state.store, app.state.service = box, store, service
        hub = ws.Hub()
        service.queries.subscribe(hub.on_event)
        service.queries.subscribe(sources.SourceWatch(service).on_event)
        metrics.attach(app, service.queries)
        app.state.kernel, app.state.hub, app.state.settings = kernel, hub, settings
        if seeds_demo(settings, kernel) and kernel.llm is not None:
            joined = await seed_llm_demo(service, kernel.llm, speed=settings.replay_speed)
            if joined:
                log.info("LLM demo agents joined: %s", ", ".join(joined))
        app.state.notifications = await Notifications.open(
            settings.notifications, service, data_dir=settings.data_dir, base_url=settings.base_url
        )
        app.state.sessions = SessionManager(
            kernel,
            store,
            fee_bps=settings.fee_bps,
            slippage_bps=settings.slippage_bps,
            live_sources=session_live_sources(settings, store),
            datasets=settings.datasets_dir,
        )
        news = start_news(settings.news, store, service.news())
        jobs = JobRunner()
        assistant = build_mcp(service, app.state.sessions, jobs, Toolset(settings.mcp_toolset))
        task = asyncio.create_task(kernel.run(), name="kernel")
        log.info("PhantomEx %s serving on %s", __version__, settings.base_url)
        try:
            async with mcp_http.serving(app, assistant, settings.host):
                yield
        finally:
            await jobs.aclose()
            await app.state.sessions.aclose()
            if news is not None:
                news.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await news
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
    mcp_http.install(app)
    for router in (
        health_routes.router,
        agent_routes.router,
        order_routes.router,
        decision_routes.router,
        market_routes.router,
        trade_routes.router,
        risk_routes.router,
    ):
        app.include_router(router)
    app.include_router(llm_routes.router)
    app.include_router(session_routes.router)
    app.include_router(equity_routes.router)
    app.include_router(sources.router)
    app.include_router(news_routes.router)
    app.include_router(exchange_routes.router)
    app.include_router(system_routes.router)
    app.include_router(ws.router)
    auth.install(app)
    metrics.install(app)
    openapi.install(app)
    dashboard.mount_dashboard(app)
    body_limit.install(app, settings.max_body_bytes)  # last: it runs first, before auth
    return app
