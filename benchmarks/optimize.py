"""An RSI optimisation on the shipped real BTC month: trials on the research engine against
trials on the exact kernel, as `phantomex optimize` runs them (whole processes, one after the
other, each in its own data folder).

Run: `make bench` (or `.venv/bin/python benchmarks/optimize.py [--trials N]`). Both searches
use the same seeded sampler, so the same best parameters are the expected outcome; the research
engine's run also re-runs its best and a sample of other trials on the exact kernel and reports
any difference. Results go to `benchmarks/results/optimize.md`.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "optimize.md"
SPACE = ["period=5:30", "oversold=10:40", "overbought=60:90"]


def command(engine: str, trials: int, data_dir: Path) -> list[str]:
    """The optimisation as a user types it."""
    space = [arg for s in SPACE for arg in ("--space", s)]
    return [
        sys.executable, "-c", "from phantomex.cli.main import app; app()", "optimize",
        "--strategy", "rsi", *space, "--dataset", "demo", "--symbols", "BTC",
        "--trials", str(trials), "--engine", engine, "--data-dir", str(data_dir), "--json",
    ]  # fmt: skip


def run(engine: str, trials: int) -> dict[str, Any]:
    """One whole-process optimisation: wall and CPU seconds, best parameters, exact check."""
    with tempfile.TemporaryDirectory() as tmp:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        done = subprocess.run(
            command(engine, trials, Path(tmp)), capture_output=True, text=True, check=True
        )
        wall = time.perf_counter() - began
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    window = json.loads(done.stdout)["windows"][0]
    return {
        "engine": engine,
        "wall": wall,
        "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        "trials": window["trials"],
        "best": window["best_params"],
        "sharpe": window["in_sample"].get("sharpe"),
        "check": window.get("exact_check") or {},
    }


def report(rows: list[dict[str, Any]], trials: int) -> str:
    fast, exact = rows
    lines = [
        "# RSI optimisation: research engine vs exact kernel",
        "",
        f"`python benchmarks/optimize.py --trials {trials}`, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the end. Shipped real BTC 1m month (`--dataset demo`), "
        f"TPE seeded (42), in-sample 70 %, space {', '.join(SPACE)}, objective Sharpe.",
        "",
        "| engine | trials | wall (s) | CPU (s) | best parameters | in-sample Sharpe | "
        "checked on the exact kernel |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    for r in rows:
        check = r["check"]
        checked = (
            f"{check['checked']} trials, {len(check['differences'])} differences" if check else "-"
        )
        lines.append(
            f"| {r['engine']} | {r['trials']} | {r['wall']:.1f} | {r['cpu']:.1f} | "
            f"{r['best']} | {r['sharpe']:.6f} | {checked} |"
        )
    same = "the same" if fast["best"] == exact["best"] else "DIFFERENT"
    lines += [
        "",
        f"- The research engine is {exact['wall'] / fast['wall']:.1f}x faster in wall time and "
        f"{exact['cpu'] / fast['cpu']:.1f}x in CPU time, with {same} best parameters.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = [run(engine, args.trials) for engine in ("fast", "exact")]
    text = report(rows, args.trials)
    args.out.write_text(text)
    print(text)
    if rows[0]["best"] != rows[1]["best"] or rows[0]["check"].get("differences"):
        sys.exit("the engines disagree")


if __name__ == "__main__":
    main()
