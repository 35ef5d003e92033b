"""Starting, running and stopping sessions inside the server.

A **replay** session runs as a background task on a kernel of its own (the same kernel code as
live trading and backtests) with an in-memory store, over a replay feed of the chosen window, so
it never touches the live agents. A **live** session creates fresh agents in the live kernel,
samples their equity, and pauses them at the end. Either way the results (equity curves, trades,
the reasoning of every trade decision, metrics) are saved in the main database as the session
goes, and summaries are written every N hours of market time and at the end.

A session still running when the server stops is marked ``interrupted`` at the next start; the
results saved until then stay (live agents of such a session are paused).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from phantomex.brains.registry import STRATEGIES, create_brain
from phantomex.broker.paper import PaperBroker, PaperBrokerConfig
from phantomex.domain.agent import AgentSpec, new_id
from phantomex.domain.models import Bar, Tick
from phantomex.domain.risk import RiskProfile
from phantomex.kernel.compose import build_kernel
from phantomex.kernel.driver import TickDriver
from phantomex.kernel.runtime import Kernel, KernelConfig
from phantomex.market.handover import HandoverFeed
from phantomex.market.loaders import load_dataset
from phantomex.market.replay import ReplayFeed
from phantomex.research.spec import resolve_strategy
from phantomex.serialize import iso
from phantomex.sessions import summary as summaries
from phantomex.sessions.handover import LiveSources, handover_feed, window_parts
from phantomex.sessions.repo import RUNNING, SessionRepo, now
from phantomex.sessions.spec import SessionError, SessionSpec
from phantomex.sessions.tracker import BUY_AND_HOLD, CASH, Competitor, Tracker
from phantomex.sessions.view import session_view
from phantomex.store.repo import Store
from phantomex.store.session_tables import SessionAgentRow, SessionRow, SessionSummaryRow

log = logging.getLogger(__name__)

TICKS_PER_TRANSACTION = 200
FLUSH_SECONDS = 2.0  # wall seconds between saves of a running session's results
LIVE_SAMPLES = 240  # a live session marks equity about this many times (at least every minute)


@functools.lru_cache(maxsize=16)
def _bars(dataset: str, symbol: str, datasets: Path | None = None) -> list[Bar]:
    """A dataset's bars of one symbol (shipped, or stored in ``datasets``), parsed once per
    process."""
    return load_dataset(dataset, [symbol], datasets=datasets)[symbol]


def entrant(brain: str, params: Mapping[str, Any]) -> str:
    """What the leaderboard ranks across sessions: a model, or a strategy with all its
    parameters (defaults included, so ``rsi`` and ``rsi:period=14`` are the same entrant)."""
    if brain == "llm":
        return f"llm:{params.get('model')}"
    full = STRATEGIES[brain].Params.model_validate(dict(params)).model_dump(mode="json")
    args = ",".join(f"{k}={full[k]}" for k in sorted(full))
    return f"{brain}({args})" if args else brain


def fingerprint(window: Mapping[str, Any]) -> str:
    """The market window's identity: data source, symbols, start, end, bar period and fee."""
    key = {k: window[k] for k in ("source", "symbols", "start", "end", "period_seconds", "fee_bps")}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Run:
    """A session running in this process."""

    id: str
    spec: SessionSpec
    kernel: Kernel
    tracker: Tracker
    period: timedelta
    start: datetime
    end: datetime  # market time (replay) or wall time (live)
    feed: ReplayFeed | HandoverFeed | None = None
    window: dict[str, Any] = field(default_factory=dict)  # as stored at the start
    stop_requested: bool = False
    interrupted: bool = False  # stopped by the server's shutdown
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    last_summary: datetime | None = None
    saved_at: float = field(default_factory=time.monotonic)

    @property
    def clock(self) -> datetime:
        return self.tracker.times[-1]


class SessionManager:
    def __init__(
        self,
        kernel: Kernel,
        store: Store,
        *,
        fee_bps: Decimal,
        slippage_bps: Decimal,
        live_sources: LiveSources | None = None,
        datasets: Path | None = None,
    ) -> None:
        self.kernel = kernel
        self.live_sources = live_sources  # replays that go live (then_live) start these
        self.datasets = datasets  # where downloaded and imported datasets are stored
        self.repo = SessionRepo(store)
        self.fee_bps = fee_bps
        self.slippage_bps = slippage_bps
        self.runs: dict[str, Run] = {}
        self._pause_interrupted_live_agents(self.repo.mark_interrupted())

    def _pause_interrupted_live_agents(self, ids: list[str]) -> None:
        for session_id in ids:
            got = self.repo.get(session_id)
            for a in got["agents"] if got else []:
                agent = self.kernel.find(a["agent_id"] or "")
                if agent is not None:
                    self.kernel.pause(agent.id)

    # -- commands ---------------------------------------------------------------------------------
    async def start(self, spec: SessionSpec) -> dict[str, Any]:
        session_id = new_id()
        agent_specs = [self._agent_spec(spec, a) for a in spec.agents]
        if spec.kind == "replay":
            run = await self._replay_run(session_id, spec, agent_specs)
        else:
            run = await self._live_run(session_id, spec, agent_specs)
        window = run.window = self._window(spec, run)
        rows = [
            SessionAgentRow(
                session_id=session_id,
                position=i,
                name=a.name,
                role="agent",
                entrant=entrant(s.brain, s.params),
                spec=s.model_dump(mode="json"),
                agent_id=c.agent_id if spec.kind == "live" else None,
                start_equity=spec.cash,
                status="running",
            )
            for i, (a, s, c) in enumerate(
                zip(spec.agents, agent_specs, run.tracker.competitors, strict=True)
            )
        ]
        for i, name in enumerate((BUY_AND_HOLD, CASH), start=len(rows)):
            rows.append(
                SessionAgentRow(
                    session_id=session_id,
                    position=i,
                    name=name,
                    role="benchmark",
                    entrant=name,
                    spec={"brain": name, "params": {}},
                    start_equity=spec.cash,
                    status="benchmark",
                )
            )
        # every write to the main database holds the kernel's lock
        async with self.kernel.exclusive():
            self.repo.add(
                SessionRow(
                    id=session_id,
                    name=spec.name,
                    kind=spec.kind,
                    status=RUNNING,
                    spec=spec.model_dump(mode="json"),
                    window=window,
                    fingerprint=fingerprint(window),
                    created_at=now(),
                    ends_at=run.end if spec.kind == "live" else None,
                    clock=run.start,
                    times=[iso(run.start)],
                ),
                rows,
            )
        self.runs[session_id] = run
        drive = self._drive_replay if spec.kind == "replay" else self._drive_live
        run.task = asyncio.create_task(self._guard(run, drive), name=f"session-{session_id}")
        return self.get(session_id)

    async def stop(self, session_id: str) -> dict[str, Any]:
        """Stop early; the results so far are kept (status ``stopped``)."""
        run = self.runs.get(session_id)
        if run is None:
            got = self.get(session_id)
            raise SessionError(
                f"session {session_id} is {got['status']}, not running", code="conflict"
            )
        await self._halt(run)
        return self.get(session_id)

    async def aclose(self) -> None:
        """Server shutdown: running sessions save what they have and end ``interrupted``."""
        for run in list(self.runs.values()):
            run.interrupted = True
            await self._halt(run)

    @staticmethod
    async def _halt(run: Run) -> None:
        """Ask the run to stop (cooperatively: Python 3.11's ``wait_for`` can swallow a task
        cancellation) and wait for its results to be saved."""
        run.stop_requested = True
        run.wake.set()
        if run.feed is not None:
            run.feed.close()
        if run.task is not None:
            await asyncio.shield(run.task)

    # -- reads ------------------------------------------------------------------------------------
    def get(self, session_id: str, *, curves: bool = True) -> dict[str, Any]:
        got = self.repo.get(session_id)
        if got is None:
            raise SessionError(f"no session {session_id}", field="id", code="not_found")
        return self._view(got, curves=curves)

    def overview(self) -> list[dict[str, Any]]:
        return [self._view(s, curves=False) for s in self.repo.recent()]

    def summaries(self, session_id: str) -> list[dict[str, Any]]:
        self.get(session_id, curves=False)
        return self.repo.summaries(session_id)

    def _view(self, s: dict[str, Any], *, curves: bool) -> dict[str, Any]:
        run = self.runs.get(s["id"])
        if run is None:
            return session_view(s, curves=curves)
        wall = now() if s["kind"] == "live" else None
        return session_view(s, curves=curves, running=(run.clock, run.tracker.pnl(), wall))

    # -- building runs ----------------------------------------------------------------------------
    def _agent_spec(self, spec: SessionSpec, a: Any) -> AgentSpec:
        brain, params = resolve_strategy(a.brain, a.params)
        create_brain(brain, params, llm=self.kernel.llm)  # unknown strategy / params / endpoint
        return AgentSpec(
            name=a.name,
            brain=brain,
            params=params,
            goal=a.goal,
            allowance=spec.cash,
            symbols=spec.symbols,
            interval_seconds=a.interval_seconds or 60,
            risk=RiskProfile.model_validate(a.risk),
        )

    async def _replay_run(self, session_id: str, spec: SessionSpec, agents: list[AgentSpec]) -> Run:
        window = spec.replay
        assert window is not None
        feed: ReplayFeed | HandoverFeed
        if spec.then_live is not None:
            feed = await handover_feed(spec, self.live_sources)
            end = feed.clock.wall() + spec.then_live.live_duration  # planned: replays are fast
        else:
            assert window.end is not None
            feed, end = await self._recorded_feed(spec, window.end, self.datasets), window.end
        kernel = build_kernel(
            feed,
            PaperBroker(PaperBrokerConfig(fee_bps=self.fee_bps, slippage_bps=self.slippage_bps)),
            config=KernelConfig(
                persist_snapshots=False,
                await_slow_brains=True,
                price_guard=self.kernel.config.price_guard,
            ),
            llm=self.kernel.llm,
            warm_up=True,
        )
        missing = [s for s in spec.symbols if s not in kernel.marks]
        if missing:
            kernel.close()
            feed.close()
            raise SessionError(
                f"no price of {', '.join(missing)} before the window starts: start later",
                field="replay.start",
            )
        kernel.begin_at(window.start)
        comps = [Competitor(a.name, kernel.create_agent(a).id, spec.cash) for a in agents]
        tracker = Tracker(kernel, comps, spec.symbols, spec.cash, self.fee_bps, window.start)
        return Run(session_id, spec, kernel, tracker, feed.period, window.start, end, feed)

    @staticmethod
    async def _recorded_feed(spec: SessionSpec, end: datetime, datasets: Path | None) -> ReplayFeed:
        window = spec.replay
        assert window is not None
        try:
            data = {
                s: await asyncio.to_thread(_bars, window.dataset, s, datasets) for s in spec.symbols
            }
        except ValueError as exc:
            raise SessionError(str(exc), field="replay.dataset") from None
        bars = {s: [b for b in v if b.time < end] for s, v in data.items()}
        inside = {s: sum(1 for b in v if b.time >= window.start) for s, v in bars.items()}
        empty = [s for s, n in inside.items() if n == 0]
        if empty:
            first = min(v[0].time for v in data.values())
            last = max(v[-1].time for v in data.values())
            raise SessionError(
                f"no bars of {', '.join(empty)} in the window (dataset {window.dataset!r} covers "
                f"{iso(first)} to {iso(last)})",
                field="replay",
            )
        return ReplayFeed(
            bars, speed=window.speed, warmup_bars=spec.warmup_bars, start_after=window.start
        )

    async def _live_run(self, session_id: str, spec: SessionSpec, agents: list[AgentSpec]) -> Run:
        k = self.kernel
        unknown = [s for s in spec.symbols if s not in k.feed.instruments]
        if unknown:
            raise SessionError(
                f"unknown symbol(s) {unknown}; known: {sorted(k.feed.instruments)}",
                field="symbols",
            )
        missing = [s for s in spec.symbols if s not in k.marks]
        if missing:
            raise SessionError(f"no price of {', '.join(missing)} yet", field="symbols")
        duration = spec.live_duration
        tag = session_id[:6]
        async with k.exclusive():
            with k.unit():
                created = [
                    k.create_agent(a.model_copy(update={"name": f"{a.name[:60]} s{tag}"}))
                    for a in agents
                ]
        comps = [Competitor(a.name, c.id, spec.cash) for a, c in zip(agents, created, strict=True)]
        start = now()
        tracker = Tracker(k, comps, spec.symbols, spec.cash, self.fee_bps, start)
        period = max(duration / LIVE_SAMPLES, timedelta(seconds=1))
        return Run(
            session_id, spec, k, tracker, min(period, timedelta(minutes=1)), start, start + duration
        )

    def _window(self, spec: SessionSpec, run: Run) -> dict[str, Any]:
        source = (
            f"dataset:{spec.replay.dataset}"
            if spec.replay is not None and spec.kind == "replay"
            else f"live:{type(self.kernel.feed).__name__}"
        )
        if spec.then_live is not None:
            source += f"+live:{spec.then_live.source}"
        return {
            "source": source,
            "symbols": sorted(spec.symbols),
            "start": iso(run.start),
            "end": iso(run.end),
            "period_seconds": run.period.total_seconds(),
            "fee_bps": format(self.fee_bps, "f"),
        }

    # -- driving ----------------------------------------------------------------------------------
    async def _guard(self, run: Run, drive: Any) -> None:
        status, error = "finished", None
        try:
            await drive(run)
            if run.interrupted:
                status, error = "interrupted", "the server stopped while the session ran"
            elif run.stop_requested:
                status = "stopped"
        except asyncio.CancelledError:
            status, error = "interrupted", "the server stopped while the session ran"
        except Exception as exc:  # a failing session ends with its error; the server goes on
            log.exception("session %s failed", run.id)
            status, error = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            async with self.kernel.exclusive():
                if run.spec.kind == "live":
                    self._pause_live(run)
                self._save(run, status=status, error=error)
            self.runs.pop(run.id, None)
            if run.spec.kind == "replay":
                run.kernel.close()
                if run.kernel.llm is not None:  # its agents call no model any more
                    run.kernel.llm.unwatch(run.kernel)
        if status != "interrupted":
            await self._summarise(run, "final")

    async def _drive_replay(self, run: Run) -> None:
        kernel = run.kernel

        def sampled(tick: Tick) -> bool:
            """Sample the competitors; end the batch when results are due to be saved."""
            run.tracker.sample(tick.time)
            return self._summary_due(run) or time.monotonic() - run.saved_at > FLUSH_SECONDS

        driver = TickDriver(
            kernel,
            batch=TICKS_PER_TRANSACTION,
            observe=sampled,
            stopped=lambda: run.stop_requested,
        )
        while not await driver.step_batch():
            async with self.kernel.exclusive():
                self._save(run)
            if self._summary_due(run):
                await self._summarise(run, "periodic")
        mismatches = kernel.audit()
        if mismatches:
            raise RuntimeError(f"the ledger does not reconcile: {mismatches}")

    async def _drive_live(self, run: Run) -> None:
        while not run.stop_requested and now() < run.end:
            wait = min(run.period.total_seconds(), (run.end - now()).total_seconds())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.wake.wait(), timeout=max(wait, 0.0))
            async with self.kernel.exclusive():
                run.tracker.sample(min(now(), run.end))
                self._save(run)
            if self._summary_due(run):
                await self._summarise(run, "periodic")

    def _pause_live(self, run: Run) -> None:
        for c in run.tracker.competitors:
            agent = self.kernel.find(c.agent_id)
            if agent is not None:
                self.kernel.pause(agent.id)

    def _save(self, run: Run, *, status: str = RUNNING, error: str | None = None) -> None:
        """Write the results so far (hold ``self.kernel.exclusive()``)."""
        results = run.tracker.results(run.period)
        span = (run.end - run.start).total_seconds()
        fields: dict[str, Any] = {
            "status": status,
            "clock": run.clock,
            "progress": min(1.0, (run.clock - run.start).total_seconds() / span),
            "times": [iso(t) for t in run.tracker.times],
            "error": error,
        }
        if isinstance(run.feed, HandoverFeed):  # the end is known from the hand-over on
            run.end = run.feed.end or run.end
            run.window.update(end=iso(run.end), **window_parts(run.feed))
            fields.update(window=run.window, fingerprint=fingerprint(run.window))
        if status != RUNNING:
            fields["finished_at"] = now()
            if run.clock < run.end:  # cut short: the market window is the part that ran
                window = dict(run.window)
                window.update(planned_end=window["end"], end=iso(run.clock))
                fields.update(window=window, fingerprint=fingerprint(window))
            for r in results.values():
                if r["status"] == "running":
                    r["status"] = "finished"
        self.repo.save_results(run.id, fields, results)
        run.saved_at = time.monotonic()

    # -- summaries --------------------------------------------------------------------------------
    def _summary_due(self, run: Run) -> bool:
        every = run.spec.summary_every_hours
        if every is None:
            return False
        since = run.last_summary or run.start
        return run.clock - since >= timedelta(hours=every)

    async def _summarise(self, run: Run, kind: str) -> None:
        run.last_summary = run.clock
        session = self.repo.get(run.id)
        if session is None:
            return
        await self.write_summary(session, kind)

    async def write_summary(self, session: dict[str, Any], kind: str) -> int:
        """A summary of ``session`` as it is stored now: by the configured model when there is
        one (prompt and output stored here and in the LLM audit trail), else from the template;
        a model that fails falls back to the template with the error kept."""
        row = await summaries.summary_row(session, kind, now(), self.kernel.llm)
        async with self.kernel.exclusive():
            return self._store_summary(row)

    def _store_summary(self, row: SessionSummaryRow) -> int:
        summary_id = self.repo.add_summary(row)
        if row.prompt is not None:
            self.repo.store.add_llm_calls(
                f"summary-{summary_id}",
                row.session_id,
                row.created_at,
                [
                    {
                        "purpose": "summary",
                        "endpoint": row.endpoint,
                        "model": row.model,
                        "messages": row.prompt,
                        "raw_response": row.raw_output,
                        "error": row.error,
                        "latency_seconds": row.latency_seconds,
                        "tokens_in": row.tokens_in,
                        "tokens_out": row.tokens_out,
                    }
                ],
            )
        return summary_id
