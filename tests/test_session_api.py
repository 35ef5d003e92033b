"""A real server: a replay session of four agents (three rule strategies and one simulated LLM)
over the same window, its summary, and the leaderboard with intervals, from the CLI and the API."""

from __future__ import annotations

import contextlib
import gzip
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import conftest
import e2e_helpers
import httpx
import pytest
from conftest import ServerHandle, serve

import phantomex.market
from phantomex.devtools.llm_sim.server import SimServer

WINDOW = ["--from", "2023-04-10T00:00", "--to", "2023-04-10T02:00"]
FOUR = [
    *("--agent", "ruby=rsi"),
    *("--agent", "max=sma_cross:fast=5,slow=20"),
    *("--agent", "sam=spike_fade"),
    *("--agent", "bot=llm:endpoint=sim,model=alpha:7b,interval=300"),
]


@pytest.fixture(scope="module")
def sim() -> Iterator[SimServer]:
    with SimServer(models=["alpha:7b"]) as server:
        yield server


def live_files(folder: Path, bars: int = 3000) -> str:
    """The first bars of the shipped BTC and ETH files: a quick start for the live kernel
    (sessions replay the whole shipped dataset)."""
    shipped = Path(phantomex.market.__file__).parent / "datasets"
    files = []
    for sym in ("BTC", "ETH"):
        with gzip.open(shipped / f"{sym}_1m.csv.gz", "rt") as src:
            lines = [line for _, line in zip(range(bars + 1), src, strict=False)]
        path = folder / f"{sym}_1m.csv"
        path.write_text("".join(lines))
        files.append(str(path))
    return json.dumps(files)


@contextlib.contextmanager
def patient_start(seconds: float = 300.0) -> Iterator[None]:
    """A longer wait for the server to answer (a loaded machine can take minutes to start)."""
    old = conftest.START_TIMEOUT, e2e_helpers.START_TIMEOUT
    conftest.START_TIMEOUT = e2e_helpers.START_TIMEOUT = seconds
    try:
        yield
    finally:
        conftest.START_TIMEOUT, e2e_helpers.START_TIMEOUT = old


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, sim: SimServer) -> Iterator[ServerHandle]:
    folder = tmp_path_factory.mktemp("sessions")
    env = {"PHANTOMEX_DEMO": "false", "PHANTOMEX_REPLAY_FILES": live_files(folder)}
    with patient_start(), serve(folder, **env) as handle:
        handle.post(
            "/api/llm/endpoints", {"name": "sim", "kind": "openai", "base_url": sim.openai_url}
        )
        yield handle


@pytest.fixture(scope="module")
def four(server: ServerHandle) -> dict:
    rc, out, err = server.cli(
        "session", "start", "four", *FOUR, "--symbols", "BTC,ETH", *WINDOW,
        "--summary-endpoint", "sim", "--summary-model", "alpha:7b", "--wait", "--json",
        timeout=600,
    )  # fmt: skip
    assert rc == 0, err
    return dict(json.loads(out))


def test_four_agents_run_the_same_window_to_the_end(server: ServerHandle, four: dict) -> None:
    assert four["status"] == "finished" and four["error"] is None
    assert four["window"]["start"] == "2023-04-10T00:00:00Z"
    assert four["window"]["end"] == "2023-04-10T02:00:00Z"
    agents = {a["name"]: a for a in four["agents"]}
    assert list(agents) == ["ruby", "max", "sam", "bot", "buy-and-hold", "cash"]
    assert agents["bot"]["entrant"] == "llm:alpha:7b"
    assert agents["max"]["entrant"] == "momentum(fast=5,ma=sma,slow=20)"
    for a in agents.values():
        assert len(a["equity"]) == len(four["times"]) == 121
        assert a["start_equity"] == "10000"
    bot = agents["bot"]
    reasons = [d["reasoning"] for d in bot["decisions"]] + [
        r[0] for r in bot["metrics"]["hold_reasons"]
    ]
    assert reasons and all(reasons)  # the model's own words, kept
    assert bot["holds"] + len(bot["decisions"]) >= 20  # a decision every 5 minutes for 2 hours
    assert sum(len(a["trades"]) for a in agents.values()) > 0
    rc, out, _ = server.cli("session", "list")
    assert rc == 0 and "four" in out and "finished" in out


def test_the_summary_is_written_by_the_model_and_audited(server: ServerHandle, four: dict) -> None:
    body = server.get(f"/api/sessions/{four['id']}/summary")
    final = body["latest"]
    assert final["kind"] == "final" and final["author"] == "llm" and final["model"] == "alpha:7b"
    assert final["text"] == final["raw_output"].strip()
    assert final["prompt"][0]["role"] == "system"
    assert '"ruby"' in final["prompt"][1]["content"]  # the figures the model was given
    assert final["figures"]["agents"] and "buy-and-hold" in final["figures"]["benchmarks"]
    assert "Leader:" in final["template"] and "ruby" in final["template"]  # exact figures too
    db = sqlite3.connect(server.data_dir / "phantomex.db")
    try:
        rows = db.execute(
            "select purpose, model, raw_response from llm_calls where agent_id = ?",
            (four["id"],),
        ).fetchall()
    finally:
        db.close()
    assert rows == [("summary", "alpha:7b", final["raw_output"])]
    rc, out, _ = server.cli("session", "show", "four")
    assert rc == 0 and "Summary (final, by llm)" in out and "Figures:" in out and "sam" in out


def test_the_leaderboard_has_intervals_from_the_api_and_the_cli(
    server: ServerHandle, four: dict
) -> None:
    board = server.get("/api/leaderboard", session_id=four["id"])
    (group,) = board["groups"]
    assert group["comparable"] is True
    rows = {r["entrant"]: r for r in group["rows"]}
    assert set(rows) == {"ruby", "max", "sam", "bot", "buy-and-hold", "cash"}
    assert sorted(r["rank"] for r in rows.values()) == [1, 2, 3, 4, 5, 6]
    for r in rows.values():
        lo, hi = r["total_return"]["ci"]
        assert lo <= r["total_return"]["value"] <= hi
        assert r["max_drawdown"]["ci"] is not None and r["trades"]["ci"] is not None
    assert len(group["pairs"]) == 15
    assert all(p["significant"] in (True, False, None) for p in group["pairs"])
    assert board == server.get("/api/leaderboard", session_id=four["id"])  # seeded
    rc, out, err = server.cli("leaderboard", "--session", "four")
    assert rc == 0, err
    assert "buy-and-hold (benchmark)" in out and "Intervals:" in out and "[" in out
    rc, out, _ = server.cli("leaderboard", "--json", "--by", "sharpe")
    assert rc == 0 and json.loads(out)["by"] == "sharpe"


def test_rankings_keep_different_windows_apart(server: ServerHandle, four: dict) -> None:
    body = {
        "name": "later",
        "symbols": ["BTC", "ETH"],
        "agents": [{"name": "ruby", "brain": "rsi"}],
        "replay": {"start": "2023-04-11T00:00:00Z", "end": "2023-04-11T00:30:00Z"},
    }
    created = server.post("/api/sessions", body)
    rc, out, _ = server.cli("session", "show", created["id"][:10], "--wait", "--json")
    assert rc == 0 and json.loads(out)["status"] == "finished"
    board = server.get("/api/leaderboard")
    assert len(board["groups"]) == 2 and "different market windows" in board["note"]
    by_entrants = [{r["entrant"] for r in g["rows"]} for g in board["groups"]]
    assert {"rsi(overbought=70.0,oversold=30.0,period=14)", "buy-and-hold", "cash"} in by_entrants
    mixed = server.get("/api/leaderboard", mix="true")
    assert len(mixed["groups"]) == 1 and "NOT face the same market windows" in mixed["note"]


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        ({"agents": []}, 422, "validation_error", "agents"),
        ({"cash": "-1"}, 422, "validation_error", "cash"),
        ({"agents": [{"name": "x", "brain": "nope"}]}, 422, "unknown_strategy", "brain"),
        (
            {"agents": [{"name": "x", "brain": "llm", "params": {"endpoint": "no", "model": "m"}}]},
            422,
            "unknown_endpoint",
            "params.endpoint",
        ),
        (
            {"replay": {"start": "2023-04-10", "end": "2023-04-09"}},
            422,
            "validation_error",
            "replay",
        ),
        ({"replay": {"start": "2019-01-01", "end": "2019-01-02"}}, 422, "invalid", "replay"),
        ({"kind": "live", "duration": "soon"}, 422, "validation_error", "duration"),
    ],
)
def test_bad_sessions_get_a_uniform_4xx(
    server: ServerHandle, change: dict, status: int, code: str, field: str
) -> None:
    body = {
        "name": "bad",
        "symbols": ["BTC"],
        "agents": [{"name": "a", "brain": "rsi"}],
        "replay": {"start": "2023-04-10T00:00:00Z", "end": "2023-04-10T00:10:00Z"},
        **change,
    }
    resp = httpx.post(f"{server.url}/api/sessions", json=body, timeout=60)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert (error["code"], error["field"]) == (code, field) and error["message"]


def test_unknown_and_finished_sessions(server: ServerHandle, four: dict) -> None:
    missing = httpx.get(f"{server.url}/api/sessions/nope", timeout=30)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    again = httpx.post(f"{server.url}/api/sessions/{four['id']}/stop", timeout=30)
    assert again.status_code == 409 and "not running" in again.json()["error"]["message"]
    luck = httpx.get(f"{server.url}/api/leaderboard", params={"by": "luck"}, timeout=30)
    assert luck.status_code == 422 and luck.json()["error"]["field"] == "by"
    rc, _, err = server.cli("session", "start", "x", "--agent", "y=nope", *WINDOW)
    assert rc == 1 and "unknown strategy 'nope'" in err
    rc, _, err = server.cli("session", "show", "no-such-session")
    assert rc == 1 and "no session" in err


def test_a_live_session_can_be_stopped_from_the_cli(server: ServerHandle) -> None:
    rc, out, err = server.cli(
        "session", "start", "live one", "--agent", "ruby=rsi", "--duration", "1h", "--json"
    )
    assert rc == 0, err
    started = json.loads(out)
    assert started["kind"] == "live" and 0 < started["remaining_seconds"] <= 3600
    rc, out, err = server.cli("session", "stop", started["id"], "--json")
    assert rc == 0, err
    stopped = json.loads(out)
    assert stopped["status"] == "stopped" and stopped["remaining_seconds"] == 0
    agents = {a["name"]: a for a in server.get("/api/agents")}
    assert agents[f"ruby s{started['id'][:6]}"]["status"] == "paused"


def test_a_session_accepts_every_strategy(server: ServerHandle) -> None:
    from phantomex.brains.registry import strategy_names

    every: list[str] = []
    for name in strategy_names():
        llm = ":endpoint=sim,model=alpha:7b,interval=900" if name == "llm" else ""
        every += ["--agent", f"{name}={name}{llm}"]
    rc, out, err = server.cli(
        "session", "start", "every", *every, "--symbols", "BTC",
        "--from", "2023-04-12T00:00", "--to", "2023-04-12T00:30", "--wait", "--json",
        timeout=600,
    )  # fmt: skip
    assert rc == 0, err
    done = json.loads(out)
    assert done["status"] == "finished" and done["error"] is None
    ran = {a["name"] for a in done["agents"] if a["role"] == "agent"}
    assert ran == set(strategy_names())


def test_session_tables_keep_key_values_whole_in_80_columns(
    server: ServerHandle, four: dict
) -> None:
    from phantomex.formatting import money, percent

    env = {**server.env, "COLUMNS": "80"}
    outs = {}
    for args in (["session", "list"], ["session", "show", "four"], ["leaderboard"]):
        rc, out, err = conftest.run_cli(*args, env=env)
        assert rc == 0, err
        assert "…" not in out, out  # Rich's mark of a cut cell
        outs[args[1] if args[0] == "session" else args[0]] = out
    assert four["id"][:8] in outs["list"] and "finished" in outs["list"]
    for a in four["agents"]:
        assert money(a["equity_now"]) in outs["show"] and percent(a["return_pct"]) in outs["show"]
    assert "$-" not in outs["show"]
    board = server.get("/api/leaderboard")
    for group in board["groups"]:
        for r in group["rows"]:
            assert percent(r["total_return"]["value"], fraction=True) in outs["leaderboard"]
