"""Shared fixtures: a real PhantomEx server in a subprocess, and a helper to run the CLI.

``running_server`` (module-scoped) starts ``python -m phantomex.cli.main start`` on a free
loopback port with a temporary data directory and a fast replay (10 one-minute bars per wall
second), waits for ``/health`` and stops the process at the end of the module::

    def test_something(running_server):
        rc, out, err = running_server.cli("agents", "list", "--json")
        httpx.get(f"{running_server.url}/health")
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

CLI = [sys.executable, "-m", "phantomex.cli.main"]
FAST_SPEED = "600"  # market seconds per wall second: 10 one-minute bars per second
START_TIMEOUT = 180.0  # a loaded 2-core machine can take a minute to import and migrate
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(port: int, data_dir: Path, **extra: str) -> dict[str, str]:
    """A clean environment for the server and CLI subprocesses (no PHANTOMEX_* leaks in)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHANTOMEX_")}
    env.update(
        PHANTOMEX_CONFIG=str(data_dir / "no-such-config.toml"),
        PHANTOMEX_HOST="127.0.0.1",
        PHANTOMEX_PORT=str(port),
        PHANTOMEX_DATA_DIR=str(data_dir),
        PHANTOMEX_REPLAY_SPEED=FAST_SPEED,
        COLUMNS="200",  # Rich tables: wide enough that names are not wrapped
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def run_cli(*args: str, env: dict[str, str], timeout: float = 90) -> tuple[int, str, str]:
    """Run ``phantomex ARGS`` as a subprocess; returns (returncode, stdout, stderr)."""
    proc = subprocess.run(
        [*CLI, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return proc.returncode, proc.stdout, proc.stderr


def wait_health(url: str, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> dict:
    """``/health`` of ``url`` once it answers; raises on timeout or if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before answering")
        with contextlib.suppress(httpx.HTTPError):
            resp = httpx.get(f"{url}/health", timeout=2)
            if resp.status_code == 200:
                return dict(resp.json())
        time.sleep(0.2)
    raise TimeoutError(f"{url}/health did not answer within {timeout} s")


def terminate(proc: subprocess.Popen[bytes], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM, then SIGKILL after ``timeout``; always reaps the process."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def kill_pid(pid: int) -> None:
    """Best-effort SIGTERM then SIGKILL of a process that is not our child (a daemon)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)


@dataclass
class ServerHandle:
    url: str
    port: int
    data_dir: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    output: Path | None = None  # the server's stdout+stderr
    extra: dict[str, str] = field(default_factory=dict)

    def cli(self, *args: str, timeout: float = 90) -> tuple[int, str, str]:
        return run_cli(*args, env=self.env, timeout=timeout)

    def get(self, path: str, **params: Any) -> Any:
        """GET the API directly (for checks that need no CLI process)."""
        resp = httpx.get(f"{self.url}{path}", params=params, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def post(self, path: str, body: Any = None) -> Any:
        resp = httpx.post(f"{self.url}{path}", json=body, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def server_output(self) -> str:
        if self.output is None or not self.output.exists():
            return ""
        return self.output.read_text(errors="replace")


@contextlib.contextmanager
def serve(data_dir: Path, **extra_env: str) -> Iterator[ServerHandle]:
    """Run ``phantomex start`` (foreground) as a subprocess until the block ends."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = server_env(port, data_dir, **extra_env)
    output = data_dir / "server-output.log"
    with output.open("ab") as out:
        proc = subprocess.Popen(
            [*CLI, "start", "--port", str(port), "--data-dir", str(data_dir)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    handle = ServerHandle(
        url=f"http://127.0.0.1:{port}",
        port=port,
        data_dir=data_dir,
        env=env,
        proc=proc,
        output=output,
        extra=dict(extra_env),
    )
    try:
        try:
            wait_health(handle.url, START_TIMEOUT, proc)
        except (RuntimeError, TimeoutError) as exc:
            pytest.fail(f"{exc}\n--- server output ---\n{handle.server_output()}")
        yield handle
    finally:
        terminate(proc)


@pytest.fixture(scope="module")
def running_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """A real server (demo agents, fast replay) shared by the tests of one module."""
    with serve(tmp_path_factory.mktemp("phantomex")) as handle:
        yield handle


@pytest.fixture(scope="session")
def postgres() -> Iterator[Any]:
    """A real PostgreSQL cluster on loopback for the whole session (skipped if not installed)."""
    from postgres_server import PostgresServer, pg_bin

    if pg_bin() is None:
        pytest.skip("PostgreSQL is not installed; `make test` installs Debian's postgresql")
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The store's URL on each supported backend: a SQLite file, a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'phantomex.db'}"
    return str(request.getfixturevalue("postgres").new_database())
