"""The exact kernel, two versions side by side: paired runs, same data, checked identical.

Two resident worker processes, one per source tree (``OLD``, ``NEW``: each a directory holding
the ``phantomex`` package, e.g. ``git archive REV src | tar -x -C DIR`` gives ``DIR/src``),
take turns running one case (alternating which goes first); each reports
the process CPU of its ``run_backtest`` and a SHA-256 of its trades (time, side, price,
quantity, fee) and of its whole equity curve, which must be the same in both. Prints per case
the median bars per second of each and the ratio (with the range of the per-pair ratios).

Run from the repository root:
    python benchmarks/exact_pairs.py OLD NEW rw100k-sma,btc-rsi [--repeat 5]
        [--old-input bars|columns] [--new-input bars|columns]
Cases: ``{rw100k,rw1m,btc}-{sma,rsi}``: seeded random walks of 100k / 1M 1-minute bars and the
shipped real BTC bars (:mod:`peers`' data), SMA cross 10/30 or RSI 14 as ``peers.py`` runs
them; inputs: the bars as a list of ``Bar`` or as ``BarColumns`` (built before the clock).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

WORKER = r"""
import hashlib, json, sys, time
sys.path.insert(0, sys.argv[1])
from peers import random_walk, real_btc
from phantomex.research.backtest import run_backtest
from phantomex.research.spec import BacktestConfig, strategy_agent

MARKETS = {"rw100k": lambda: random_walk(100_000, 1), "rw1m": lambda: random_walk(1_000_000, 1),
           "btc": real_btc}
markets = {}
for line in sys.stdin:
    case, kind = line.split()
    name, strategy = case.split("-")
    if name not in markets:
        markets[name] = MARKETS[name]()
    market = markets[name]
    data = market.columns if kind == "columns" else market.bars
    strategy = {"sma": "sma_cross", "rsi": "rsi"}[strategy]
    params = {"fast": 10, "slow": 30} if strategy == "sma_cross" else {}
    spec = strategy_agent(strategy, params, symbols=["BTC"])
    began = time.process_time()
    result = run_backtest(BacktestConfig(data={"BTC": data}, agents=[spec]))
    cpu = time.process_time() - began
    trades = repr([(t.time.isoformat(), t.side, str(t.price), str(t.quantity), str(t.fee))
                   for t in result.trades])
    curve = "\n".join(map(str, result.equity))
    digest = hashlib.sha256((trades + "|" + curve).encode()).hexdigest()
    print(json.dumps({"cpu": cpu, "bars": market.size, "digest": digest}), flush=True)
"""


class Worker:
    """One resident process running cases on one source tree."""

    def __init__(self, src: str, kind: str) -> None:
        env = dict(os.environ, PYTHONPATH=src)
        here = str(Path(__file__).parent)
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, "-c", WORKER, here],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )

    def run(self, case: str) -> dict[str, object]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{case} {self.kind}\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit(f"the worker failed on {case}")
        out: dict[str, object] = json.loads(line)
        return out

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("cases")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--old-input", choices=("bars", "columns"), default="bars")
    parser.add_argument("--new-input", choices=("bars", "columns"), default="columns")
    args = parser.parse_args()
    workers = {"old": Worker(args.old, args.old_input), "new": Worker(args.new, args.new_input)}
    try:
        for case in args.cases.split(","):
            digests = {label: w.run(case)["digest"] for label, w in workers.items()}  # warm-up
            speed: dict[str, list[float]] = {"old": [], "new": []}
            for i in range(args.repeat):
                for label in ("old", "new") if i % 2 == 0 else ("new", "old"):
                    r = workers[label].run(case)
                    assert r["digest"] == digests[label], f"{label} {case}: not repeatable"
                    speed[label].append(float(r["bars"]) / float(r["cpu"]))  # type: ignore[arg-type]
            same = "identical" if digests["old"] == digests["new"] else "DIFFERENT"
            old, new = statistics.median(speed["old"]), statistics.median(speed["new"])
            pairs = [b / a for a, b in zip(speed["old"], speed["new"], strict=True)]
            print(
                f"{case}: old {old:,.0f} bars/s, new {new:,.0f} bars/s, new/old {new / old:.2f} "
                f"(pairs {min(pairs):.2f}-{max(pairs):.2f}); trades and equity {same}",
                flush=True,
            )
    finally:
        for w in workers.values():
            w.close()


if __name__ == "__main__":
    main()
