"""Research tools: backtests and optimisations as jobs, sessions, the leaderboard."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field

from phantomex.domain.inputs import Ident, Money
from phantomex.mcp_server.registry import PhantomexMCP
from phantomex.mcp_server.toolsets import Kind
from phantomex.mcp_server.untrusted import mark
from phantomex.research.jobs import BacktestRequest, JobRunner, OptimiseRequest
from phantomex.serialize import jsonable
from phantomex.sessions.board import board
from phantomex.sessions.leaderboard import METRICS
from phantomex.sessions.manager import SessionManager
from phantomex.sessions.spec import SessionSpec

Json = dict[str, Any]
TRADES_SHOWN = 50  # trades of a backtest result returned inline (the count is always given)
Strategy = Annotated[
    str, Field(description="A rule strategy or alias (resource phantomex://strategies).")
]
Dataset = Annotated[str, Field(description="A stored dataset, e.g. demo (the shipped month).")]
Symbols = Annotated[list[str], Field(description="Symbols of the dataset (default: all).")]
Params = Annotated[dict[str, Any], Field(description="The strategy's parameters.")]


def register(mcp: PhantomexMCP, jobs: JobRunner, sessions: SessionManager) -> None:
    async def start_backtest(
        strategy: Strategy,
        dataset: Dataset = "demo",
        params: Params | None = None,
        symbols: Symbols | None = None,
        cash: Money = Decimal(10_000),
        fee_bps: Annotated[Decimal, Field(ge=0, le=1000)] = Decimal(10),
        engine: Literal["exact", "fast"] = "exact",
    ) -> Json:
        job = jobs.start_backtest(
            BacktestRequest(
                strategy=strategy,
                dataset=dataset,
                params=params or {},
                symbols=symbols or (),
                cash=cash,
                fee_bps=fee_bps,
                engine=engine,
            )
        )
        return job.status()

    async def start_optimisation(
        strategy: Strategy,
        space: Annotated[
            list[str],
            Field(min_length=1, description="Parameters to search: name=low:high[:step]."),
        ],
        dataset: Dataset = "demo",
        params: Params | None = None,
        symbols: Symbols | None = None,
        trials: Annotated[int, Field(ge=1, le=500)] = 20,
        objective: str = "sharpe",
    ) -> Json:
        job = jobs.start_optimise(
            OptimiseRequest(
                strategy=strategy,
                dataset=dataset,
                space=space,
                symbols=symbols or (),
                params=params or {},
                trials=trials,
                objective=objective,
            )
        )
        return job.status()

    async def job_status(job_id: str) -> Json:
        return jobs.get(job_id).status()

    async def job_result(job_id: str, trades: Annotated[int, Field(ge=0, le=1000)] = 10) -> Json:
        job = jobs.get(job_id)
        out = job.status()
        if job.result is not None:
            result = dict(job.result)
            if "trades" in result:
                result["trade_count"] = len(result["trades"])
                result["trades"] = result["trades"][: min(trades, TRADES_SHOWN)]
            out["result"] = result
        return out

    async def list_jobs() -> Json:
        return {"jobs": [j.status() for j in jobs.list()]}

    async def start_session(spec: SessionSpec) -> Json:
        return mark(await sessions.start(spec))

    async def stop_session(session_id: Ident) -> Json:
        return mark(await sessions.stop(session_id))

    async def list_sessions() -> Json:
        return {"sessions": mark(sessions.overview())}

    async def get_session(session_id: Ident) -> Json:
        return mark(jsonable(sessions.get(session_id, curves=False)))

    async def leaderboard(
        session_id: Ident | None = None,
        by: Annotated[str, Field(description=f"One of: {', '.join(METRICS)}.")] = "total_return",
        confidence: Annotated[float, Field(gt=0.5, lt=1)] = 0.95,
    ) -> Json:
        return mark(board(sessions, session_id, by=by, confidence=confidence))

    mcp.add(
        Kind.RESEARCH,
        start_backtest,
        "Start a backtest of a rule strategy over a stored dataset; returns a job (poll "
        "job_status, then job_result). Paper only: no agent or wallet changes.",
    )
    mcp.add(
        Kind.RESEARCH,
        start_optimisation,
        "Start an Optuna search of a strategy's parameters (in-sample, then out-of-sample); "
        "returns a job.",
    )
    mcp.add(Kind.READ, job_status, "A research job's state and progress (done of total).")
    mcp.add(
        Kind.READ,
        job_result,
        "A research job's result when done: metrics, final equity, the first trades.",
    )
    mcp.add(Kind.READ, list_jobs, "Research jobs of this server run (kept until a restart).")
    mcp.add(
        Kind.RESEARCH,
        start_session,
        "Start a session: agents side by side on the same market (replay of a window, or live "
        "for a duration), each with the same paper cash.",
    )
    mcp.add(Kind.RESEARCH, stop_session, "Stop a session early; its results so far are kept.")
    mcp.add(
        Kind.READ,
        list_sessions,
        "Sessions, newest first, with elapsed time and each agent's P&L.",
        untrusted=True,
    )
    mcp.add(Kind.READ, get_session, "One session with its agents' results.", untrusted=True)
    mcp.add(
        Kind.READ,
        leaderboard,
        "Agents and models ranked across finished sessions with bootstrap intervals; says "
        "whether a difference between two entrants is significant or noise.",
        untrusted=True,
    )
