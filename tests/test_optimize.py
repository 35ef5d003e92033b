"""``phantomex optimize``: Optuna over backtests on the live kernel, in and out of sample,
resumable from the project's database, locally and on a real local Ray instance."""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import free_port, run_cli, server_env

from phantomex.domain.models import Bar
from phantomex.formatting import metric
from phantomex.market.loaders import load_dataset
from phantomex.research.optimize import (
    Market,
    evaluate,
    local_runner,
    make_windows,
    optimize,
    parse_space,
)
from phantomex.store.optimize import load_trials
from phantomex.store.repo import Store

START = datetime(2023, 4, 12, tzinfo=UTC)
BARS = 480
SPACE = ["oversold=15:40", "overbought=60:85"]


@functools.cache
def btc() -> dict[str, list[Bar]]:
    bars = load_dataset("demo", ["BTC"])["BTC"]
    return {"BTC": [b for b in bars if START <= b.time < START + timedelta(minutes=BARS)]}


def market() -> Market:
    return Market(data=btc(), strategy="rsi", fixed={"period": 7})


def test_search_reports_out_of_sample_and_resumes_from_the_database() -> None:
    store = Store("sqlite://")
    times = [b.time for b in btc()["BTC"]]
    (window,) = make_windows(times, split=0.75)
    assert window.test_start == times[360] and window.test_end == times[-1] + timedelta(minutes=1)
    with local_runner(market(), 1) as run:
        first = optimize(
            market(), parse_space(SPACE), [window], runner=run, store=store, study="s", trials=5
        )
        (w,) = first.windows
        assert w.trials == 5 and w.resumed == 0
        stored = load_trials(store, "s")
        assert len(stored) == 5
        best = max((t for t in stored if t.value is not None), key=lambda t: t.value or 0)
        assert w.best_params == best.params
        # the reported figures are those of real backtests of the best parameters
        oos = evaluate(market(), w.best_params, window.test_start, window.test_end)
        ins = evaluate(market(), w.best_params, window.train_start, window.test_start)
        assert w.out_of_sample == oos and w.in_sample == ins
        assert w.in_sample["sharpe"] == pytest.approx(best.value)
        assert w.out_of_sample["bars"] == 120 and w.in_sample["bars"] == 360

        again = optimize(
            market(), parse_space(SPACE), [window], runner=run, store=store, study="s", trials=7
        )
    assert again.windows[0].resumed == 5 and again.windows[0].trials == 7
    numbers = [t.number for t in load_trials(store, "s")]
    assert numbers == list(range(7)), "resuming ran only the two missing trials"

    with local_runner(market(), 1) as run, pytest.raises(ValueError, match="another configuration"):
        optimize(
            market(),
            parse_space(["oversold=5:20", "overbought=60:85"]),
            [window],
            runner=run,
            store=store,
            study="s",
            trials=8,
        )


def test_parallel_processes_give_the_same_trials_as_one_process() -> None:
    times = [b.time for b in btc()["BTC"]]
    windows = make_windows(times, walk_forward=2)
    assert [w.test_start for w in windows] == [times[160], times[320]]
    results = []
    for jobs in (1, 2):
        with local_runner(market(), jobs) as run:
            results.append(
                optimize(
                    market(),
                    parse_space(SPACE),
                    windows,
                    runner=run,
                    store=Store("sqlite://"),
                    study="wf",
                    trials=4,
                    batch=2,
                ).to_json()
            )
    assert results[0] == results[1]
    assert [w["study"] for w in results[0]["windows"]] == ["wf/wf1", "wf/wf2"]


def test_bad_searches_are_refused_clearly() -> None:
    for bad, message in [
        (["oversold"], "must look like"),
        (["oversold=40:10"], "LOW must be below HIGH"),
        (["oversold=a:b"], "bounds must be numbers"),
        ([], "nothing to search"),
    ]:
        with pytest.raises(ValueError, match=message):
            parse_space(bad)
    times = [b.time for b in btc()["BTC"]]
    with pytest.raises(ValueError, match="between 0 and 1"):
        make_windows(times, split=1.5)
    with (
        local_runner(market(), 1) as run,
        pytest.raises(ValueError, match="unknown objective 'nope'"),
    ):
        optimize(
            market(),
            parse_space(SPACE),
            make_windows(times),
            runner=run,
            store=Store("sqlite://"),
            study="x",
            trials=2,
            objective="nope",
        )


CLI_SEARCH = [
    "optimize", "--dataset", "demo", "--symbols", "BTC", "--from", "2023-04-12T00:00",
    "--to", "2023-04-12T07:59", "--strategy", "rsi", "--param", "period=7",
    "--space", SPACE[0], "--space", SPACE[1], "--trials", "4",
]  # fmt: skip


def _cli_optimize(env: dict[str, str], *extra: str) -> dict[str, object]:
    code, out, err = run_cli(*CLI_SEARCH, "--json", *extra, env=env, timeout=600)
    assert code == 0, err
    result: dict[str, object] = json.loads(out)
    return result


def test_cli_table_shows_returns_in_percent_and_money_in_dollars(tmp_path: Path) -> None:
    env = server_env(free_port(), tmp_path)
    found = _cli_optimize(env, "--study", "shown")
    code, out, err = run_cli(*CLI_SEARCH, "--study", "shown", env=env, timeout=600)  # resumes
    assert code == 0, err
    (window,) = found["windows"]  # type: ignore[misc]
    for figures in (window["in_sample"], window["out_of_sample"]):
        assert isinstance(figures["final_equity"], str)  # JSON keeps the exact figure
        for name, kind in [
            ("total_return", "pct"),
            ("max_drawdown", "pct"),
            ("sharpe", "ratio"),
            ("final_equity", "money"),
        ]:
            assert metric(figures[name], kind) in out, (name, out)
    assert "%" in out and "$" in out
    assert not re.search(r"\d{9,}", out.replace(",", "")), out  # no 28-digit figures


def test_cli_locally_and_on_a_local_ray_instance(tmp_path: Path) -> None:
    env = server_env(free_port(), tmp_path)
    local = _cli_optimize(env, "--study", "cli", "--jobs", "2")
    (window,) = local["windows"]  # type: ignore[misc]
    assert window["trials"] == 4 and set(window["best_params"]) == {"oversold", "overbought"}
    assert window["out_of_sample"]["bars"] == 144  # --split 0.7 of 480 bars
    store = Store(f"sqlite:///{tmp_path / 'phantomex.db'}")
    assert len(load_trials(store, "cli")) == 4  # kept in the project's database
    store.close()

    ray = Path(sys.executable).parent / "ray"  # Ray is a test dependency (requirements-dev)
    port = free_port()
    ray_env = {**env, "RAY_USAGE_STATS_ENABLED": "0"}
    temp = Path("/tmp") / f"ray-{port}"  # Ray's socket paths must stay short
    started = subprocess.run(
        [str(ray), "start", "--head", f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
         f"--temp-dir={temp}", "--disable-usage-stats"],
        env=ray_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        on_ray = _cli_optimize(env, "--study", "ray", "--jobs", "2", "--ray", f"127.0.0.1:{port}")
    finally:
        subprocess.run([str(ray), "stop", "--force"], env=ray_env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
    (ray_window,) = on_ray["windows"]  # type: ignore[misc]
    assert ray_window["trials"] == 4
    # the same seeded search, run on Ray workers: the same trials, the same results
    assert {k: v for k, v in ray_window.items() if k != "study"} == {
        k: v for k, v in window.items() if k != "study"
    }
