"""Research jobs on a running server: start → status (with progress) → result.

A backtest or an optimisation runs in a worker thread, one job at a time (research is CPU-bound
and a small server also trades), so the event loop and the live kernel keep their pace. Jobs
live in memory: a restart forgets them (their inputs are in the request, and a backtest repeats
exactly). Front ends (the MCP server) start and read them; nothing here touches the kernel."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from phantomex.brains.registry import create_brain
from phantomex.research.spec import (
    BacktestConfig,
    BacktestError,
    bar_period,
    load_data,
    select_window,
    strategy_agent,
)

JobKind = Literal["backtest", "optimise"]
JobState = Literal["queued", "running", "done", "failed"]
KEEP = 50  # finished jobs kept (the oldest are forgotten first)


class JobNotFound(LookupError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no research job {job_id!r} (jobs are kept in memory until a restart)")
        self.job_id = job_id


@dataclass
class Job:
    """One research job and what is known of it so far."""

    id: str
    kind: JobKind
    request: dict[str, Any]
    state: JobState = "queued"
    done: int = 0
    total: int = 0
    started: float | None = None
    finished: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    def status(self) -> dict[str, Any]:
        """State and progress (``done`` of ``total`` steps: bars for a backtest, trials for an
        optimisation)."""
        elapsed = None
        if self.started is not None:
            elapsed = round((self.finished or time.monotonic()) - self.started, 3)
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "progress": {"done": self.done, "total": self.total},
            "elapsed_seconds": elapsed,
            "error": self.error,
            "request": self.request,
        }


@dataclass(frozen=True)
class BacktestRequest:
    """A rule-strategy backtest over a stored dataset (the CLI's ``backtest`` options)."""

    strategy: str
    dataset: str
    params: Mapping[str, Any] = field(default_factory=dict)
    symbols: Sequence[str] = ()
    cash: Decimal = Decimal(10_000)
    fee_bps: Decimal = Decimal(10)
    slippage_bps: Decimal = Decimal(0)
    engine: Literal["exact", "fast"] = "exact"
    start: Any = None  # datetime | None
    end: Any = None


@dataclass(frozen=True)
class OptimiseRequest:
    """An Optuna search of ``space`` (``name=low:high[:step]`` items, as the CLI's ``--space``)."""

    strategy: str
    dataset: str
    space: Sequence[str]
    symbols: Sequence[str] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    trials: int = 20
    objective: str = "sharpe"
    cash: Decimal = Decimal(10_000)
    fee_bps: Decimal = Decimal(10)
    split: float = 0.7


class JobRunner:
    """Runs research jobs one at a time in a worker thread."""

    def __init__(self, keep: int = KEEP) -> None:
        self._jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._keep = keep
        self._one_at_a_time = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()

    def start_backtest(self, request: BacktestRequest) -> Job:
        config = backtest_config(request)  # bad input fails here, before a job exists
        return self._start(
            "backtest", _describe(request), lambda job: _backtest(config, request, job)
        )

    def start_optimise(self, request: OptimiseRequest) -> Job:
        work = optimise_work(request)
        return self._start("optimise", _describe(request), work)

    def get(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def list(self) -> list[Job]:
        return list(self._jobs.values())

    async def aclose(self) -> None:
        """Wait for running jobs (a thread cannot be interrupted; each is bounded by its data)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def _start(
        self, kind: JobKind, request: dict[str, Any], work: Callable[[Job], dict[str, Any]]
    ) -> Job:
        job = Job(f"{kind}-{next(self._ids)}", kind, request)
        self._jobs[job.id] = job
        self._forget_old()
        task = asyncio.get_running_loop().create_task(self._run(job, work), name=job.id)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _run(self, job: Job, work: Callable[[Job], dict[str, Any]]) -> None:
        def run() -> None:
            with self._one_at_a_time:
                job.state, job.started = "running", time.monotonic()
                try:
                    job.result = work(job)
                    job.state = "done"
                except (BacktestError, ValueError) as exc:
                    job.error, job.state = str(exc), "failed"
                except Exception as exc:  # a job's failure is its own, never the server's
                    job.error, job.state = f"{type(exc).__name__}: {exc}", "failed"
                finally:
                    job.finished = time.monotonic()

        await asyncio.to_thread(run)

    def _forget_old(self) -> None:
        finished = [j for j in self._jobs.values() if j.state in ("done", "failed")]
        for job in finished[: max(0, len(finished) - self._keep)]:
            del self._jobs[job.id]


def backtest_config(request: BacktestRequest) -> BacktestConfig:
    """The configuration of ``request`` (raises :class:`BacktestError` on bad input)."""
    bars, sources = load_data((), request.dataset, list(request.symbols) or None)
    bars = select_window(bars, request.start, request.end)
    if not bars:
        raise BacktestError("no bars in the requested window")
    interval = max(1, int(bar_period(bars).total_seconds()))
    create_brain(request.strategy, request.params)  # an unknown strategy or parameter: now
    spec = strategy_agent(
        request.strategy,
        dict(request.params),
        symbols=list(bars),
        cash=request.cash,
        interval_seconds=interval,
    )
    return BacktestConfig(
        data=bars,
        agents=[spec],
        fee_bps=request.fee_bps,
        slippage_bps=request.slippage_bps,
        start=request.start,
        end=request.end,
        sources=sources,
    )


def _backtest(config: BacktestConfig, request: BacktestRequest, job: Job) -> dict[str, Any]:
    from phantomex.research.backtest import run_backtest

    def progress(done: int, total: int) -> None:
        job.done, job.total = done, total

    from phantomex.research.fast import run_engine

    result = run_engine(config, engine=request.engine, run=run_backtest, progress=progress)
    return result.to_json()


def optimise_work(request: OptimiseRequest) -> Callable[[Job], dict[str, Any]]:
    """The optimisation of ``request`` as a job's work (bad input raises here, at once)."""
    from phantomex.research.optimize import Market, make_windows, parse_space

    space = parse_space(list(request.space))
    create_brain(request.strategy, request.params)
    bars, _ = load_data((), request.dataset, list(request.symbols) or None)
    times = sorted({b.time for bs in bars.values() for b in bs})
    windows = make_windows(times, split=request.split)
    if not 1 <= request.trials <= 500:
        raise ValueError("trials must be between 1 and 500")
    market = Market(
        data=bars,
        strategy=request.strategy,
        fixed=dict(request.params),
        cash=request.cash,
        fee_bps=request.fee_bps,
        interval_seconds=max(1, int(bar_period(bars).total_seconds())),
    )

    def work(job: Job) -> dict[str, Any]:
        from phantomex.research.optimize import local_runner, optimize
        from phantomex.store.repo import Store

        def progress(done: int, total: int) -> None:
            job.done, job.total = done, total

        store = Store("sqlite://")  # the study lives with the job, not in the server's database
        try:
            with local_runner(market, 1) as run:
                result = optimize(
                    market,
                    space,
                    windows,
                    runner=run,
                    store=store,
                    study=job.id,
                    trials=request.trials,
                    objective=request.objective,
                    progress=progress,
                )
        finally:
            store.close()
        out = result.to_json()
        out["errors"] = result.errors
        return out

    return work


def _describe(request: BacktestRequest | OptimiseRequest) -> dict[str, Any]:
    from phantomex.serialize import jsonable

    return dict(jsonable(request.__dict__))
