"""Running the server: in the foreground, as a daemon, and stopping it through its pid file."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from phantomex.config import Settings


LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
START_TIMEOUT = 90.0  # a loaded 2-core machine needs time to import the stack
STOP_TIMEOUT = 15.0


# -- pid file --------------------------------------------------------------------------------------
def read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None


def is_alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie waiting for its parent does not count)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        # the state follows the parenthesised command name
        if stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
    return True


def looks_like_phantomex(pid: int) -> bool:
    """Guards against a recycled pid: on Linux, check the process's command line."""
    cmdline = Path(f"/proc/{pid}/cmdline")
    try:
        return b"phantomex" in cmdline.read_bytes()
    except OSError:
        return True  # no /proc: trust the pid file


def running_pid(settings: Settings) -> int | None:
    """The pid of the server that owns ``settings.pid_file``, or None (a stale file is removed)."""
    pid = read_pid(settings.pid_file)
    if pid is None:
        return None
    if is_alive(pid) and looks_like_phantomex(pid):
        return pid
    with contextlib.suppress(OSError):
        settings.pid_file.unlink()
    return None


def remove_pid_file(settings: Settings, pid: int) -> None:
    if read_pid(settings.pid_file) == pid:
        with contextlib.suppress(OSError):
            settings.pid_file.unlink()


def bind_problem(host: str, port: int) -> str | None:
    """Why the server could not listen on ``host:port`` (None if it can)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        return f"cannot resolve {host!r}: {exc.strerror or exc}"
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use"
            return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return None


def health(url: str, timeout: float = 2.0) -> dict[str, object] | None:
    import httpx  # only the commands that ask a server import the HTTP client

    try:
        resp = httpx.get(f"{url}/health", timeout=timeout)
    except httpx.HTTPError:
        return None
    if resp.status_code != 200:
        return None
    try:
        body = resp.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


# -- foreground ------------------------------------------------------------------------------------
def _raise_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@contextlib.contextmanager
def _own_pid_file(settings: Settings) -> Iterator[None]:
    pid = os.getpid()
    settings.pid_file.write_text(f"{pid}\n")
    try:
        yield
    finally:
        remove_pid_file(settings, pid)


def run_foreground(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM; the kernel starts and stops with the app."""
    import uvicorn

    from phantomex.api.app import create_app

    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr, force=True)
    # uvicorn re-raises the signal it shut down on once it is done: exit cleanly instead
    signal.signal(signal.SIGTERM, _raise_exit)
    with _own_pid_file(settings):
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_level=settings.log_level.lower(),
            log_config=None,  # use the root logger configured above (time-stamped, stderr)
            # X-Forwarded-* only from the proxies the user named (uvicorn trusts 127.0.0.1)
            proxy_headers=bool(settings.trusted_proxies),
            forwarded_allow_ips=settings.trusted_proxies or None,
        )


# -- daemon ----------------------------------------------------------------------------------------
def child_env(settings: Settings, overrides: dict[str, object]) -> dict[str, str]:
    """The environment for the detached server: CLI flags become ``PHANTOMEX_*`` variables."""
    env = dict(os.environ)
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, Path):
            text = str(value.resolve())
        else:
            text = str(value)
        env[f"PHANTOMEX_{key.upper()}"] = text
    env["PHANTOMEX_DATA_DIR"] = str(settings.data_dir.resolve())
    return env


def spawn_daemon(settings: Settings, env: dict[str, str]) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "phantomex.cli.main", "start"]
    with settings.log_file.open("ab") as log:
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            close_fds=True,
        )
    settings.pid_file.write_text(f"{proc.pid}\n")
    return proc


def wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout: float = START_TIMEOUT) -> bool:
    """Poll ``/health`` until it answers while ``proc`` lives; False on exit or timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if health(url, timeout=1.0) is not None:
            return proc.poll() is None
        time.sleep(0.2)
    return False


def tail_lines(path: Path, n: int) -> list[str]:
    """The last ``n`` lines of ``path`` (reading only the end of a big file)."""
    if n <= 0:
        return []
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            block, data = 8192, b""
            while size > 0 and data.count(b"\n") <= n:
                step = min(block, size)
                size -= step
                f.seek(size)
                data = f.read(step) + data
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()
    return lines[-n:]


# -- stop ------------------------------------------------------------------------------------------
def stop_pid(pid: int, timeout: float = STOP_TIMEOUT) -> bool:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL. True if it stopped gracefully."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and is_alive(pid):
        time.sleep(0.1)
    return False
