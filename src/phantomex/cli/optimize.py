"""``phantomex optimize``: search a strategy's parameters with Optuna, in and out of sample."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from phantomex.cli.backtest import (
    EngineChoice,
    FillChoice,
    decimal_option,
    parse_assignments,
    parse_when,
)
from phantomex.cli.client import fail
from phantomex.cli.collector import skip_exit_gc
from phantomex.cli.fittable import FitTable, key
from phantomex.cli.output import console, err_console, print_json
from phantomex.formatting import metric, when


def register(app: typer.Typer) -> None:
    """Add the ``optimize`` command to ``app``."""

    @app.command("optimize")
    def optimize_cmd(
        strategy: Annotated[str, typer.Option("--strategy", help="The strategy to tune.")],
        space: Annotated[
            list[str],
            typer.Option(
                "--space",
                help="name=LOW:HIGH[:STEP] or name=a|b|c. Repeatable.",
                show_default=False,
            ),
        ],
        data: Annotated[
            list[str] | None,
            typer.Option("--data", help="OHLCV file; SYMBOL=FILE. Repeatable.", show_default=False),
        ] = None,
        dataset: Annotated[
            str | None,
            typer.Option("--dataset", help="Shipped or stored dataset.", show_default=False),
        ] = None,
        symbols: Annotated[
            str | None, typer.Option("--symbols", help="Comma-separated.", show_default=False)
        ] = None,
        start: Annotated[str | None, typer.Option("--from", show_default=False)] = None,
        stop: Annotated[str | None, typer.Option("--to", show_default=False)] = None,
        param: Annotated[
            list[str] | None,
            typer.Option("--param", help="Fixed parameter key=value.", show_default=False),
        ] = None,
        trials: Annotated[int, typer.Option(min=1, help="Finished trials per window.")] = 50,
        objective: Annotated[
            str, typer.Option(help="Metric to optimise (sharpe, sortino, total_return, ...).")
        ] = "sharpe",
        split: Annotated[float, typer.Option(help="In-sample share of the bars.")] = 0.7,
        walk_forward: Annotated[
            int, typer.Option(min=0, help="Rolling walk-forward windows instead of one split.")
        ] = 0,
        study: Annotated[
            str | None,
            typer.Option(help="Study name; an existing one resumes.", show_default=False),
        ] = None,
        jobs: Annotated[
            int, typer.Option(min=1, help="Trials run at once (local processes, or Ray tasks).")
        ] = 1,
        ray: Annotated[
            str | None,
            typer.Option(
                "--ray",
                help="Run trials on this Ray cluster (ADDRESS, or local).",
                show_default=False,
            ),
        ] = None,
        seed: Annotated[int, typer.Option(help="Sampler seed.")] = 42,
        cash: Annotated[str, typer.Option(help="Starting cash.")] = "10000",
        fee_bps: Annotated[str, typer.Option(help="Fee per side in basis points.")] = "10",
        slippage_bps: Annotated[str, typer.Option(help="Slippage in basis points.")] = "0",
        fill: Annotated[FillChoice, typer.Option(help="Fill model.")] = FillChoice.next_open,
        data_dir: Annotated[
            Path | None,
            typer.Option("--data-dir", help="Holds the database.", show_default=False),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        engine: Annotated[
            EngineChoice,
            typer.Option(
                help="Trials on the research engine (fast; the best and a sample re-run on the "
                "exact kernel) or on the exact kernel."
            ),
        ] = EngineChoice.fast,
    ) -> None:
        """Tune a strategy with Optuna (TPE); report the best parameters in and out of sample."""
        from phantomex.config import load_settings
        from phantomex.research.optimize import (
            Market,
            local_runner,
            make_windows,
            optimize,
            parse_space,
            ray_runner,
        )
        from phantomex.research.spec import (
            BacktestError,
            bar_period,
            bar_times,
            load_data,
            select_window,
        )
        from phantomex.store.repo import Store

        try:
            dims = parse_space(space)
            wanted = [s for s in (symbols or "").split(",") if s.strip()] or None
            if not data and not dataset:
                raise ValueError("give --data FILE or --dataset NAME")
            datasets = load_settings().datasets_dir
            loaded, _ = load_data(data or [], dataset, wanted, datasets=datasets, columns=True)
            first, last = parse_when(start, end=False), parse_when(stop, end=True)
            bars = select_window(loaded, first, last)
            times = bar_times(bars)
            windows = make_windows(times, split=split, walk_forward=walk_forward)
            market = Market(
                data=bars,
                strategy=strategy,
                fixed=parse_assignments(param, "--param"),
                cash=decimal_option(cash, "--cash", positive=True),
                fee_bps=decimal_option(fee_bps, "--fee-bps"),
                slippage_bps=decimal_option(slippage_bps, "--slippage-bps"),
                fill=fill.value,
                interval_seconds=max(1, int(bar_period(bars).total_seconds())),
                engine=engine.value,
            )
            settings = load_settings(data_dir=data_dir)
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            store = Store(settings.database_url)
            name = study or f"{strategy}-{'-'.join(sorted(bars))}-{objective}"
            runner = ray_runner(market, ray) if ray else local_runner(market, jobs)
            with runner as run:
                result = optimize(
                    market,
                    dims,
                    windows,
                    runner=run,
                    store=store,
                    study=name,
                    trials=trials,
                    objective=objective,
                    batch=jobs,
                    seed=seed,
                    progress=None if as_json else _progress,
                )
            store.close()
        except (BacktestError, ValueError) as exc:
            fail(str(exc))
        skip_exit_gc()
        if as_json:
            print_json(result.to_json())
        else:
            _print(result)
        if result.errors:
            fail("the research engine and the exact kernel differ: " + "; ".join(result.errors))


def _progress(done: int, wanted: int) -> None:
    err_console.print(f"trials {done}/{wanted}", end="\r")


def _print(result: object) -> None:
    from phantomex.research.optimize import OptimizeResult
    from phantomex.research.report import METRIC_ROWS

    assert isinstance(result, OptimizeResult)
    kinds = {k: kind for k, _, kind in METRIC_ROWS}
    shown = (result.objective, "total_return", "sharpe", "max_drawdown", "trades", "final_equity")
    for w in result.windows:
        params = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in w.best_params.items()
        )
        table = FitTable(
            key("metric"),
            key(f"in-sample\n{when(w.window.train_start)} →\n{when(w.window.test_start)}"),
            key(f"out-of-sample\n{when(w.window.test_start)} →\n{when(w.window.test_end)}"),
            title=f"{w.study}: {w.trials} trials ({w.resumed} resumed); best {params}",
        )
        for name in dict.fromkeys(shown):
            kind = kinds.get(name, "ratio")
            table.add_row(
                name, metric(w.in_sample.get(name), kind), metric(w.out_of_sample.get(name), kind)
            )
        console.print(table)
        for part, figures in (("in-sample", w.in_sample), ("out-of-sample", w.out_of_sample)):
            if "error" in figures:
                err_console.print(f"{part}: {figures['error']}", markup=False, highlight=False)
