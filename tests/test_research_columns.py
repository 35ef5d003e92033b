"""Bars loaded as columns for the research engine: the same bars, times and refusals as the row
reader (shipped data, crafted bad rows, generated files, stored Parquet datasets), the same
``backtest --engine fast`` results either way, and a rule backtest that loads no LLM, server or
SQL stack."""

from __future__ import annotations

import gzip
import json
import math
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import free_port, run_cli, server_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from phantomex.domain.models import Bar
from phantomex.market.column_loaders import load_dataset_columns, parse_columns
from phantomex.market.columns import NUMBER, BarColumns, arrow_of, numpy_of, true_at
from phantomex.market.datastore import DataStore, schema
from phantomex.market.loaders import load_dataset, parse_ohlcv
from phantomex.research.fast import run_engine, run_fast
from phantomex.research.spec import BacktestConfig, bar_period, load_data, strategy_agent

HEAVY = ("openai", "aiohttp", "ollama", "fastapi", "uvicorn", "starlette", "sqlalchemy", "alembic")


def exact(bars: list[Bar] | BarColumns) -> list[tuple[object, ...]]:
    """Bars as comparable rows, the Decimals' exponents included (str)."""
    return [
        (
            b.symbol,
            b.time,
            *(str(getattr(b, k)) for k in ("open", "high", "low", "close", "volume")),
        )
        for b in bars
    ]


def same_read(data: bytes, name: str = "x.csv") -> None:
    """The row reader and the column reader agree on ``data``: bars, report or error."""
    try:
        rows, report = parse_ohlcv(data, name=name, symbol="X")
    except ValueError as exc:
        with pytest.raises(ValueError) as caught:
            parse_columns(data, name=name, symbol="X")
        assert str(caught.value) == str(exc)
        return
    cols, col_report = parse_columns(data, name=name, symbol="X")
    assert col_report == report
    assert exact(cols) == exact(rows)
    for field in ("open", "close"):
        assert cols.values[field].tolist() == [float(getattr(b, field)) for b in rows]
    assert cols.time_us.tolist() == [
        (b.time - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1) for b in rows
    ]


def test_the_shipped_data_loads_the_same_as_columns() -> None:
    rows, cols = load_dataset("demo"), load_dataset_columns("demo")
    assert list(cols) == list(rows)
    for symbol, bars in rows.items():
        assert len(cols[symbol]) == len(bars) == 43_198
        assert exact(cols[symbol]) == exact(bars)
        for field in ("open", "high", "low", "close", "volume"):
            floats = [float(getattr(b, field)) for b in bars]
            assert cols[symbol].values[field].tolist() == floats, (symbol, field)


HEADER = "timestamp,open,high,low,close,volume\n"
CRAFTED = {
    "bad rows": HEADER + "3,1,2,0.5,1.5,0\n1,1.0,1,1.00,1,5\n2,abc,1,1,1,1\n2,1,1,1,1,1\n"
    "4, 1,1,1,1,1\n5,2,1,1,1,1\n6,1,1,1,1,-1\n7,1E+400,1,1,1,1\n8,NaN,1,1,1,1\n9,inf,1,1,1,1\n"
    "10,0,1,0,1,1\n11,-1,1,-1,1,1\n12,1,1,1,1,-0\n13,1,1,1,1,0.000\n14,1,1,1,1,\n15,,1,1,1,1\n"
    "1680382980000,1.00000000000000001,1,1,1,1\n1680382980001,1,1.00000000000000001,1,1,1\n"
    "2023-01-01T00:00:00,1,1,1,1,1\n2023-01-01T00:00:00+02:00,1,1,1,1,1\n-5,1,1,1,1,1\n"
    "x,1,1,1,1,1\n1680382980000000,2,2,2,2,2\n1680382980000000000,3,3,3,3,3\n"
    "1.5,1,1,1,1,1\n20,999999999999.99999,999999999999.99999,1,1,1\n21,1e-400,1,1e-400,1,1\n"
    "22,1_000,1000,1000,1000,1\n23,+5,5,5,5,5\n24,.5,.5,.5,.5,.5\n25,5.,5,5,5,5\n",
    "ISO times": "datetime,open,high,low,close\n2023-04-01T21:03:00Z,1,1,1,1\n"
    "2023-04-01 21:04:00,1,1,1,1\n2023-04-01T21:05:00.123,1,1,1,1\n"
    "2023-04-01T21:05:00.123456+00:00,1,1,1,1\n2023-02-30T00:00:00,1,1,1,1\n"
    "2023-04-01T24:00:00,1,1,1,1\n2023-04-01T23:59:60,1,1,1,1\n2023-04-01T21:06:00+02:00,1,1,1,1\n"
    "0999-01-01T00:00:00,1,1,1,1\n2023-4-1T00:00:00,1,1,1,1\n2023-04-02,1,1,1,1\n"
    "2023-04-01T21:07:00.1,1,1,1,1\n",
    "ISO times, one layout (read from Arrow's bytes)": "time,open,high,low,close\n"
    "2023-04-01T21:03:00Z,1,1,1,1\n2023-02-30T00:00:00Z,1,1,1,1\n2023-04-01T24:00:00Z,1,1,1,1\n"
    "2023-04-01T23:59:60Z,1,1,1,1\n2024-02-29T00:00:00Z,1,1,1,1\n2023-02-29T00:00:00Z,1,1,1,1\n"
    "2023-13-01T00:00:00Z,2,2,2,2\n2023-00-01T00:00:00Z,2,2,2,2\n2023-04-00T00:00:00Z,2,2,2,2\n"
    "2023-04-01T21:03:00Z,3,3,3,3\n1970-01-01T00:00:00Z,1,1,1,1\n",
    "ISO times, one layout but one": "time,open,high,low,close\n2023-04-01T21:03:00Z,1,1,1,1\n"
    "2023-04-01 21:04:00Z,1,1,1,1\n2023-04-01T21:05:0xZ,1,1,1,1\n0999-04-01T21:05:00Z,1,1,1,1\n",
    "no volume column; semicolons": "date;open;high;low;close\n1;1;2;1;2\n2;2;3;2;3\n",
    "tabs, CRLF, BOM": "\ufefftime\topen\thigh\tlow\tclose\tvolume\r\n1\t1\t1\t1\t1\t1\r\n",
    "quotes (row reader)": HEADER + '1,"1",1,1,1,1\n2,1,1,1,1,1\n',
    "blank lines (row reader)": HEADER + "1,1,1,1,1,1\n\n2,1,1,1,1,1\n",
    "a blank line at the end": HEADER + "1,1,1,1,1,1\n2,1,1,1,1,1\n\n",
    "blank lines, CRLF": HEADER.replace("\n", "\r\n") + "1,1,1,1,1,1\r\n\r\n2,1,1,1,1,1\r\n",
    "ISO times, one layout, a blank line": "time,open,high,low,close\n"
    "2023-04-01T21:03:00Z,1,1,1,1\n\n2023-04-01T21:04:00Z,1,1,1,1\n",
    "ragged rows (row reader)": HEADER + "1,1,1,1,1,1\n2,1,1,1\n3,1,1,1,1,1,9\n",
    "header late (row reader)": "\n" + HEADER + "1,1,1,1,1,1\n",
    "no good row": HEADER + "1,2,1,1,1,1\n",
    "header only": HEADER,
    "no header": "1,2,3\n",
    "whitespace time": HEADER + " 1 ,1,1,1,1,1\n",
}


@pytest.mark.parametrize("text", CRAFTED.values(), ids=CRAFTED.keys())
def test_crafted_rows_are_held_and_refused_the_same_as_columns(text: str) -> None:
    same_read(text.encode())
    same_read(gzip.compress(text.encode()), name="x.csv.gz")
    same_read(text.encode(), name="x.json")  # the name says JSON: read as JSON either way
    same_read(text.encode(), name="x")


CELLS = st.sampled_from(
    ["1", "1.0", "1.00", "2", "0.5", "0.50", "1.00000000000000001", "0.99999999999999999", "0",
     "-1", "1e3", "1000", "1E+400", "NaN", "", "x", " 1", "3.14159265358979323846", "1e-400",
     "999999999999.9999", "1000000000000"]
)  # fmt: skip
TIMES = st.sampled_from(
    ["1", "2", "60", "1680382980000", "2023-04-01T00:00:00", "2023-04-01T00:00:00Z",
     "2023-04-01 00:01:00", "2023-02-29T00:00:00", "", "-1", "2023-02-29T00:00:00Z",
     "2024-02-29T23:59:59Z"]
)  # fmt: skip


def test_arrow_reads_as_numbers_only_plain_decimal_text_or_nan_and_infinity() -> None:
    """What the vectorised row rule relies on (``columns._floats``): when Arrow's parser takes a
    text that is not plain decimal text, the float is NaN or infinite."""
    import pyarrow.compute as pc

    odd = ["nan", "NaN", "NAN(1)", "inf", "-inf", "+inf", "Infinity", "infinity", " 1", "1 ",
           "1_0", "0x10", "1d5", "1.5f", "1,5", "--1", "+-1", "1e", "e5", ".", "+", "-", "1e+",
           ".e5", "1.5.5", "\t1", "\u0661", "1e5e5", "0b1", "1 000", "١٢", "∞"]  # fmt: skip
    for text in odd:
        assert not re.match(NUMBER, text, re.ASCII)  # as Arrow (RE2) reads the pattern
        try:
            value = pc.cast(pa.array([text]), pa.float64())[0].as_py()
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        assert not math.isfinite(value), text


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(st.lists(st.tuples(TIMES, CELLS, CELLS, CELLS, CELLS, CELLS), min_size=1, max_size=30))
def test_generated_files_load_the_same_as_columns(rows: list[tuple[str, ...]]) -> None:
    same_read((HEADER + "".join(",".join(r) + "\n" for r in rows)).encode())


def test_a_stored_dataset_loads_the_same_as_columns(tmp_path: Path) -> None:
    texts = [("1", "2", "0.5", "1.5", "3"), ("1", "1", "1", "1", "0"), ("2", "1", "1", "1", "1"),
             ("x", "1", "1", "1", "1"), ("1", "1", "1", "1", None), ("1.0", "1", "1.00", "1", "-1"),
             ("1.00000000000000001", "1", "1", "1", "1"), ("5", "5", "5", "5", "5")]  # fmt: skip
    start = datetime(2023, 1, 1, tzinfo=UTC)
    columns: dict[str, list[object]] = {"time": [start + timedelta(minutes=i) for i in range(8)]}
    for j, field in enumerate(("open", "high", "low", "close", "volume")):
        columns[field] = [t[j] for t in texts]
    store = DataStore(tmp_path)
    path = store.path("mine", "ABC", "1m")
    path.parent.mkdir(parents=True)
    pq.write_table(pa.Table.from_pydict(columns, schema=schema()), path)
    rows = store.load("mine", "ABC", "1m")
    cols = store.load_dataset_columns("mine", ["ABC"])["ABC"]
    assert exact(cols) == exact(rows) and len(rows) == 3
    assert cols.values["close"].tolist() == [float(b.close) for b in rows]


START = datetime(2023, 4, 12, tzinfo=UTC)


def fast_on(columns: bool, strategy: str = "rsi", days: int = 3) -> BacktestConfig:
    data, sources = load_data(dataset="demo", symbols=["BTC"], columns=columns)
    return BacktestConfig(
        data=data,
        sources=sources,
        agents=[strategy_agent(strategy, symbols=["BTC"], interval_seconds=60)],
        start=START,
        end=START + timedelta(days=days),
    )


def without_time(result: object) -> dict[str, object]:
    out = dict(result.to_json())  # type: ignore[attr-defined]
    out.pop("elapsed_seconds", None)
    return out


@pytest.mark.parametrize("strategy", ["rsi", "sma_cross", "ema_cross"])
def test_the_research_engine_gives_the_same_result_on_columns(strategy: str) -> None:
    on_rows, on_columns = fast_on(False, strategy), fast_on(True, strategy)
    assert isinstance(on_columns.data["BTC"], BarColumns)
    a, b = run_fast(on_rows), run_fast(on_columns)
    assert a.trades and without_time(a) == without_time(b)
    assert [(t.time, t.price, t.quantity) for t in a.trades] == [
        (t.time, t.price, t.quantity) for t in b.trades
    ]


def test_a_fall_back_on_columns_runs_the_exact_kernel_on_decimal_bars() -> None:
    on_rows, on_columns = fast_on(False, "spike_fade", 1), fast_on(True, "spike_fade", 1)
    a, b = run_engine(on_rows, "fast"), run_engine(on_columns, "fast")
    assert a.engine == b.engine == "exact" and a.engine_note == b.engine_note
    assert without_time(a) == without_time(b)


def test_columns_the_price_guard_would_hold_on_fall_back_like_rows() -> None:
    text = HEADER + "".join(
        f"{60 * i},{p},{p},{p},{p},1\n"
        for i, p in enumerate([100 + (i % 7) for i in range(150)] + [2000] + [100] * 50)
    )
    rows, _ = parse_ohlcv(text.encode(), name="x.csv", symbol="X")
    cols, _ = parse_columns(text.encode(), name="x.csv", symbol="X")
    results = [
        run_engine(BacktestConfig(data={"X": d}, agents=[strategy_agent("rsi", symbols=["X"])]))
        for d in (rows, cols)
    ]
    assert [r.engine for r in results] == ["exact", "exact"]
    assert "price guard" in (results[1].engine_note or "")
    assert without_time(results[0]) == without_time(results[1])


def test_cli_backtest_fast_equals_the_research_engine_on_decimal_bars(tmp_path: Path) -> None:
    env = server_env(free_port(), tmp_path)
    code, stdout, stderr = run_cli(
        "backtest", "--dataset", "demo", "--symbols", "BTC", "--from", "2023-04-12",
        "--to", "2023-04-14", "--strategy", "rsi", "--engine", "fast", "--json",
        env=env, timeout=180,
    )  # fmt: skip
    assert code == 0, stderr
    cli = json.loads(stdout)
    cli.pop("elapsed_seconds", None)
    assert cli["engine"] == "fast"
    assert cli == without_time(run_fast(fast_on(False, "rsi", 3)))


PROBE = """
import runpy, sys
sys.argv = ["phantomex", *sys.argv[1:]]
try:
    runpy.run_module("phantomex.cli.main", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted(name for name in set(%r) if name in sys.modules)
print("LOADED=" + ",".join(heavy), file=sys.stderr)
sys.exit(code)
"""


#: What a fast rule backtest on a file does not import either: the exact kernel, TA-Lib and the
#: pandas it (and pyarrow's to_numpy) pulls in, the HTTP and SSH clients, the settings, and (a
#: plain --json run starts in phantomex.cli.lean) Typer and Rich.
NOT_FAST = (
    *HEAVY,
    "typer",
    "rich",
    "pandas",
    "talib",
    "httpx",
    "asyncssh",
    "phantomex.kernel",
    "phantomex.broker.paper",
    "phantomex.brains.llm.runtime",
    "phantomex.store",
    "phantomex.config",
    "phantomex.research.backtest",
)


#: What a fast rule backtest on a stored dataset does not import on top: the settings model (the
#: data directory is read by phantomex.config_paths) and pyarrow (the file's column cache, written
#: by DataStore.save, is read with NumPy).
NOT_FAST_DATASET = (*NOT_FAST, "pydantic_settings", "pyarrow")


@pytest.mark.parametrize("engine", ["fast", "exact", "fast-dataset"])
def test_a_rule_backtest_loads_no_llm_server_or_sql_stack(tmp_path: Path, engine: str) -> None:
    prices = 100 + np.sin(np.arange(400) / 9) * 5
    rows = "".join(f"{60 * i},{p:.2f},{p:.2f},{p:.2f},{p:.2f},1\n" for i, p in enumerate(prices))
    csv = tmp_path / "abc.csv"
    csv.write_text(HEADER + rows)
    env = server_env(free_port(), tmp_path)
    source = ["--data", f"ABC={csv}"]
    unused = {"fast": NOT_FAST, "exact": HEAVY, "fast-dataset": NOT_FAST_DATASET}[engine]
    if engine == "fast-dataset":
        bars, _ = parse_ohlcv(csv.read_bytes(), name="abc.csv", symbol="ABC")
        DataStore(tmp_path / "datasets").save("mine", "ABC", "1m", bars, "test")
        source = ["--dataset", "mine"]
    proc = subprocess.run(
        [sys.executable, "-c", PROBE % (unused,), "backtest", *source,
         "--strategy", "sma_cross", "--engine", engine.split("-")[0], "--json"],
        env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["trades"]
    assert "LOADED=" in proc.stderr
    loaded = proc.stderr.rsplit("LOADED=", 1)[1].strip()
    assert loaded == "", f"a rule backtest imported {loaded}"


def test_importing_the_cli_loads_no_llm_server_or_sql_stack() -> None:
    """Nor what single commands need: each imports its HTTP or SSH client, data and engine
    libraries when it runs."""
    unused = (*HEAVY, "httpx", "asyncssh", "talib", "pandas", "numpy", "pyarrow", "numba")
    code = (
        "import sys, phantomex.cli.main; "
        f"print(','.join(sorted(n for n in {unused!r} if n in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("start", [0, 3, 9])
def test_arrow_columns_convert_through_their_buffers_as_pyarrow_does(start: int) -> None:
    flags = pa.array([True, False, True, True, False, False, True, False, True, True, False])
    ints = pa.array(list(range(-5, 6)), pa.int64())
    floats = pa.array([0.1 * i for i in range(11)], pa.float64())
    for column in (flags, ints, floats, pa.chunked_array([floats[:4], floats[4:]])):
        part = column[start:]
        got = numpy_of(part)
        want = np.array(part.to_numpy(zero_copy_only=False))
        assert got.dtype == want.dtype and got.tolist() == want.tolist()
        got[:1] = got[:1]  # writable
    with_nulls = pa.array([True, None, False, True])[start % 4 :]
    assert true_at(with_nulls).tolist() == [v is True for v in with_nulls.to_pylist()]
    mask = np.array([True, False, True, False, False, True, True, False, True])[start % 9 :]
    assert arrow_of(mask).to_pylist() == mask.tolist()
    at = np.flatnonzero(mask)
    assert arrow_of(at).equals(pa.array(at, pa.int64()))


def test_bar_columns_are_a_sequence_of_bars() -> None:
    bars = load_dataset_columns("demo", ["DOGE"])["DOGE"]
    first = bars[0]
    assert isinstance(first, Bar) and isinstance(first.close, Decimal)
    assert bars[-1] == list(bars)[-1]
    part = bars[10:20]
    assert isinstance(part, BarColumns) and list(part) == list(bars)[10:20]
    window = bars.between(bars[5].time, bars[8].time)
    assert [b.time for b in window] == [bars[i].time for i in (5, 6, 7)]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([1, 1, 1, 2, 5, 60]), min_size=0, max_size=40), st.booleans())
def test_the_bar_period_of_columns_is_the_bar_lists(gaps: list[int], two: bool) -> None:
    """Evenly spaced or not, one symbol or two: the columns' period is the Bar list's."""
    start = datetime(2024, 1, 1, tzinfo=UTC)
    times = [start + timedelta(minutes=sum(gaps[:i])) for i in range(len(gaps) + 1)]
    one = Decimal(1)
    bars = {"X": [Bar("X", t, one, one, one, one, one) for t in times]}
    if two:
        bars["Y"] = [Bar("Y", start + timedelta(seconds=30 * i), one, one, one, one, one)
                     for i in range(3)]  # fmt: skip
    columns = {s: BarColumns.from_bars(s, b) for s, b in bars.items()}
    assert bar_period(columns) == bar_period(bars)
