"""``phantomex backtest``: run agents over recorded bars on the live kernel (see
:mod:`phantomex.research.backtest`) or the research engine. The command's options are in
:mod:`phantomex.cli.backtest_command` (Typer); this module imports neither Typer nor Rich, so
:mod:`phantomex.cli.lean` can run a plain backtest without them."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from phantomex.cli.collector import collections_paused, collections_resumed, skip_exit_gc

if TYPE_CHECKING:
    from phantomex.research.spec import BacktestConfig, BacktestResult


class FillChoice(enum.StrEnum):
    next_open = "next_open"
    close = "close"


class EngineChoice(enum.StrEnum):
    exact = "exact"
    fast = "fast"


def parse_assignments(
    items: list[str] | None, what: str, *, numbers_as_text: bool = False
) -> dict[str, Any]:
    """``key=value`` pairs; values are read as JSON when they parse (10, 0.5, true, null,
    [10, 30]) and kept as text otherwise; ``none`` is null. With ``numbers_as_text`` numbers stay
    text (exact decimals for money and percentages)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"{what} must look like key=value, got {item!r}")
        text = raw.strip()
        value: Any
        if text.lower() in ("none", "null", "off"):
            value = None
        else:
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                value = text
            if numbers_as_text and isinstance(value, int | float) and not isinstance(value, bool):
                value = text
        out[key] = value
    return out


def parse_when(text: str | None, *, end: bool) -> datetime | None:
    """An ISO date or date-time (UTC unless it says otherwise). For ``--to`` (``end``) the
    result is exclusive: a date includes that whole day, a time includes the bar opening then."""
    if text is None:
        return None
    s = text.strip()
    try:
        day = date.fromisoformat(s)
    except ValueError:
        day = None
    if day is not None and len(s) <= 10:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if end else start
    try:
        when = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO date or date-time: {text!r}") from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when + timedelta(microseconds=1) if end else when


def decimal_option(text: str, what: str, *, positive: bool = False) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{what} must be a number, got {text!r}") from None
    if not value.is_finite() or value < 0 or (positive and value == 0):
        raise ValueError(f"{what} must be {'positive' if positive else 'zero or more'}")
    return value


@dataclass(frozen=True)
class BacktestOptions:
    """The options of ``phantomex backtest`` as its command line gives them (see
    :mod:`phantomex.cli.backtest_command` for their help)."""

    data: list[str] | None = None
    dataset: str | None = None
    symbols: str | None = None
    start: str | None = None
    stop: str | None = None
    strategy: str | None = None
    param: list[str] | None = None
    agent: list[Path] | None = None
    cash: str = "10000"
    fee_bps: str = "10"
    slippage_bps: str = "0"
    fill: FillChoice = FillChoice.next_open
    risk: list[str] | None = None
    as_json: bool = False
    report: Path | None = None
    blind: bool = False
    blind_seed: int | None = None
    llm_cache: bool = True
    engine: EngineChoice = EngineChoice.exact


def backtest(o: BacktestOptions) -> None:
    """``phantomex backtest``: the run and its report. Imports neither Typer nor Rich until it
    prints a table or an error (a ``--json`` run on the research engine needs neither)."""
    from phantomex.research.spec import (
        BacktestConfig,
        BacktestError,
        agent_from_toml,
        bar_period,
        load_data,
        strategy_agent,
    )

    with collections_paused():
        try:
            if not o.strategy and not o.agent:
                raise ValueError("give --strategy NAME (with --param key=value) or --agent FILE")
            if not o.data and not o.dataset:
                raise ValueError("give --data FILE or --dataset NAME")
            wanted = [s for s in (o.symbols or "").split(",") if s.strip()] or None
            datasets = _datasets_dir() if o.dataset else None
            # as columns for either engine (the same bars as rows, read without a Decimal bar
            # per row); a blind run disguises Bar lists
            bars, sources = load_data(
                o.data or [], o.dataset, wanted, datasets=datasets, columns=not o.blind
            )
            when_from = parse_when(o.start, end=False)
            when_to = parse_when(o.stop, end=True)
            money = decimal_option(o.cash, "--cash", positive=True)
            interval = max(1, int(bar_period(bars).total_seconds()))
            overrides = parse_assignments(o.risk, "--risk", numbers_as_text=True)
            specs = []
            if o.strategy:
                specs.append(
                    strategy_agent(
                        o.strategy,
                        parse_assignments(o.param, "--param"),
                        symbols=list(bars),
                        cash=money,
                        risk=overrides,
                        interval_seconds=interval,
                    )
                )
            elif o.param:
                raise ValueError("--param goes with --strategy (an --agent file has its params)")
            for path in o.agent or []:
                specs.append(
                    agent_from_toml(
                        path,
                        symbols=list(bars),
                        cash=money,
                        risk=overrides,
                        interval_seconds=interval,
                    )
                )
            config = BacktestConfig(
                data=bars,
                agents=specs,
                fee_bps=decimal_option(o.fee_bps, "--fee-bps"),
                slippage_bps=decimal_option(o.slippage_bps, "--slippage-bps"),
                fill=o.fill.value,
                start=when_from,
                end=when_to,
                sources=sources,
            )
            config, run = llm_backtest(config, use_cache=o.llm_cache, news=not o.blind)
            if o.engine is EngineChoice.fast:
                from functools import partial

                from phantomex.research.fast import run_engine

                run = partial(run_engine, engine="fast", run=run)
            if o.blind:
                from phantomex.research.blind import BlindKey, blind_config, unblind_result

                key = BlindKey.make(list(config.data), o.blind_seed)
                disguised = _run(blind_config(config, key), run, show_progress=not o.as_json)
                result = unblind_result(disguised, config, key)
            else:
                result = _run(config, run, show_progress=not o.as_json)
        except (BacktestError, ValueError) as exc:
            _fail(str(exc))
        skip_exit_gc()
        paths = None
        if o.report is not None:
            from phantomex.research.report import write_report

            try:
                paths = write_report(result, o.report)
            except OSError as exc:
                _fail(f"cannot write the report {o.report}: {exc.strerror or exc}")
        if o.as_json:
            from phantomex.cli.json_out import print_json

            print_json(result.to_json())
            return
        from phantomex.cli.output import say

        _print_summary(result)
        say(f"engine: {result.engine}" + (f" ({result.engine_note})" if result.engine_note else ""))
        from phantomex.research.llm_figures import llm_summary_line

        for one in result.agents:
            if one.llm is not None:
                say(f"{one.name}: {llm_summary_line(one.llm)}")
        if paths:
            say(f"report: {paths[0]}  summary: {paths[1]}")


def _fail(message: str) -> NoReturn:
    from phantomex.cli.client import fail

    fail(message)


def _datasets_dir() -> Path:
    """Where stored datasets are: the data directory of the settings, read without building
    them when it is plain (:mod:`phantomex.config_paths`); a run on files reads neither."""
    from phantomex.config_paths import data_dir

    where = data_dir()
    if where is None:
        from phantomex.config import load_settings

        where = load_settings().data_dir
    return where / "datasets"


def llm_backtest(config: Any, *, use_cache: bool, news: bool = True) -> tuple[Any, Any]:
    """The configuration and ``run_backtest``, with an LLM runtime when an agent has an LLM
    brain: the configured endpoints (settings and those saved through the API) and, with
    ``use_cache``, the project's response cache, which LLM agents then use unless their
    parameters say otherwise. With ``news`` (not in blind runs: headlines would unmask them),
    agents that read news see the project's stored news up to each decision's time."""
    from dataclasses import replace
    from functools import partial

    if not any(a.brain == "llm" for a in config.agents):
        return config, exact_run
    if use_cache:
        agents = [
            a.model_copy(update={"params": {"use_cache": True, **a.params}})
            if a.brain == "llm"
            else a
            for a in config.agents
        ]
        config = replace(config, agents=agents)
    from phantomex.brains.llm.runtime import LLMRuntime
    from phantomex.config import load_settings
    from phantomex.kernel.llm_endpoints import load_saved
    from phantomex.secrets import SecretBox
    from phantomex.store.repo import Store

    settings = load_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database_url)
    static = {e.name for e in settings.llm_endpoints}
    saved = [
        e
        for e in load_saved(store, SecretBox.for_data_dir(settings.data_dir))
        if e.name not in static
    ]
    llm = LLMRuntime(
        [*settings.llm_endpoints, *saved],
        cache=store.cache_get if use_cache else None,
        news=store if news else None,
    )
    return config, partial(exact_run, llm=llm, cache_store=store if use_cache else None)


def exact_run(config: BacktestConfig, **kwargs: Any) -> BacktestResult:
    """``run_backtest`` on the exact kernel, imported only when a run needs that kernel (a run
    on the research engine does not load the kernel, broker or store)."""
    from phantomex.research.backtest import run_backtest

    with collections_resumed():
        return run_backtest(config, **kwargs)


def _run(config: Any, run: Any, *, show_progress: bool) -> BacktestResult:
    if not show_progress:
        result: BacktestResult = run(config)
        return result
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from phantomex.cli.output import err_console

    with Progress(
        TextColumn("backtest"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("bars"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task("backtest", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = run(config, progress=progress)
    return result


def _print_summary(result: BacktestResult) -> None:
    from phantomex.cli.fittable import FitTable, key, text
    from phantomex.cli.output import console, err_console, say
    from phantomex.formatting import metric

    table = FitTable(
        text("agent", min_width=8),
        *(key(label, right=True) for label in ("trades", "final equity", "return", "Sharpe")),
        *(key(label, right=True) for label in ("max DD", "win rate", "fees")),
    )
    rows = [(a.name, a.metrics) for a in result.agents]
    if len(result.agents) > 1:
        rows.append(("all", result.metrics))
    for name, m in rows:
        table.add_row(
            name,
            metric(m.get("trades"), "int"),
            metric(m.get("final_equity"), "money"),
            metric(m.get("total_return"), "pct"),
            metric(m.get("sharpe"), "ratio"),
            metric(m.get("max_drawdown"), "pct"),
            metric(m.get("win_rate"), "share"),
            metric(m.get("fees_paid"), "money"),
        )
    console.print(table)
    rate = result.bars / result.elapsed_seconds if result.elapsed_seconds else 0.0
    say(
        f"{result.bars:,} bars ({', '.join(result.data)}, {result.times[0]:%Y-%m-%d %H:%M} → "
        f"{result.times[-1]:%Y-%m-%d %H:%M} UTC) in {result.elapsed_seconds:.1f} s "
        f"({rate:,.0f} bars/s)"
    )
    for err in result.errors:
        err_console.print(f"error: {err}", markup=False, highlight=False)
