"""The leaderboard on stored-session shapes: intervals, significance, window groups, benchmarks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from phantomex.sessions.leaderboard import (
    LeaderboardError,
    block_indices,
    leaderboard,
    win_rate_interval,
)

START = datetime(2023, 4, 10, tzinfo=UTC)


def curve(returns: np.ndarray, cash: float = 10_000.0) -> list[str]:
    equity = cash * np.cumprod(np.concatenate([[1.0], 1.0 + returns]))
    return [format(Decimal(repr(float(v))), "f") for v in equity]


def session(
    sid: str,
    agents: dict[str, np.ndarray],
    *,
    start: datetime = START,
    created: str = "2026-01-01T00:00:00Z",
    trades: dict[str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    n = len(next(iter(agents.values())))
    times = [(start + timedelta(minutes=i)).isoformat() for i in range(n + 1)]
    window = {
        "source": "dataset:demo",
        "symbols": ["BTC"],
        "start": start.isoformat(),
        "end": (start + timedelta(minutes=n)).isoformat(),
        "period_seconds": 60.0,
        "fee_bps": "10",
    }
    rows = [
        {
            "name": name,
            "role": "benchmark" if name in ("buy-and-hold", "cash") else "agent",
            "entrant": name if name in ("buy-and-hold", "cash") else f"{name}()",
            "equity": curve(r),
            "trades": (trades or {}).get(name, []),
        }
        for name, r in agents.items()
    ]
    return {
        "id": sid,
        "name": sid,
        "fingerprint": f"fp-{start.isoformat()}",
        "window": window,
        "times": times,
        "created_at": created,
        "agents": rows,
    }


def test_a_clear_winner_is_significant_and_twins_are_not() -> None:
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 0.001, 500)
    s = session(
        "s1",
        {
            "up": noise + 0.002,  # a strong drift
            "twin_a": noise,
            "twin_b": noise + rng.normal(0, 1e-6, 500),
            "buy-and-hold": noise,
            "cash": np.zeros(500),
        },
    )
    board = leaderboard([s], resamples=500)
    (group,) = board["groups"]
    assert group["comparable"] is True
    rows = {r["entrant"]: r for r in group["rows"]}
    assert group["rows"][0]["entrant"] == "up()"
    lo, hi = rows["up()"]["total_return"]["ci"]
    assert lo <= rows["up()"]["total_return"]["value"] <= hi and lo > 0
    pairs = {(p["a"], p["b"]): p for p in group["pairs"]}
    significant = {frozenset(k): p["significant"] for k, p in pairs.items()}
    assert significant[frozenset({"up()", "twin_a()"})] is True
    assert significant[frozenset({"twin_a()", "twin_b()"})] is False
    assert "twin_b()" in rows["twin_a()"]["not_significant_vs"]
    assert rows["cash"]["sharpe"] == {"value": None, "ci": None}  # undefined, not zero
    assert rows["cash"]["total_return"]["value"] == 0.0


def test_the_same_seed_gives_the_same_intervals() -> None:
    rng = np.random.default_rng(2)
    s = session("s1", {"a": rng.normal(0, 0.001, 200), "b": rng.normal(0, 0.001, 200)})
    one = leaderboard([s], seed=5, resamples=300)
    two = leaderboard([s], seed=5, resamples=300)
    other = leaderboard([s], seed=6, resamples=300)
    assert one == two
    assert (
        one["groups"][0]["rows"][0]["sharpe"]["ci"] != other["groups"][0]["rows"][0]["sharpe"]["ci"]
    )


def test_agents_of_different_windows_are_not_ranked_together_unless_asked() -> None:
    rng = np.random.default_rng(3)
    first = session("s1", {"a": rng.normal(0, 0.001, 100), "buy-and-hold": np.zeros(100)})
    later = START + timedelta(days=1)
    second = session(
        "s2", {"b": rng.normal(0, 0.001, 100), "buy-and-hold": np.zeros(100)}, start=later
    )
    board = leaderboard([first, second], resamples=200)
    assert len(board["groups"]) == 2
    assert "different market windows" in board["note"]
    for group in board["groups"]:
        names = {r["entrant"] for r in group["rows"]}
        assert "buy-and-hold" in names and len(names) == 2  # the benchmark joins every group
    mixed = leaderboard([first, second], mix=True, resamples=200)
    (group,) = mixed["groups"]
    assert group["comparable"] is False
    assert "NOT face the same market windows" in mixed["note"]


def test_an_entrant_in_two_windows_is_chained_and_compared_with_its_peers() -> None:
    r1, r2 = np.full(50, 0.001), np.full(50, -0.0005)
    later = START + timedelta(days=1)
    a = session("s1", {"a": r1, "b": r2})
    b = session("s2", {"a": r2, "b": r1}, start=later, created="2026-01-02T00:00:00Z")
    (group,) = leaderboard([a, b], resamples=200)["groups"]
    rows = {r["entrant"]: r for r in group["rows"]}
    assert rows["a()"]["periods"] == rows["b()"]["periods"] == 100
    expected = (1.001**50) * (0.9995**50) - 1
    assert rows["a()"]["total_return"]["value"] == pytest.approx(expected)
    assert sorted(rows["a()"]["sessions"]) == ["s1", "s2"]


def test_trades_and_win_rate_get_intervals() -> None:
    def trade(side: str, price: str, minute: int) -> dict[str, Any]:
        t = (START + timedelta(minutes=minute, seconds=30)).isoformat()
        return {
            "symbol": "BTC",
            "side": side,
            "quantity": "1",
            "price": price,
            "fee": "0",
            "time": t,
        }

    trades = []
    for i, exit_price in enumerate(["110", "90", "120", "105"]):
        trades += [trade("buy", "100", 10 * i), trade("sell", exit_price, 10 * i + 5)]
    rng = np.random.default_rng(4)
    s = session("s1", {"a": rng.normal(0, 0.001, 60)}, trades={"a": trades})
    (row,) = leaderboard([s], by="win_rate", resamples=300)["groups"][0]["rows"]
    assert row["trades"]["value"] == 8
    assert row["trades"]["ci"][0] <= 8 <= row["trades"]["ci"][1]
    assert row["win_rate"]["value"] == 0.75 and row["win_rate"]["round_trips"] == 4
    lo, hi = row["win_rate"]["ci"]
    assert 0 <= lo <= 0.75 <= hi <= 1


def test_bad_metric_is_refused() -> None:
    with pytest.raises(LeaderboardError, match="unknown metric"):
        leaderboard([], by="luck")


def test_block_indices_are_circular_blocks() -> None:
    idx = block_indices(27, 10, np.random.default_rng(0))
    assert idx.shape == (10, 27)
    steps = np.diff(idx[:, :3], axis=1) % 27  # blocks of 3 consecutive periods
    assert np.all(steps == 1)


def test_win_rate_interval_edge_cases() -> None:
    assert win_rate_interval([True], 0.95, 100, 0) is None
    assert win_rate_interval([True, True, True], 0.95, 100, 0) == [1.0, 1.0]


def test_a_two_hour_session_ranks_by_per_period_ratios_and_states_the_basis() -> None:
    rng = np.random.default_rng(8)
    returns = {"a": rng.normal(-2e-4, 1e-3, 120), "b": rng.normal(1e-4, 1e-3, 120)}
    board = leaderboard([session("s1", returns)], by="sharpe", resamples=200)
    (group,) = board["groups"]
    assert group["ratio_basis"]["annualised"] is False
    assert group["ratio_basis"]["label"] == "per 1-minute period (2 h of returns)"
    rows = {r["entrant"]: r for r in group["rows"]}
    r = returns["a"]
    per_period = float(np.mean(r) / np.std(r, ddof=1))
    assert rows["a()"]["sharpe"]["value"] == pytest.approx(per_period, rel=1e-6)
    assert abs(rows["a()"]["sharpe"]["value"]) < 1  # not the -143.75 of an annualised 2 hours
    week = leaderboard([session("s2", {"a": rng.normal(0, 1e-3, 7 * 1440)})], resamples=100)
    assert week["groups"][0]["ratio_basis"]["annualised"] is True
