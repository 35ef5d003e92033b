"""The ``phantomex backtest`` command's options and help (Typer); the run is
:func:`phantomex.cli.backtest.backtest`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from phantomex.cli.backtest import BacktestOptions, EngineChoice, FillChoice, backtest


def register(app: typer.Typer) -> None:
    """Add the ``backtest`` command to ``app``."""

    @app.command("backtest")
    def backtest_cmd(
        data: Annotated[
            list[str] | None,
            typer.Option(
                "--data",
                help="OHLCV file (CSV/JSON, maybe .gz); SYMBOL=FILE names the symbol. Repeatable.",
                show_default=False,
            ),
        ] = None,
        dataset: Annotated[
            str | None,
            typer.Option("--dataset", help="A shipped dataset (demo).", show_default=False),
        ] = None,
        symbols: Annotated[
            str | None,
            typer.Option(
                "--symbols",
                help="Comma-separated symbols (default: all loaded).",
                show_default=False,
            ),
        ] = None,
        start: Annotated[
            str | None,
            typer.Option("--from", help="First bar (ISO date or time, UTC).", show_default=False),
        ] = None,
        stop: Annotated[
            str | None,
            typer.Option(
                "--to", help="Last bar, inclusive (ISO date = that whole day).", show_default=False
            ),
        ] = None,
        strategy: Annotated[
            str | None,
            typer.Option(
                "--strategy",
                help="A strategy of `phantomex strategies` (rsi, sma_cross, ...).",
                show_default=False,
            ),
        ] = None,
        param: Annotated[
            list[str] | None,
            typer.Option(
                "--param", help="Strategy parameter key=value. Repeatable.", show_default=False
            ),
        ] = None,
        agent: Annotated[
            list[Path] | None,
            typer.Option(
                "--agent",
                help="Agent TOML (AgentSpec fields: name, brain, params, risk...). Repeatable.",
                show_default=False,
            ),
        ] = None,
        cash: Annotated[
            str, typer.Option("--cash", help="Starting cash per agent.")
        ] = BacktestOptions.cash,
        fee_bps: Annotated[
            str, typer.Option("--fee-bps", help="Fee per side, in bps.")
        ] = BacktestOptions.fee_bps,
        slippage_bps: Annotated[
            str, typer.Option("--slippage-bps", help="Slippage, in bps.")
        ] = BacktestOptions.slippage_bps,
        fill: Annotated[
            FillChoice,
            typer.Option(
                "--fill",
                help="next_open: at the next bar's open; close: at the signal bar's close.",
            ),
        ] = BacktestOptions.fill,
        risk: Annotated[
            list[str] | None,
            typer.Option(
                "--risk",
                help="Risk override key=value (default all-in, no stops). Repeatable.",
                show_default=False,
            ),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print one JSON object (no progress bar).")
        ] = BacktestOptions.as_json,
        report: Annotated[
            Path | None,
            typer.Option(
                "--report", help="Write an HTML report (and a PNG next to it).", show_default=False
            ),
        ] = None,
        blind: Annotated[
            bool,
            typer.Option(
                "--blind",
                help="Disguise symbols, dates and prices from the agents; results mapped back.",
            ),
        ] = BacktestOptions.blind,
        blind_seed: Annotated[
            int | None,
            typer.Option("--blind-seed", help="Seed of the disguise.", show_default=False),
        ] = None,
        llm_cache: Annotated[
            bool,
            typer.Option(
                "--llm-cache/--no-llm-cache",
                help="Answer LLM agents from the project's response cache (exact re-runs).",
            ),
        ] = BacktestOptions.llm_cache,
        engine: Annotated[
            EngineChoice,
            typer.Option(
                help="exact: the live kernel (the truth). fast: the research engine, proven "
                "identical on rule strategies; anything else falls back to the exact kernel.",
            ),
        ] = BacktestOptions.engine,
    ) -> None:
        """Backtest agents over recorded bars on the live kernel, as fast as possible."""
        backtest(
            BacktestOptions(
                data=data,
                dataset=dataset,
                symbols=symbols,
                start=start,
                stop=stop,
                strategy=strategy,
                param=param,
                agent=agent,
                cash=cash,
                fee_bps=fee_bps,
                slippage_bps=slippage_bps,
                fill=fill,
                risk=risk,
                as_json=as_json,
                report=report,
                blind=blind,
                blind_seed=blind_seed,
                llm_cache=llm_cache,
                engine=engine,
            )
        )
