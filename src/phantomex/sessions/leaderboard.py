"""The leaderboard: agents and models ranked across sessions, with bootstrap intervals.

- **Who is ranked.** Across sessions, an *entrant* is a model (``llm:qwen2.5:7b``) or a strategy
  with its parameters (``rsi(high=70,low=30,period=14)``); within one session, each agent. An
  entrant that ran the same market window several times counts with its latest run there.
- **Same markets only.** A market window is identified by its fingerprint (data source, symbols,
  start, end, bar period, fee). Entrants are ranked together only when they faced exactly the
  same set of windows; each such set is a group. ``mix=True`` ranks everyone together anyway
  and says plainly that the windows differ. Buy-and-hold (equal weights, bought at the start,
  entry fee paid) and cash are benchmark rows in every group.
- **Figures.** Per-period returns of the equity curves are chained over the group's windows:
  total return, Sharpe and Sortino (annualised as in :mod:`phantomex.research.metrics` when the
  group's returns span at least a day, else per period; each group's ``ratio_basis`` says
  which), max drawdown, trade count; win rate over closed round trips.
- **Intervals.** A circular block bootstrap of the per-period returns (block length about
  n^(1/3), ``resamples`` draws, seeded: the same inputs give the same intervals) resamples the
  same blocks for every row, giving percentile intervals of return, Sharpe, Sortino, max
  drawdown and trade count (trades per period resampled with the returns); the win rate's
  interval is ``scipy.stats.bootstrap`` (percentile) over the round trips' outcomes.
- **Significance.** For each pair, the interval of the *difference* of the ranking metric from
  the same (paired) resamples; a difference whose interval contains 0 is not significant. For
  the win rate (round trips are not paired) the pair is not significant when the two intervals
  overlap.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import combinations
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import stats

from phantomex.research.metrics import TradeRecord, ratio_basis, round_trips

Array = npt.NDArray[np.float64]
METRICS = ("total_return", "sharpe", "sortino", "max_drawdown", "win_rate", "trades")
PATH_METRICS = ("total_return", "sharpe", "sortino", "max_drawdown", "trades")
MAX_CELLS = 5_000_000  # resamples x periods held in memory at once
MIN_VALID = 0.95  # an interval needs this share of resamples where the metric is defined


class LeaderboardError(ValueError):
    pass


@dataclass
class Result:
    """One entrant's results on one market window (from a stored session)."""

    session_id: str
    session: str
    name: str
    entrant: str
    role: str
    fingerprint: str
    window: dict[str, Any]
    returns: Array
    fills: Array  # trades per period, aligned with returns
    wins: list[bool]  # closed round trips: won?
    created_at: str


@dataclass
class Row:
    key: str
    names: list[str]
    role: str
    results: list[Result] = field(default_factory=list)
    returns: Array = field(default_factory=lambda: np.empty(0))
    fills: Array = field(default_factory=lambda: np.empty(0))
    wins: list[bool] = field(default_factory=list)


# -- statistics, vectorised over the last axis -----------------------------------------------------
def _total_return(r: Array, fills: Array, ppy: float) -> Array:
    return np.asarray(np.prod(1.0 + r, axis=-1) - 1.0)


def _sharpe(r: Array, fills: Array, ppy: float) -> Array:
    sd = np.std(r, axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.mean(r, axis=-1) / sd * math.sqrt(ppy)
    return np.asarray(np.where(sd > 0, out, np.nan))


def _sortino(r: Array, fills: Array, ppy: float) -> Array:
    down = np.sqrt(np.mean(np.square(np.minimum(r, 0.0)), axis=-1)) * math.sqrt(ppy)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.mean(r, axis=-1) * ppy / down
    return np.asarray(np.where(down > 0, out, np.nan))


def _max_drawdown(r: Array, fills: Array, ppy: float) -> Array:
    ones = np.ones((*r.shape[:-1], 1))
    e = np.cumprod(np.concatenate([ones, 1.0 + r], axis=-1), axis=-1)
    return np.asarray(np.min(e / np.maximum.accumulate(e, axis=-1) - 1.0, axis=-1))


def _trades(r: Array, fills: Array, ppy: float) -> Array:
    return np.asarray(np.sum(fills, axis=-1), dtype=np.float64)


STATS: dict[str, Callable[[Array, Array, float], Array]] = {
    "total_return": _total_return,
    "sharpe": _sharpe,
    "sortino": _sortino,
    "max_drawdown": _max_drawdown,
    "trades": _trades,
}


def block_indices(n: int, resamples: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """Circular block bootstrap: ``resamples`` rows of ``n`` period indices made of blocks of
    about n^(1/3) consecutive periods starting anywhere (wrapping around)."""
    length = max(1, round(n ** (1 / 3)))
    k = math.ceil(n / length)
    starts = rng.integers(0, n, size=(resamples, k))
    idx = (starts[:, :, None] + np.arange(length)) % n
    return np.asarray(idx.reshape(resamples, k * length)[:, :n])


def _interval(samples: Array, confidence: float) -> list[float] | None:
    ok = samples[np.isfinite(samples)]
    if samples.size == 0 or ok.size < MIN_VALID * samples.size:
        return None
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(ok, [tail, 100 - tail])
    return [float(lo), float(hi)]


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def win_rate_interval(
    wins: Sequence[bool], confidence: float, resamples: int, seed: int
) -> list[float] | None:
    if len(wins) < 2:
        return None
    data = np.asarray(wins, dtype=np.float64)
    if np.all(data == data[0]):
        return [float(data[0]), float(data[0])]
    res = stats.bootstrap(
        (data,),
        np.mean,
        confidence_level=confidence,
        n_resamples=resamples,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


# -- from stored sessions --------------------------------------------------------------------------
def results_of(session: dict[str, Any]) -> list[Result]:
    """The results of a stored session (as :class:`SessionRepo` returns it)."""
    times = [datetime.fromisoformat(t) for t in session.get("times") or []]
    out = []
    for a in session["agents"]:
        equity = np.array([float(Decimal(v)) for v in a.get("equity") or []], dtype=np.float64)
        n = min(len(times), equity.size)
        if n < 2:
            continue
        equity = equity[:n]
        returns = np.asarray(equity[1:] / equity[:-1] - 1.0, dtype=np.float64)
        fills = np.zeros(n - 1)
        records = [_trade(t, a["name"]) for t in a.get("trades") or []]
        if records:
            stamps = np.array([t.time.timestamp() for t in records])
            grid = np.array([t.timestamp() for t in times[1:n]])
            at = np.clip(np.searchsorted(grid, stamps, side="left"), 0, n - 2)
            np.add.at(fills, at, 1.0)
        out.append(
            Result(
                session_id=session["id"],
                session=session["name"],
                name=a["name"],
                entrant=a["entrant"],
                role=a["role"],
                fingerprint=session["fingerprint"],
                window=session["window"],
                returns=returns,
                fills=fills,
                wins=[t.pnl > 0 for t in round_trips(records)],
                created_at=session["created_at"],
            )
        )
    return out


def _trade(t: dict[str, Any], agent: str) -> TradeRecord:
    return TradeRecord(
        symbol=t["symbol"],
        side=t["side"],
        quantity=Decimal(t["quantity"]),
        price=Decimal(t["price"]),
        fee=Decimal(t["fee"]),
        time=datetime.fromisoformat(t["time"].replace("Z", "+00:00")),
        agent=agent,
    )


# -- the board -------------------------------------------------------------------------------------
def leaderboard(
    sessions: Sequence[dict[str, Any]],
    *,
    per_session: bool = False,
    by: str = "total_return",
    mix: bool = False,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Rank the results of ``sessions`` (see the module docstring). ``per_session``: rows are
    the agents of one session by name rather than entrants across sessions."""
    if by not in METRICS:
        raise LeaderboardError(f"unknown metric {by!r} (one of {', '.join(METRICS)})")
    results = [r for s in sessions for r in results_of(s)]
    groups = _groups(results, per_session=per_session, mix=mix)
    out_groups = [
        _rank(rows, by=by, confidence=confidence, resamples=resamples, seed=seed) for rows in groups
    ]
    note = None
    if mix and out_groups and not out_groups[0]["comparable"]:
        note = (
            "This ranking mixes agents that did NOT face the same market windows: "
            "their figures are not directly comparable."
        )
    elif len(out_groups) > 1:
        note = (
            f"{len(out_groups)} groups faced different market windows; agents are ranked only "
            "against agents of their own group."
        )
    return {
        "by": by,
        "confidence": confidence,
        "resamples": resamples,
        "seed": seed,
        "method": (
            "circular block bootstrap of per-period returns (paired across rows) for return, "
            "Sharpe, Sortino, max drawdown and trades; scipy.stats.bootstrap over round trips "
            "for the win rate; a pair is not significant when the interval of its difference "
            "contains 0 (win rate: when the two intervals overlap)"
        ),
        "note": note,
        "groups": out_groups,
    }


def _groups(results: list[Result], *, per_session: bool, mix: bool) -> list[list[Row]]:
    if per_session:
        rows = [Row(r.name, [r.name], r.role, [r]) for r in results]
        return [_chain(rows)] if rows else []
    latest: dict[tuple[str, str], Result] = {}
    names: dict[str, list[str]] = {}
    for r in sorted(results, key=lambda r: r.created_at):
        latest[(r.entrant, r.fingerprint)] = r
        if r.name not in names.setdefault(r.entrant, []):
            names[r.entrant].append(r.name)
    by_entrant: dict[str, list[Result]] = {}
    for (entrant, _), r in latest.items():
        by_entrant.setdefault(entrant, []).append(r)
    bench = {e: rs for e, rs in by_entrant.items() if rs[0].role == "benchmark"}
    agents = {e: rs for e, rs in by_entrant.items() if e not in bench}
    sets: dict[frozenset[str], list[str]] = {}
    for e, rs in agents.items():
        key = frozenset() if mix else frozenset(r.fingerprint for r in rs)
        sets.setdefault(key, []).append(e)
    groups = []
    for key, entrants in sets.items():
        rows = [Row(e, names[e], "agent", agents[e]) for e in entrants]
        prints = {r.fingerprint for e in entrants for r in agents[e]} if mix else set(key)
        for e, rs in bench.items():
            mine = [r for r in rs if r.fingerprint in prints]
            if len(mine) == len(prints):
                rows.append(Row(e, [e], "benchmark", mine))
        groups.append(_chain(rows))
    return groups


def _chain(rows: list[Row]) -> list[Row]:
    """Each row's returns, trades and round trips over its windows, in market-time order."""
    for row in rows:
        row.results.sort(key=lambda r: (r.window["start"], r.fingerprint))
        row.returns = np.concatenate([r.returns for r in row.results])
        row.fills = np.concatenate([r.fills for r in row.results])
        row.wins = [w for r in row.results for w in r.wins]
    return rows


def _rank(
    rows: list[Row], *, by: str, confidence: float, resamples: int, seed: int
) -> dict[str, Any]:
    windows = {r.fingerprint: r.window for row in rows for r in row.results}
    comparable = len({frozenset(r.fingerprint for r in row.results) for row in rows}) <= 1
    period = timedelta(seconds=float(next(iter(windows.values()))["period_seconds"]))
    sizes = {row.returns.size for row in rows}
    basis = ratio_basis(period, max(sizes))
    ppy = basis.scale
    paired = len(sizes) == 1
    draws: dict[str, dict[str, Array]] = {}
    table: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        n = row.returns.size
        count = max(50, min(resamples, MAX_CELLS // max(n, 1)))
        rng = np.random.default_rng(seed if paired else seed + i)
        idx = block_indices(n, count, rng)
        r, f = row.returns[idx], row.fills[idx]
        draws[row.key] = {m: fn(r, f, ppy) for m, fn in STATS.items()}
        point = {m: fn(row.returns[None, :], row.fills[None, :], ppy)[0] for m, fn in STATS.items()}
        figures: dict[str, Any] = {
            m: {"value": _finite(point[m]), "ci": _interval(draws[row.key][m], confidence)}
            for m in PATH_METRICS
        }
        figures["trades"]["value"] = int(point["trades"])
        figures["win_rate"] = {
            "value": sum(row.wins) / len(row.wins) if row.wins else None,
            "ci": win_rate_interval(row.wins, confidence, min(resamples, 2000), seed),
            "round_trips": len(row.wins),
        }
        table.append(
            {
                "entrant": row.key,
                "names": row.names,
                "role": row.role,
                "sessions": sorted({r.session_id for r in row.results}),
                "periods": n,
                **figures,
            }
        )

    def order(entry: dict[str, Any]) -> tuple[int, float]:
        value = entry[by]["value"]
        return (0, -value) if value is not None else (1, 0.0)

    table.sort(key=order)
    for rank, entry in enumerate(table, start=1):
        entry["rank"] = rank
        entry["not_significant_vs"] = []
    pairs = []
    for a, b in combinations(table, 2):
        pair = _pair(a, b, by, draws, paired, confidence)
        pairs.append(pair)
        if pair["significant"] is False:
            a["not_significant_vs"].append(b["entrant"])
            b["not_significant_vs"].append(a["entrant"])
    return {
        "comparable": comparable,
        "ratio_basis": basis.to_json(),
        "windows": sorted(windows.values(), key=lambda w: (w["start"], w["source"])),
        "fingerprints": sorted(windows),
        "rows": table,
        "pairs": pairs,
    }


def _pair(
    a: dict[str, Any],
    b: dict[str, Any],
    by: str,
    draws: dict[str, dict[str, Array]],
    paired: bool,
    confidence: float,
) -> dict[str, Any]:
    va, vb = a[by]["value"], b[by]["value"]
    out: dict[str, Any] = {
        "a": a["entrant"],
        "b": b["entrant"],
        "metric": by,
        "difference": va - vb if va is not None and vb is not None else None,
        "ci": None,
        "significant": None,
    }
    if by in PATH_METRICS and paired:
        ci = _interval(draws[a["entrant"]][by] - draws[b["entrant"]][by], confidence)
        out["method"] = "paired bootstrap of the difference"
        if ci is not None:
            out["ci"] = ci
            out["significant"] = not ci[0] <= 0.0 <= ci[1]
        return out
    out["method"] = "interval overlap"
    ca, cb = a[by]["ci"], b[by]["ci"]
    if ca is not None and cb is not None:
        out["significant"] = ca[1] < cb[0] or cb[1] < ca[0]
    return out
