"""Parameter search with Optuna over backtests on the live kernel, with out-of-sample checks.

Each trial is one backtest (``run_backtest``: the same kernel as live trading) on the in-sample
window; the best parameters are then run once on the out-of-sample window that follows. With a
train/test split there is one window; walk-forward makes several rolling ones.

Trials are asked and told in batches (Optuna's ask-and-tell interface) and evaluated in parallel
on local processes or on a Ray cluster; each batch is told in trial order, so a seeded study gives
the same trials whatever the parallelism. Every finished trial is saved in the project's database
(``store/optimize.py``), and a study of the same name resumes from them."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import optuna

from phantomex.domain.models import Bar
from phantomex.research.backtest import run_backtest
from phantomex.research.spec import (
    BacktestConfig,
    BacktestError,
    Fill,
    select_window,
    strategy_agent,
)
from phantomex.store.optimize import load_trials, save_trial
from phantomex.store.optimize_tables import OptimizationTrialRow
from phantomex.store.repo import Store

#: Metrics where smaller is better; every other metric is maximised (``max_drawdown`` is <= 0).
optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own output says what happened

MINIMISED = frozenset(
    {"annual_volatility", "max_drawdown_duration_bars", "max_drawdown_duration_seconds"}
)
Progress = Callable[[int, int], None]  # (trials finished in this window, trials wanted)


@dataclass(frozen=True)
class Dimension:
    """One searched parameter: ``low..high`` (ints when both bounds are, with an optional
    ``step``) or a list of choices."""

    name: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    choices: tuple[Any, ...] = ()

    def distribution(self) -> optuna.distributions.BaseDistribution:
        if self.choices:
            return optuna.distributions.CategoricalDistribution(self.choices)
        assert self.low is not None and self.high is not None
        if isinstance(self.low, int) and isinstance(self.high, int):
            return optuna.distributions.IntDistribution(
                self.low, self.high, step=int(self.step or 1)
            )
        return optuna.distributions.FloatDistribution(self.low, self.high, step=self.step)


def parse_space(items: Sequence[str]) -> dict[str, Dimension]:
    """``name=LOW:HIGH[:STEP]`` or ``name=a|b|c``, as given to ``--space``."""
    space: dict[str, Dimension] = {}
    for item in items:
        name, sep, text = (part.strip() for part in item.partition("="))
        if not sep or not name or not text:
            raise ValueError(f"--space must look like name=LOW:HIGH or name=a|b, got {item!r}")
        if "|" in text:
            space[name] = Dimension(name, choices=tuple(_number(c) for c in text.split("|")))
            continue
        bounds = [_number(x) for x in text.split(":")]
        if len(bounds) not in (2, 3) or not all(isinstance(b, int | float) for b in bounds):
            raise ValueError(f"--space {name}: bounds must be numbers LOW:HIGH[:STEP]")
        low, high = bounds[0], bounds[1]
        if not low < high:
            raise ValueError(f"--space {name}: LOW must be below HIGH")
        step = bounds[2] if len(bounds) == 3 else None
        if step is not None and not step > 0:
            raise ValueError(f"--space {name}: STEP must be positive")
        space[name] = Dimension(name, low, high, step)
    if not space:
        raise ValueError("nothing to search: give at least one --space name=LOW:HIGH")
    return space


@dataclass(frozen=True)
class Window:
    """In-sample ``[train_start, test_start)`` then out-of-sample ``[test_start, test_end)``."""

    train_start: datetime
    test_start: datetime
    test_end: datetime


def make_windows(
    times: Sequence[datetime], *, split: float = 0.7, walk_forward: int = 0
) -> list[Window]:
    """One train/test split at ``split`` of the bars, or ``walk_forward`` rolling windows: the
    bars cut into ``walk_forward + 1`` equal parts, window ``i`` trains on part ``i`` and tests
    on part ``i + 1``."""
    n = len(times)
    if n < 2:
        raise ValueError("too few bars to optimise")
    end = times[-1] + (times[-1] - times[-2])  # exclusive: the last bar is in
    if walk_forward:
        if walk_forward < 1 or n < 4 * (walk_forward + 1):
            raise ValueError(f"too few bars ({n}) for {walk_forward} walk-forward windows")
        cuts = [times[n * k // (walk_forward + 1)] for k in range(walk_forward + 1)] + [end]
        return [Window(cuts[i], cuts[i + 1], cuts[i + 2]) for i in range(walk_forward)]
    if not 0 < split < 1:
        raise ValueError(f"--split must be between 0 and 1, got {split}")
    cut = int(n * split)
    if cut < 2 or n - cut < 2:
        raise ValueError(f"too few bars ({n}) to split at {split}")
    return [Window(times[0], times[cut], end)]


@dataclass(frozen=True)
class Market:
    """Everything a trial needs besides its parameters (sent once to each worker)."""

    data: Mapping[str, Sequence[Bar]]
    strategy: str
    fixed: Mapping[str, Any]
    cash: Decimal = Decimal(10_000)
    fee_bps: Decimal = Decimal(10)
    slippage_bps: Decimal = Decimal(0)
    fill: Fill = "next_open"
    interval_seconds: int = 60
    #: "fast": trials on the research engine (the exact kernel for what it cannot run);
    #: "exact": on the exact kernel
    engine: str = "fast"


#: Trials re-run on the exact kernel after a search on the research engine: the best and up to
#: this many others (spread over the study).
VERIFY_SAMPLE = 3


def evaluate(
    market: Market, params: Mapping[str, Any], start: datetime, end: datetime
) -> dict[str, Any]:
    """Backtest ``market.strategy`` with ``params`` on ``[start, end)``; its metrics."""
    from phantomex.research.fast import run_engine

    result = run_engine(trial_config(market, params, start, end), market.engine)
    return {
        **result.metrics,
        "final_equity": format(result.final_equity, "f"),
        "engine": result.engine,
    }


def trial_config(
    market: Market, params: Mapping[str, Any], start: datetime, end: datetime
) -> BacktestConfig:
    """The backtest of one trial."""
    window = select_window(market.data, start, end)
    if not window:
        raise BacktestError(f"no bars between {start} and {end}")
    agent = strategy_agent(
        market.strategy,
        {**market.fixed, **params},
        symbols=list(window),
        cash=market.cash,
        interval_seconds=market.interval_seconds,
    )
    return BacktestConfig(
        data=window,
        agents=[agent],
        fee_bps=market.fee_bps,
        slippage_bps=market.slippage_bps,
        fill=market.fill,
    )


def verify(
    market: Market, param_sets: Sequence[Mapping[str, Any]], start: datetime, end: datetime
) -> dict[str, Any]:
    """Re-run ``param_sets`` on the exact kernel and on the research engine: how many were
    checked and every difference (each an error: the engines must agree)."""
    from phantomex.research.fast import differences, run_fast

    checked, errors = 0, []
    for params in param_sets:
        try:
            config = trial_config(market, params, start, end)
            fast = run_fast(config)
        except (BacktestError, ValueError):  # FastUnsupported: the trial ran exactly
            continue
        found = differences(fast, run_backtest(config))
        checked += 1
        errors += [f"{dict(params)}: {d}" for d in found]
    return {"checked": checked, "differences": errors}


@dataclass
class WindowResult:
    window: Window
    study: str
    trials: int
    resumed: int
    best_params: dict[str, Any]
    in_sample: dict[str, Any]
    out_of_sample: dict[str, Any]
    exact_check: dict[str, Any] = field(default_factory=dict)


@dataclass
class OptimizeResult:
    objective: str
    direction: str
    windows: list[WindowResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "objective": self.objective,
            "direction": self.direction,
            "windows": [
                {
                    "study": w.study,
                    "train": [w.window.train_start.isoformat(), w.window.test_start.isoformat()],
                    "test": [w.window.test_start.isoformat(), w.window.test_end.isoformat()],
                    "trials": w.trials,
                    "resumed_trials": w.resumed,
                    "best_params": w.best_params,
                    "in_sample": w.in_sample,
                    "out_of_sample": w.out_of_sample,
                    "exact_check": w.exact_check,
                }
                for w in self.windows
            ],
        }

    @property
    def errors(self) -> list[str]:
        """Differences between the research engine and the exact kernel (should be none)."""
        return [d for w in self.windows for d in w.exact_check.get("differences", [])]


# -- where trials run ------------------------------------------------------------------------------
Runner = Callable[[list[tuple[dict[str, Any], datetime, datetime]]], list[dict[str, Any] | str]]

_worker_market: Market | None = None


def _init_worker(market: Market) -> None:
    global _worker_market
    _worker_market = market


def _worker_evaluate(
    params: dict[str, Any], start: datetime, end: datetime
) -> dict[str, Any] | str:
    assert _worker_market is not None
    return _safe_evaluate(_worker_market, params, start, end)


def _safe_evaluate(
    market: Market, params: Mapping[str, Any], start: datetime, end: datetime
) -> dict[str, Any] | str:
    """The metrics, or the reason the trial failed (bad parameter combination, ...)."""
    try:
        return evaluate(market, params, start, end)
    except (BacktestError, ValueError) as exc:
        return str(exc)


@contextmanager
def local_runner(market: Market, jobs: int) -> Iterator[Runner]:
    """Trials in this process (``jobs`` 1) or on ``jobs`` worker processes."""
    if jobs <= 1:
        yield lambda batch: [_safe_evaluate(market, *task) for task in batch]
        return
    with ProcessPoolExecutor(jobs, initializer=_init_worker, initargs=(market,)) as pool:
        yield lambda batch: [f.result() for f in [pool.submit(_worker_evaluate, *t) for t in batch]]


@contextmanager
def ray_runner(market: Market, address: str) -> Iterator[Runner]:
    """Trials as Ray tasks on the cluster at ``address`` (``local`` starts one in-process);
    the market is put in Ray's object store once."""
    try:
        import ray
    except ImportError as exc:  # the optional extra
        raise BacktestError("Ray is not installed: pip install 'phantomex[ray]'") from exc
    ray.init(address=None if address == "local" else address, log_to_driver=False)
    try:
        remote = ray.remote(_safe_evaluate)
        ref = ray.put(market)
        yield lambda batch: ray.get([remote.remote(ref, *task) for task in batch])
    finally:
        ray.shutdown()


# -- the search -----------------------------------------------------------------------------------
def optimize(
    market: Market,
    space: Mapping[str, Dimension],
    windows: Sequence[Window],
    *,
    runner: Runner,
    store: Store,
    study: str,
    trials: int = 50,
    objective: str = "sharpe",
    batch: int = 1,
    seed: int = 42,
    progress: Progress | None = None,
) -> OptimizeResult:
    """Search ``space`` in each window until its study has ``trials`` finished trials (resuming
    stored ones), then run the best parameters out of sample."""
    direction: Literal["minimize", "maximize"] = (
        "minimize" if objective in MINIMISED else "maximize"
    )
    distributions = {name: d.distribution() for name, d in space.items()}
    result = OptimizeResult(objective, direction)
    for i, window in enumerate(windows):
        name = study if len(windows) == 1 else f"{study}/wf{i + 1}"
        config = _study_config(market, space, window, objective)
        opt = optuna.create_study(
            direction=direction, sampler=optuna.samplers.TPESampler(seed=seed + i)
        )
        resumed = _resume(opt, store, name, config, distributions)
        done = resumed
        while done < trials:
            asked = [opt.ask(distributions) for _ in range(min(batch, trials - done))]
            outcomes = runner([(t.params, window.train_start, window.test_start) for t in asked])
            for trial, outcome in zip(asked, outcomes, strict=True):
                value = _objective_value(outcome, objective)
                state = "complete" if value is not None else "fail"
                if value is None:
                    opt.tell(trial, state=optuna.trial.TrialState.FAIL)
                else:
                    opt.tell(trial, value)
                save_trial(
                    store,
                    OptimizationTrialRow(
                        study=name,
                        number=trial.number,
                        state=state,
                        params=trial.params,
                        value=value,
                        metrics=outcome if isinstance(outcome, dict) else {"error": outcome},
                        study_config=config,
                        created_at=datetime.now(UTC),
                    ),
                )
                done += 1
            if progress is not None:
                progress(done, trials)
        complete = [t for t in opt.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if not complete:
            raise BacktestError(f"study {name!r}: every trial failed; check the search space")
        best = opt.best_trial
        check: dict[str, Any] = {}
        if market.engine == "fast":
            others = [t for t in complete if t.number != best.number]
            step = max(1, len(others) // VERIFY_SAMPLE)
            sample = [best.params] + [t.params for t in others[::step][:VERIFY_SAMPLE]]
            check = verify(market, sample, window.train_start, window.test_start)
        in_sample = runner([(best.params, window.train_start, window.test_start)])[0]
        out_sample = runner([(best.params, window.test_start, window.test_end)])[0]
        result.windows.append(
            WindowResult(
                window,
                name,
                trials=done,
                resumed=resumed,
                best_params=dict(best.params),
                in_sample=in_sample if isinstance(in_sample, dict) else {"error": in_sample},
                out_of_sample=out_sample if isinstance(out_sample, dict) else {"error": out_sample},
                exact_check=check,
            )
        )
    return result


def _resume(
    opt: optuna.Study,
    store: Store,
    name: str,
    config: dict[str, Any],
    distributions: Mapping[str, optuna.distributions.BaseDistribution],
) -> int:
    """Add a stored study's trials to ``opt``; refuse one that searched something else."""
    rows = load_trials(store, name)
    for row in rows:
        if row.study_config != config:
            raise BacktestError(
                f"study {name!r} exists with another configuration (data, strategy, space or "
                "objective); choose another --study name"
            )
        opt.add_trial(
            optuna.trial.create_trial(
                params=row.params,
                distributions=dict(distributions),
                value=row.value if row.state == "complete" else None,
                state=optuna.trial.TrialState.COMPLETE
                if row.state == "complete"
                else optuna.trial.TrialState.FAIL,
            )
        )
    return len(rows)


def _objective_value(outcome: dict[str, Any] | str, objective: str) -> float | None:
    if isinstance(outcome, str):
        return None
    if objective not in outcome:
        raise BacktestError(
            f"unknown objective {objective!r}; metrics: {', '.join(sorted(outcome))}"
        )
    value = outcome[objective]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None  # undefined for this trial (e.g. Sharpe with no trade)
    return number if math.isfinite(number) else None


def _study_config(
    market: Market, space: Mapping[str, Dimension], window: Window, objective: str
) -> dict[str, Any]:
    """What a study searched, as JSON: resuming it with anything else is refused."""
    first = {s: bars[0].time.isoformat() for s, bars in market.data.items() if bars}
    config = {
        "strategy": market.strategy,
        "fixed": dict(market.fixed),
        "symbols": sorted(market.data),
        "first_bars": first,
        "train": [window.train_start.isoformat(), window.test_start.isoformat()],
        "test": [window.test_start.isoformat(), window.test_end.isoformat()],
        "space": {n: {k: v for k, v in asdict(d).items() if k != "name"} for n, d in space.items()},
        "objective": objective,
        "market": {
            "cash": str(market.cash),
            "fee_bps": str(market.fee_bps),
            "slippage_bps": str(market.slippage_bps),
            "fill": market.fill,
        },
    }
    normalised: dict[str, Any] = json.loads(json.dumps(config))  # as stored: tuples are lists
    return normalised


def _number(text: str) -> Any:
    text = text.strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text
