"""One CLI for several servers: named profiles (URL and encrypted token), ``--server NAME`` and
``servers status`` over two real PhantomEx servers (two ports, two data folders), one with auth
on; one is stopped and shown unreachable while the other's figures still show."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import CLI, free_port, run_cli, server_env
from e2e_helpers import RestartableServer

from phantomex.cli.profiles import Profile, ProfileError, Profiles
from phantomex.cli.servers import probe_all


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    if stdin is None:
        return run_cli(*args, env=env)
    done = subprocess.run(
        [*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=90
    )
    return done.returncode, done.stdout, done.stderr


def ok(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    rc, out, err = cli(env, *args, stdin=stdin)
    assert rc == 0, f"phantomex {' '.join(args)} exited {rc}: {err}{out}"
    return out


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Server ``alpha`` (no demo agents, auth off) and ``beta`` (demo agents, auth on with a
    token), and a CLI environment whose own default server is not running."""
    root = tmp_path_factory.mktemp("two-servers")
    beta_dir = root / "beta"
    rc, token, err = run_cli(
        "auth", "token", "create", "laptop", env=server_env(free_port(), beta_dir)
    )
    assert rc == 0, err
    alpha = RestartableServer(root / "alpha", {"PHANTOMEX_DEMO": "false"})
    beta = RestartableServer(beta_dir, {"PHANTOMEX_AUTH": "true"})
    env = server_env(free_port(), root / "cli", PHANTOMEX_CLI_HOME=str(root / "cli-home"))
    alpha.start()
    try:
        beta.start()
        try:
            yield {"alpha": alpha, "beta": beta, "token": token.strip(), "env": env}
        finally:
            beta.stop()
    finally:
        alpha.stop()


def test_profiles_route_commands_and_status_shows_both_then_one_down(two: dict[str, Any]) -> None:
    env, alpha, beta, token = two["env"], two["alpha"], two["beta"], two["token"]
    ok(env, "servers", "add", "alpha", "--url", alpha.url)
    ok(env, "servers", "add", "beta", "--url", beta.url + "/", "--token-stdin", stdin=token + "\n")

    # the token is stored encrypted, never in plain text, in a file only its owner can read
    home = Path(env["PHANTOMEX_CLI_HOME"])
    stored = (home / "servers.json").read_text()
    assert token not in stored and beta.url in stored
    assert (home / "servers.json").stat().st_mode & 0o777 == 0o600
    listed = json.loads(ok(env, "servers", "list", "--json"))
    assert listed == [
        {"name": "alpha", "url": alpha.url, "token": False},
        {"name": "beta", "url": beta.url, "token": True},
    ]

    # --server routes a write and a read to the right server, with that server's token
    ok(
        env,
        "--server",
        "alpha",
        "agents",
        "add",
        "Only On Alpha",
        "--brain",
        "momentum",
        "--symbols",
        "BTC",
        "--allowance",
        "1234.5",
        "--mode",
        "advisory",
    )
    on_alpha = json.loads(ok(env, "--server", "alpha", "agents", "list", "--json"))
    on_beta = json.loads(ok(env, "--server", "beta", "agents", "list", "--json"))
    assert [a["name"] for a in on_alpha] == ["Only On Alpha"]
    assert on_beta and "Only On Alpha" not in [a["name"] for a in on_beta]
    rc, _out, err = cli(env, "--url", beta.url, "agents", "list")
    assert rc == 1 and "authentication" in err.lower()  # the same server without the token
    rc, _out, err = cli(env, "agents", "list")
    assert rc == 1 and "not running" in err  # no --server: this CLI's own default server
    rc, _out, err = cli(env, "--server", "gamma", "agents", "list")
    assert rc == 1 and "no server profile 'gamma'" in err and "alpha, beta" in err

    status = {s["name"]: s for s in json.loads(ok(env, "servers", "status", "--json"))}
    assert status["alpha"]["reachable"] and status["beta"]["reachable"]
    assert status["alpha"]["agents"] == 1 and status["beta"]["agents"] == len(on_beta)
    # an advisory agent that has not traded: its equity is exactly its allowance
    assert Decimal(status["alpha"]["equity"]) == Decimal("1234.5")
    assert Decimal(status["alpha"]["pnl"]) == 0
    assert Decimal(status["beta"]["equity"]) > 0
    table = ok(env, "servers", "status")
    assert "alpha" in table and "beta" in table and "$1,234.50" in table

    alpha.stop()
    status = {s["name"]: s for s in json.loads(ok(env, "servers", "status", "--json"))}
    assert not status["alpha"]["reachable"] and status["alpha"]["error"] == "connection refused"
    assert status["alpha"]["equity"] is None
    assert status["beta"]["reachable"] and status["beta"]["agents"] == len(on_beta)
    assert Decimal(status["beta"]["equity"]) > 0
    table = ok(env, "servers", "status")
    assert "UNREACHABLE" in table and "connection refused" in table
    rc, _out, err = cli(env, "--server", "alpha", "agents", "list")
    assert rc == 1 and alpha.url in err and "not running" in err
    rc, _out, err = cli(env, "--server", "alpha", "audit")  # no offline audit of another DB
    assert rc == 1 and alpha.url in err and "not running" in err
    rc, _out, err = cli(env, "--server", "beta", "stop")  # local commands refuse a profile
    assert rc == 1 and "phantomex server stop --host" in err

    ok(env, "servers", "remove", "alpha")
    assert [p["name"] for p in json.loads(ok(env, "servers", "list", "--json"))] == ["beta"]
    rc, _out, err = cli(env, "servers", "remove", "alpha")
    assert rc == 1 and "no server profile 'alpha'" in err


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server that accepts connections and never answers (a hung PhantomEx)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(sock.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        sock.close()


def test_a_hung_server_costs_only_the_timeout(two: dict[str, Any], silent_server: str) -> None:
    beta = Profile("beta", two["beta"].url, two["token"])
    hung = Profile("hung", silent_server, None)
    started = time.monotonic()
    probes = asyncio.run(probe_all([hung, beta], timeout=1.5))
    elapsed = time.monotonic() - started
    assert elapsed < 20, f"took {elapsed:.1f} s with a 1.5 s timeout"  # the hung one never answers
    assert probes[0].health is None and probes[0].error == "no answer within 1.5 s"
    assert probes[1].health is not None and probes[1].agents  # the other server's figures
    assert Decimal(probes[1].public()["equity"]) > 0


def test_profile_names_urls_and_a_lost_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PHANTOMEX_SECRET_KEY", raising=False)
    profiles = Profiles(tmp_path)
    with pytest.raises(ProfileError, match="invalid profile name"):
        profiles.add("no spaces", "http://127.0.0.1:1", None)
    with pytest.raises(ProfileError, match="not a server address"):
        profiles.add("x", "ftp://host", None)
    profiles.add("x", "https://phantomex.example:8443/", "phx_secret")
    assert profiles.get("x") == Profile("x", "https://phantomex.example:8443", "phx_secret")
    with pytest.raises(ProfileError, match="exists already"):
        profiles.add("x", "http://127.0.0.1:1", None)
    (tmp_path / "secret.key").unlink()  # the key is lost: the token cannot be read back
    with pytest.raises(ProfileError, match="cannot decrypt"):
        Profiles(tmp_path).get("x")
