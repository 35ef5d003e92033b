"""``phantomex data download|import|list``: candles kept as Parquet for backtests."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from phantomex.cli.client import fail
from phantomex.cli.output import console, err_console

if TYPE_CHECKING:
    from phantomex.market.datastore import DataStore

data_app = typer.Typer(help="Download, import and list candle datasets (Parquet).")

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="Data directory (default: the configured one).", show_default=False
    ),
]
Dataset = Annotated[str, typer.Option("--dataset", help="Dataset name (a folder of files).")]


def register(app: typer.Typer) -> None:
    """Add the ``data`` commands to ``app``."""
    app.add_typer(data_app, name="data")


def _store(data_dir: Path | None) -> DataStore:
    from phantomex.config import load_settings
    from phantomex.market.datastore import DataStore

    return DataStore(data_dir / "datasets" if data_dir else load_settings().datasets_dir)


def _when(text: str, what: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        fail(f"{what}: not an ISO date or time: {text!r}", 2)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


@data_app.command("download")
def download_cmd(
    symbols: Annotated[str, typer.Option("--symbols", help="Comma-separated: BTC or BTC/USDT.")],
    since: Annotated[str, typer.Option("--since", help="First candle (ISO date/time, UTC).")],
    exchange: Annotated[str, typer.Option(help="Any ccxt exchange id.")] = "binance",
    timeframe: Annotated[str, typer.Option(help="Candle size (1m, 5m, 1h, 1d...).")] = "1m",
    until: Annotated[
        str | None,
        typer.Option("--until", help="End (exclusive; default now).", show_default=False),
    ] = None,
    quote: Annotated[str, typer.Option(help="Quote currency for bare symbols.")] = "USDT",
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", help="Dataset name (default: EXCHANGE).", show_default=False),
    ] = None,
    api_url: Annotated[
        str | None,
        typer.Option(
            "--api-url",
            help="Override the exchange's base URL (a mirror or proxy).",
            show_default=False,
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Download candles through ccxt, paginated and resumable (re-run to continue)."""
    from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from phantomex.market.download import DownloadError, download, make_exchange, point_at

    store = _store(data_dir)
    start, end = _when(since, "--since"), (_when(until, "--until") if until else None)
    try:
        ex = make_exchange(exchange)
        if api_url:
            point_at(ex, api_url)
        for symbol in [s for s in symbols.split(",") if s.strip()]:
            with Progress(
                TextColumn(f"{symbol.strip()}"),
                BarColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=err_console,
                transient=True,
            ) as bar:
                task = bar.add_task("", total=1.0)

                def progress(newest: datetime, target: datetime, task: TaskID = task) -> None:
                    span = (target - start).total_seconds() or 1.0
                    done = (newest - start).total_seconds() / span
                    bar.update(task, completed=min(done, 1.0), description=newest.isoformat())

                result = download(
                    ex,
                    store,
                    dataset or exchange,
                    symbol,
                    timeframe=timeframe,
                    since=start,
                    until=end,
                    quote=quote,
                    progress=progress,
                )
            console.print(
                f"{result.market}: {result.fetched} new candles; {result.stored} stored "
                f"({result.first} .. {result.last}) in dataset {dataset or exchange!r}"
            )
    except (DownloadError, ValueError) as exc:
        fail(f"data download: {exc}")


@data_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="OHLCV CSV or freqtrade JSON (maybe .gz).")],
    dataset: Dataset = "imported",
    symbol: Annotated[
        str | None,
        typer.Option("--symbol", help="Symbol (default: from the file name).", show_default=False),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Import a candle file into a dataset (bad rows are skipped and counted)."""
    from phantomex.market.loaders import infer_symbol, read_ohlcv
    from phantomex.market.timeframes import timeframe_of

    try:
        sym = (symbol or infer_symbol(file)).upper()
        bars, report = read_ohlcv(file, sym)
        timeframe = timeframe_of(bars)
        stored = _store(data_dir).save(dataset, sym, timeframe, bars, f"import:{file.name}")
    except ValueError as exc:
        fail(f"data import: {exc}")
    skipped = f"; {report.skipped} bad rows skipped" if report.skipped else ""
    console.print(
        f"{sym} {timeframe}: {len(bars)} candles read{skipped}; {stored} stored in {dataset!r}"
    )


@data_app.command("list")
def list_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    data_dir: DataDir = None,
) -> None:
    """The stored datasets: symbol, timeframe, candles, first and last, source."""
    from phantomex.cli.fittable import FitTable, key, text
    from phantomex.formatting import count, when
    from phantomex.market.loaders import DATASETS

    stored = _store(data_dir).series()
    if as_json:
        rows = [
            {
                "dataset": s.dataset,
                "symbol": s.symbol,
                "timeframe": s.timeframe,
                "bars": s.bars,
                "first": s.first.isoformat() if s.first else None,
                "last": s.last.isoformat() if s.last else None,
                "source": s.source,
            }
            for s in stored
        ]
        shipped = [{"dataset": name, "symbols": list(files)} for name, files in DATASETS.items()]
        console.print_json(json.dumps({"stored": rows, "shipped": shipped}))
        return
    table = FitTable(
        key("dataset"),
        text("symbol", min_width=8),
        key("timeframe"),
        key("candles", right=True),
        text("first"),
        text("last"),
        text("source", min_width=8),
    )
    for s in stored:
        table.add_row(
            s.dataset, s.symbol, s.timeframe, count(s.bars), when(s.first), when(s.last), s.source
        )
    for name, files in DATASETS.items():
        table.add_row(name, ", ".join(files), "1m", "shipped", "", "", "PhantomEx")
    console.print(table)
