"""``phantomex backtest``/``optimize`` build only their own command at start-up
(phantomex.cli.app._Phantomex), and a plain ``backtest`` runs without Typer
(phantomex.cli.lean): what they print is what the whole app prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from phantomex.cli.backtest import BacktestOptions, EngineChoice, FillChoice
from phantomex.cli.lean import lean_options

FULL = """
import sys
from phantomex.cli.main import app
app(args=sys.argv[1:], prog_name="phantomex")  # explicit args: the whole app
"""
ALONE = """
import sys
from phantomex.cli.main import app
sys.argv[0] = "phantomex"
app()
"""
#: The command as installed and as ``python -m phantomex.cli.main``: the lean entry first.
LEAN = """
import sys
from phantomex.cli.main import run
sys.argv[0] = "phantomex"
run()
print("TYPER=" + str("typer" in sys.modules), file=sys.stderr)
"""


def run(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    env = {**(env or os.environ), "COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["backtest", "--help"],
        ["optimize", "--help"],
        ["backtest", "--bogus"],
        ["backtest", "--strategy", "rsi"],
        ["backtest", "--strategy", "rsi", "--data", "no-such-file.csv", "--engine", "fast"],
    ],
)
def test_a_research_command_alone_prints_what_the_whole_app_prints(args: list[str]) -> None:
    alone = run(ALONE, *args)
    assert alone == run(FULL, *args)
    assert alone[1] or alone[2]  # it said something


def test_the_whole_app_still_runs_other_commands_and_global_options() -> None:
    code, out, _ = run(ALONE, "--url", "http://127.0.0.1:9", "backtest", "--help")
    assert code == 0 and "--strategy" in out
    code, out, _ = run(ALONE, "--help")
    assert code == 0 and "backtest" in out and "status" in out


@pytest.fixture(scope="module")
def bars(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A bar file and an environment whose data directory stores it as the dataset ``mine``."""
    from phantomex.market.datastore import DataStore
    from phantomex.market.loaders import parse_ohlcv

    root = tmp_path_factory.mktemp("lean")
    prices = 100 + np.sin(np.arange(600) / 7) * 6 + np.arange(600) / 50
    rows = "".join(
        f"{60 * i},{p:.2f},{p + 0.5:.2f},{p - 0.5:.2f},{p:.2f},1\n" for i, p in enumerate(prices)
    )
    csv = root / "abc.csv"
    csv.write_bytes(("timestamp,open,high,low,close,volume\n" + rows).encode())
    parsed, _ = parse_ohlcv(csv.read_bytes(), name="abc.csv", symbol="ABC")
    DataStore(root / "datasets").save("mine", "ABC", "1m", parsed, "test")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHANTOMEX_")}
    env.update(PHANTOMEX_DATA_DIR=str(root), PHANTOMEX_CONFIG=str(root / "none.toml"))
    return csv, env


def _untimed(out: str) -> str:
    """The output less the timing (the bars/s line, the JSON's elapsed seconds)."""
    if out.startswith("{"):
        data = json.loads(out)
        data.pop("elapsed_seconds", None)
        return json.dumps(data)
    return "\n".join(line for line in out.splitlines() if "bars/s" not in line)


LEAN_CASES = [
    ["--strategy", "rsi", "--engine", "fast"],
    ["--strategy", "rsi", "--engine", "fast", "--json"],
    ["--strategy", "sma_cross", "--param", "fast=5", "--param", "slow=20", "--engine", "fast",
     "--fill", "close", "--risk", "stop_loss_pct=2", "--fee-bps", "5", "--json"],
    ["--strategy", "sma_cross", "--engine", "exact", "--from", "1970-01-01T02:00",
     "--to", "1970-01-01", "--cash", "500", "--no-llm-cache", "--slippage-bps", "3"],
    ["--strategy", "nope", "--engine", "fast"],
    ["--strategy", "rsi", "--cash", "abc"],
    ["--strategy", "rsi", "--param", "period=x", "--engine", "fast"],
    ["--strategy", "rsi", "--symbols", "XYZ", "--engine", "fast"],
]  # fmt: skip


@pytest.mark.parametrize("source", ["file", "dataset"])
@pytest.mark.parametrize("args", LEAN_CASES)
def test_a_plain_backtest_runs_lean_and_prints_what_the_whole_app_prints(
    bars: tuple[Path, dict[str, str]], source: str, args: list[str]
) -> None:
    csv, env = bars
    line = ["backtest", *(["--data", f"ABC={csv}"] if source == "file" else ["--dataset", "mine"])]
    code, out, err = run(LEAN, *line, *args, env=env)
    full = run(FULL, *line, *args, env=env)
    assert (code, _untimed(out)) == (full[0], _untimed(full[1]))
    assert err.replace("TYPER=False\n", "") == full[2]
    assert "TYPER=False" in err or code != 0  # it ran without Typer (an error imports it)
    assert out or err


@pytest.mark.parametrize(
    "args",
    [
        ["backtest", "--help"],
        ["backtest", "--strategy=rsi", "--data", "x.csv"],
        ["backtest", "--strategy", "rsi", "--data", "x.csv", "--engine", "FAST"],
        ["backtest", "--strategy", "rsi", "--data"],
        ["backtest", "--strategy", "rsi", "--data", "x.csv", "--cash", "-5"],
        ["backtest", "--strategy", "rsi", "--data", "x.csv", "--bogus", "1"],
        ["backtest", "--strategy", "rsi", "--data", "x.csv", "extra"],
        ["--url", "http://127.0.0.1:9", "backtest", "--strategy", "rsi", "--data", "x.csv"],
        ["optimize", "--help"],
        ["--help"],
    ],
)
def test_anything_but_a_plain_backtest_goes_to_the_whole_app(args: list[str]) -> None:
    code, out, err = run(LEAN, *args)
    assert (code, out, err.replace("TYPER=True\n", "")) == run(FULL, *args)
    assert lean_options(args) is None


def test_the_app_refuses_url_and_server_together_before_a_lean_backtest(
    bars: tuple[Path, dict[str, str]],
) -> None:
    csv, env = bars
    env = {**env, "PHANTOMEX_URL": "http://127.0.0.1:9", "PHANTOMEX_SERVER": "x"}
    args = ["backtest", "--data", f"ABC={csv}", "--strategy", "rsi", "--json"]
    code, out, err = run(LEAN, *args, env=env)
    assert (code, out, err) == run(FULL, *args, env=env)
    assert code == 1 and "not both" in err


def test_lean_options_read_as_typer_reads_them() -> None:
    options = lean_options(
        ["backtest", "--data", "a.csv", "--data", "B=b.csv", "--strategy", "rsi",
         "--strategy", "sma_cross", "--engine", "fast", "--fill", "close", "--json"]
    )  # fmt: skip
    assert options == BacktestOptions(
        data=["a.csv", "B=b.csv"],
        strategy="sma_cross",  # the last one, as Click takes it
        engine=EngineChoice.fast,
        fill=FillChoice.close,
        as_json=True,
    )
