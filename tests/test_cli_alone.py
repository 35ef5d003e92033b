"""``phantomex backtest``/``optimize`` build only their own command at start-up
(phantomex.cli.main._Phantomex): what they print is what the whole app prints."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

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


def run(code: str, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "COLUMNS": "120", "NO_COLOR": "1", "TERM": "dumb"}
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
