"""What a backtest is, without running it: building agents and configurations, loading the bars,
and the result types. Light on purpose (no kernel, broker, store or LLM runtime): the research
engine (:mod:`phantomex.research.fast`) and the CLI use it without importing the exact kernel;
:mod:`phantomex.research.backtest` runs a configuration on that kernel and re-exports these names.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import ValidationError

from phantomex.brains.registry import ALIASES, resolve_strategy
from phantomex.domain.agent import AgentSpec
from phantomex.domain.models import Bar
from phantomex.domain.risk import RiskProfile
from phantomex.market.columns import BarColumns, common_step
from phantomex.market.loaders import infer_symbol, load_bars, load_dataset
from phantomex.research.metrics import TradeRecord
from phantomex.serialize import iso, jsonable

__all__ = [
    "ALIASES",
    "BACKTEST_RISK",
    "OUTCOME",
    "AgentResult",
    "BacktestConfig",
    "BacktestError",
    "BacktestResult",
    "Fill",
    "Progress",
    "agent_from_toml",
    "bar_period",
    "bar_times",
    "first_error",
    "load_data",
    "resolve_strategy",
    "risk_profile",
    "select_window",
    "strategy_agent",
]

Fill = Literal["next_open", "close"]
Progress = Callable[[int, int], None]

#: All-in / all-out: the whole equity per buy and per position, no exits forced by risk rules.
BACKTEST_RISK = RiskProfile(
    max_allocation_pct=Decimal(100),
    max_position_pct=Decimal(100),
    stop_loss_pct=None,
    take_profit_pct=None,
    daily_loss_limit_pct=None,
    max_drawdown_pct=None,
    cooldown_seconds=0,
    min_order_notional=Decimal(0),
)

#: The fields of a recorded decision that are its outcome, not the decision: a market order
#: resting for the next open gets its status, fill price and time when that bar comes.
OUTCOME = ("status", "price", "reason", "resolved_at")


class BacktestError(ValueError):
    """A backtest that cannot run (bad input) or that failed."""


# -- building a configuration --------------------------------------------------------------------
def risk_profile(overrides: Mapping[str, Any] | None = None) -> RiskProfile:
    """:data:`BACKTEST_RISK` with ``overrides`` (RiskProfile field names)."""
    try:
        return RiskProfile.model_validate({**BACKTEST_RISK.model_dump(), **dict(overrides or {})})
    except ValidationError as exc:
        raise BacktestError(f"invalid risk setting: {first_error(exc)}") from None


def strategy_agent(
    strategy: str,
    params: Mapping[str, Any] | None = None,
    *,
    symbols: Sequence[str],
    cash: Decimal = Decimal(10_000),
    risk: Mapping[str, Any] | RiskProfile | None = None,
    name: str | None = None,
    interval_seconds: int = 1,
) -> AgentSpec:
    """An agent running ``strategy`` (a registered strategy or an alias). ``interval_seconds``
    1 decides on every bar; ``risk`` overrides :data:`BACKTEST_RISK`."""
    brain, merged = resolve_strategy(strategy, params)
    profile = risk if isinstance(risk, RiskProfile) else risk_profile(risk)
    try:
        return AgentSpec(
            name=name or strategy,
            brain=brain,
            params=merged,
            symbols=list(symbols),
            allowance=cash,
            interval_seconds=interval_seconds,
            risk=profile,
        )
    except ValidationError as exc:
        raise BacktestError(f"invalid agent {name or strategy!r}: {first_error(exc)}") from None


def agent_from_toml(
    path: str | Path,
    *,
    symbols: Sequence[str],
    cash: Decimal = Decimal(10_000),
    risk: Mapping[str, Any] | None = None,
    interval_seconds: int = 1,
) -> AgentSpec:
    """An agent from a TOML file with the fields of :class:`AgentSpec` (``strategy`` is accepted
    for ``brain``, aliases included). Missing fields: ``name`` = the file's stem, ``symbols``,
    ``allowance`` (= ``cash``) and ``interval_seconds`` from the arguments; the ``[risk]`` table
    overrides ``risk`` which overrides :data:`BACKTEST_RISK`."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BacktestError(f"cannot read agent file {p}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BacktestError(f"{p}: invalid TOML: {exc}") from None
    strategy = data.pop("strategy", None) or data.pop("brain", None)
    if not isinstance(strategy, str):
        raise BacktestError(f"{p}: needs `brain` (or `strategy`): the strategy to run")
    if data.get("mode", "autonomous") != "autonomous":
        raise BacktestError(f"{p}: backtests run autonomous agents (nobody approves trades)")
    brain, params = resolve_strategy(strategy, data.pop("params", {}))
    table = data.pop("risk", {})
    if not isinstance(table, dict):
        raise BacktestError(f"{p}: `risk` must be a table")
    spec = {
        "name": p.stem,
        "symbols": list(symbols),
        "allowance": cash,
        "interval_seconds": interval_seconds,
        **data,
        "brain": brain,
        "params": params,
        "risk": risk_profile({**dict(risk or {}), **table}),
    }
    try:
        return AgentSpec.model_validate(spec)
    except ValidationError as exc:
        raise BacktestError(f"{p}: {first_error(exc)}") from None


def load_data(
    files: Iterable[str | Path] = (),
    dataset: str | None = None,
    symbols: Sequence[str] | None = None,
    *,
    datasets: Path | None = None,
    columns: bool = False,
) -> tuple[dict[str, Sequence[Bar]], list[str]]:
    """Bars keyed by symbol from OHLCV files (``PATH`` or ``SYMBOL=PATH``; the symbol is
    otherwise inferred from the file name) and/or a dataset (shipped, or stored in
    ``datasets``); restricted to ``symbols`` when given. Returns the bars and a description of
    the sources. With ``columns`` the bars are :class:`~phantomex.market.columns.BarColumns`
    (the same bars, for the research engine)."""
    read_file: Callable[[str, str], Sequence[Bar]] = load_bars
    read_dataset: Callable[..., Mapping[str, Sequence[Bar]]] = load_dataset
    if columns:
        from phantomex.market.column_loaders import load_columns, load_dataset_columns

        read_file, read_dataset = load_columns, load_dataset_columns
    wanted = [s.strip().upper() for s in symbols or () if s.strip()]
    data: dict[str, Sequence[Bar]] = {}
    sources: list[str] = []
    for item in files:
        text = str(item)
        sym: str | None = None
        path = text
        head, sep, tail = text.partition("=")
        if sep and head and "/" not in head and not Path(text).exists():
            sym, path = head.strip().upper(), tail
        try:
            sym = sym or infer_symbol(path)
            if wanted and sym not in wanted:
                continue
            if sym in data:
                raise BacktestError(f"two data files for {sym} (the second: {path})")
            data[sym] = read_file(path, sym)
        except BacktestError:
            raise
        except ValueError as exc:
            raise BacktestError(str(exc)) from None
        sources.append(f"{sym}={path}")
    if dataset:
        try:
            loaded = read_dataset(dataset, wanted or None, datasets=datasets)
        except ValueError as exc:
            raise BacktestError(str(exc)) from None
        for sym, bars in loaded.items():
            if sym in data:
                raise BacktestError(f"{sym} comes both from a file and from dataset {dataset!r}")
            data[sym] = bars
            sources.append(f"{sym}=dataset:{dataset}")
    missing = [s for s in wanted if s not in data]
    if missing:
        raise BacktestError(f"no data for {', '.join(missing)} (loaded: {', '.join(data) or '-'})")
    if not data:
        raise BacktestError("no data: give --data FILE or --dataset NAME")
    return ({s: data[s] for s in wanted} if wanted else data), sources


def select_window(
    data: Mapping[str, Sequence[Bar]], start: datetime | None, end: datetime | None
) -> dict[str, Sequence[Bar]]:
    """The bars opening in ``[start, end)``; symbols left without bars are dropped."""
    out: dict[str, Sequence[Bar]] = {}
    for sym, bars in data.items():
        kept: Sequence[Bar]
        if isinstance(bars, BarColumns):
            kept = bars.between(start, end)
        elif start is None and end is None:
            kept = list(bars)
        else:
            kept = [
                b
                for b in bars
                if (start is None or b.time >= start) and (end is None or b.time < end)
            ]
        if kept:
            out[sym] = kept
    return out


def bar_times(data: Mapping[str, Sequence[Bar]]) -> list[datetime]:
    """Every bar's open time, once, in order."""
    columns = [bars for bars in data.values() if isinstance(bars, BarColumns)]
    if len(columns) == len(data):
        empty = np.empty(0, dtype=np.int64)
        opens = np.unique(np.concatenate([b.time_us for b in columns] or [empty]))
        epoch = datetime(1970, 1, 1, tzinfo=UTC)
        return [epoch + timedelta(microseconds=us) for us in opens.tolist()]
    return sorted({b.time for bars in data.values() for b in bars})


def bar_period(data: Mapping[str, Sequence[Bar]]) -> timedelta:
    """The most common spacing between consecutive bars (smallest on a tie; 1 minute when
    there is none), as the replay feed infers it."""
    if data and all(isinstance(bars, BarColumns) for bars in data.values()):
        return common_step(data)  # type: ignore[arg-type]
    steps: Counter[timedelta] = Counter()
    for bars in data.values():
        steps.update(b.time - a.time for a, b in pairwise(bars))
    steps = Counter({k: v for k, v in steps.items() if k > timedelta(0)})
    if not steps:
        return timedelta(minutes=1)
    return max(steps.items(), key=lambda kv: (kv[1], -kv[0]))[0]


@dataclass(frozen=True)
class BacktestConfig:
    """What a backtest runs: the data, the agents and the market model.

    ``end`` is exclusive (bars opening before it). ``sources`` only describes the data (for
    reports). ``record_decisions`` keeps every decision record in the result (for analysis and
    tests; a hold per agent and bar): what was decided, then its outcome (:data:`OUTCOME`)."""

    data: Mapping[str, Sequence[Bar]]
    agents: Sequence[AgentSpec]
    fee_bps: Decimal = Decimal(10)
    slippage_bps: Decimal = Decimal(0)
    fill: Fill = "next_open"
    start: datetime | None = None
    end: datetime | None = None
    sources: Sequence[str] = ()
    record_decisions: bool = False

    def describe(self) -> dict[str, Any]:
        """The configuration as JSON (for the ``--json`` output and reports)."""
        return jsonable(
            {
                "data": list(self.sources),
                "symbols": list(self.data),
                "from": self.start,
                "until": self.end,
                "fill": self.fill,
                "fee_bps": self.fee_bps,
                "slippage_bps": self.slippage_bps,
                "agents": [
                    {
                        "name": a.name,
                        "brain": a.brain,
                        "params": a.params,
                        "symbols": a.symbols,
                        "allowance": a.allowance,
                        "interval_seconds": a.interval_seconds,
                        "risk": a.risk.model_dump(mode="json"),
                    }
                    for a in self.agents
                ],
            }
        )


@dataclass
class AgentResult:
    name: str
    spec: AgentSpec
    trades: list[TradeRecord]
    equity: Sequence[Decimal]  # starting capital, then one value per bar (marked to the close)
    in_market: Sequence[bool]  # per bar: a position was open at the close
    metrics: dict[str, Any]
    decisions: list[dict[str, Any]] = field(default_factory=list)
    status: str = "running"
    #: an LLM agent's figures (:func:`~phantomex.research.llm_figures.llm_figures`), else None
    llm: dict[str, Any] | None = None

    @property
    def final_equity(self) -> Decimal:
        return self.equity[-1]


@dataclass(repr=False)
class BacktestResult:
    config: BacktestConfig
    data: Mapping[str, Sequence[Bar]]  # the bars replayed (after the time window)
    period: timedelta
    times: Sequence[datetime]  # the starting time, then each bar's close time
    agents: list[AgentResult]
    equity: Sequence[Decimal]  # all agents together
    metrics: dict[str, Any]  # of ``equity`` and every trade
    elapsed_seconds: float
    errors: list[str] = field(default_factory=list)
    #: "exact" (this module's kernel) or "fast" (:mod:`phantomex.research.fast`)
    engine: str = "exact"
    #: why the exact kernel ran when the research engine was asked for
    engine_note: str | None = None

    def __repr__(self) -> str:
        # Short: asyncio.run (Python 3.11) formats the finished task's result when it restores
        # the SIGINT handler, and a full dataclass repr walks every bar's equity.
        return (
            f"BacktestResult({self.bars} bars, {len(self.agents)} agents, "
            f"final equity {self.final_equity})"
        )

    @property
    def bars(self) -> int:
        return len(self.times) - 1

    @property
    def trades(self) -> list[TradeRecord]:
        if len(self.agents) == 1:
            return self.agents[0].trades
        order = {a.name: i for i, a in enumerate(self.agents)}
        merged = [t for a in self.agents for t in a.trades]
        return sorted(merged, key=lambda t: (t.time, order[t.agent]))  # stable: fill order kept

    @property
    def final_equity(self) -> Decimal:
        return self.equity[-1]

    def trades_json(self, *, several: bool) -> list[dict[str, Any]]:
        """The trades as JSON (each with its ``agent`` when there are ``several``)."""
        return [t.to_json(with_agent=several) for t in self.trades]

    def to_json(self) -> dict[str, Any]:
        """One JSON object; the same run gives the same object except ``elapsed_seconds``.

        With several agents, ``trades`` (each with its ``agent``), ``final_equity`` and
        ``metrics`` are of all agents together (their summed equity) and ``agents`` has each
        one's own figures."""
        several = len(self.agents) > 1
        out: dict[str, Any] = {
            "bars": self.bars,
            "start": iso(self.times[0]),
            "end": iso(self.times[-1]),
            "period_seconds": self.period.total_seconds(),
            "trades": self.trades_json(several=several),
            "final_equity": format(self.final_equity, "f"),
            "metrics": self.metrics,
        }
        if several:
            out["agents"] = [
                {
                    "name": a.name,
                    "brain": a.spec.brain,
                    "params": jsonable(a.spec.params),
                    "status": a.status,
                    "trades": len(a.trades),
                    "final_equity": format(a.final_equity, "f"),
                    "metrics": a.metrics,
                    **({"llm": jsonable(a.llm)} if a.llm is not None else {}),
                }
                for a in self.agents
            ]
        else:
            if self.agents[0].status != "running":
                out["status"] = self.agents[0].status
            if self.agents[0].llm is not None:
                out["llm"] = jsonable(self.agents[0].llm)
        if self.errors:
            out["errors"] = list(self.errors)
        out["engine"] = self.engine
        if self.engine_note:
            out["engine_note"] = self.engine_note
        out["config"] = self.config.describe()
        out["elapsed_seconds"] = round(self.elapsed_seconds, 3)
        return out


def first_error(exc: ValidationError) -> str:
    """A validation error's first problem on one line (``field: message``)."""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg')}" if where else str(first.get("msg"))
