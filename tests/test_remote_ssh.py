"""``phantomex server … --host`` against a real sshd (tests/sshd_helpers.py).

The "remote install" is a git clone (in a tmp folder) of an origin repository holding this
tree's ``src/``; a stand-in for systemctl (``svc.sh``) runs a real PhantomEx server from that
clone with a pid file. The host's commands are configured in hosts.toml: the install step is a
``compileall`` of the checkout (no pip install: the venv running the tests already has every
dependency, and the server imports the checkout through ``PYTHONPATH``); backup, migrate and
restore are the real ``phantomex db`` commands run from the checkout.

A good commit is deployed (fetch, install, backup, migrate, restart, health); then a commit that
crashes the server at start is deployed and rolled back to the good one, which is healthy again.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from conftest import FAST_SPEED, free_port, kill_pid, run_cli, server_env, wait_health
from sshd_helpers import running_sshd

from phantomex.cli.remote.hosts import HostError, resolve_host

ROOT = Path(__file__).resolve().parents[1]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
}
HEALTH_TIMEOUT = 90  # seconds; a healthy start on a loaded 2-core machine

SERVICE = """#!/bin/sh
# A stand-in for `systemctl start|stop|restart|status phantomex`: PhantomEx from the checkout.
. {env}
PIDFILE={pidfile}
alive() {{
  [ -f "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE")
  kill -0 "$pid" 2>/dev/null || return 1
  state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
  [ "$state" != Z ] && [ "$state" != X ]
}}
case "$1" in
  start)
    if alive; then echo "active (pid $(cat "$PIDFILE"))"; exit 0; fi
    cd {checkout} || exit 1
    nohup {python} -m phantomex.cli.main start >>{log} 2>&1 </dev/null &
    echo $! > "$PIDFILE"
    echo "started (pid $!)" ;;
  stop)
    if alive; then
      pid=$(cat "$PIDFILE"); kill "$pid"; n=0
      while alive && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
      alive && kill -9 "$pid"
    fi
    rm -f "$PIDFILE"; echo stopped ;;
  restart) "$0" stop && "$0" start ;;
  status)
    if alive; then echo "active (running) pid $(cat "$PIDFILE")"; exit 0; fi
    echo "inactive (dead)"; exit 3 ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
"""

PHANTOMEX = """#!/bin/sh
# `phantomex` with the service's settings, as the service's user would run it.
. {env}
cd {checkout} && exec {python} -m phantomex.cli.main "$@"
"""


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        env={**server_env(0, cwd), **GIT_ENV},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()


def commit(repo: Path, message: str) -> str:
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@dataclass
class Box:
    """The remote machine: its checkout, the origin it pulls from, its server and the CLI."""

    origin: Path
    checkout: Path
    data: Path
    port: int
    pidfile: Path
    log: Path
    env: dict[str, str]  # the CLI's environment on "the laptop"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str) -> tuple[int, str, str]:
        return run_cli(*args, env=self.env, timeout=600)

    def head(self) -> str:
        return git(self.checkout, "rev-parse", "HEAD")

    def pid(self) -> int:
        return int(self.pidfile.read_text())


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Box]:
    tmp = tmp_path_factory.mktemp("remote")
    with running_sshd(tmp / "ssh") as sshd:
        origin, checkout, data = tmp / "origin", tmp / "checkout", tmp / "data"
        origin.mkdir()
        shutil.copytree(
            ROOT / "src", origin / "src", ignore=shutil.ignore_patterns("__pycache__", "static")
        )
        shutil.copy(ROOT / "pyproject.toml", origin)
        git(origin, "init", "--quiet")
        commit(origin, "release 1")
        git(tmp, "clone", "--quiet", str(origin), str(checkout))
        port = free_port()
        env_file = tmp / "service.env"  # what /etc/phantomex/phantomex.env is to the unit
        env_file.write_text(
            f"export PYTHONPATH={checkout}/src PHANTOMEX_DATA_DIR={data} PHANTOMEX_PORT={port} "
            f"PHANTOMEX_HOST=127.0.0.1 PHANTOMEX_CONFIG={data}/no-config.toml "
            f"PHANTOMEX_REPLAY_SPEED={FAST_SPEED} PYTHONUNBUFFERED=1\n"
        )
        values = {
            "env": env_file,
            "pidfile": tmp / "service.pid",
            "checkout": checkout,
            "python": sys.executable,
            "log": tmp / "service.log",
        }
        _executable(tmp / "svc.sh", SERVICE.format(**values))
        _executable(tmp / "phantomex", PHANTOMEX.format(**values))
        svc, phx = tmp / "svc.sh", tmp / "phantomex"
        host = {
            "address": "127.0.0.1",
            "port": sshd.port,
            "user": sshd.user,
            "key": str(sshd.client_key),
            "known_hosts": str(sshd.known_hosts),
            "checkout": str(checkout),
            "health_url": f"http://127.0.0.1:{port}/health",
            "health_timeout": HEALTH_TIMEOUT,
        }
        commands = {
            "status": f"{svc} status",
            "start": f"{svc} start",
            "stop": f"{svc} stop",
            "restart": f"{svc} restart",
            "logs": f"tail -n {{lines}} {values['log']}",
            "follow": f"tail -n {{lines}} -f {values['log']}",
            "install": f"{sys.executable} -m compileall -q src/phantomex",
            "as_service": str(phx),
            "backup": f"{{as_service}} db backup {data}/pre-deploy-{{old}}.db",
            "migrate": "{as_service} db migrate",
            "restore": f"{{as_service}} db restore --yes {data}/pre-deploy-{{old}}.db",
        }
        home = tmp / "cli-home"
        home.mkdir()
        lines = ["[hosts.box]", *(f"{k} = {json.dumps(v)}" for k, v in host.items())]
        lines += [
            "",
            "[hosts.box.commands]",
            *(f"{k} = {json.dumps(v)}" for k, v in commands.items()),
        ]
        (home / "hosts.toml").write_text("\n".join(lines) + "\n")
        env = server_env(free_port(), tmp / "laptop", PHANTOMEX_CLI_HOME=str(home))
        b = Box(origin, checkout, data, port, values["pidfile"], values["log"], env)
        try:
            yield b
        finally:
            if b.pidfile.exists():
                kill_pid(b.pid())


def ok(box: Box, *args: str) -> str:
    rc, out, err = box.cli(*args)
    assert rc == 0, f"phantomex {' '.join(args)} exited {rc}:\n{out}\n{err}"
    return out


def test_lifecycle_deploy_and_rollback_over_ssh(box: Box) -> None:
    rc, _out, err = box.cli("server", "status", "--host", "box")
    assert rc == 1 and "does not answer a healthy /health" in err  # not started yet

    assert "started" in ok(box, "server", "start", "--host", "box")
    wait_health(box.url, HEALTH_TIMEOUT)
    out = ok(box, "server", "status", "--host", "box")
    assert "active (running)" in out and "is healthy" in out
    assert "Application startup complete" in ok(box, "server", "logs", "--host", "box", "-n", "200")

    release_1 = box.head()
    rc, _out, err = box.cli("server", "deploy", "--host", "box", "--ref", "no-such-branch")
    assert rc == 1 and "nothing was changed" in err and box.head() == release_1

    # a good release: fetched, installed, the database backed up and migrated, restarted, healthy
    (box.origin / "RELEASE").write_text("2\n")
    release_2 = commit(box.origin, "release 2")
    first_pid = box.pid()
    out = ok(box, "server", "deploy", "--host", "box", "--ref", "main")
    assert f"deployed {release_2}" in out
    assert box.head() == release_2 and box.pid() != first_pid
    assert (box.data / f"pre-deploy-{release_1}.db").is_file()
    assert httpx.get(f"{box.url}/health", timeout=30).json()["status"] == "ok"

    # a release whose server cannot start: the health check fails and release 2 comes back
    app = box.origin / "src" / "phantomex" / "api" / "app.py"
    app.write_text(app.read_text() + '\nraise RuntimeError("deliberately broken release")\n')
    broken = commit(box.origin, "release 3: broken")
    rc, out, err = box.cli("server", "deploy", "--host", "box", "--ref", "main")
    assert rc == 1, out + err
    assert f"deploy of {broken[:12]} failed at health" in err
    assert f"rolled back to {release_2}, healthy" in err
    assert "restore" in out  # the database as it was before the failed deploy
    assert box.head() == release_2
    assert "deliberately broken release" in box.log.read_text()
    assert httpx.get(f"{box.url}/health", timeout=30).json()["status"] == "ok"

    assert "stopped" in ok(box, "server", "stop", "--host", "box")
    rc, out, _err = box.cli("server", "status", "--host", "box")
    assert rc == 1 and "inactive" in out


def test_an_unknown_host_key_is_refused(box: Box, tmp_path: Path) -> None:
    text = (Path(box.env["PHANTOMEX_CLI_HOME"]) / "hosts.toml").read_text()
    empty = tmp_path / "known_hosts"
    empty.write_text("")  # this host's key is not known: the connection must be refused
    text = re.sub(r"(?m)^known_hosts = .*$", f"known_hosts = {json.dumps(str(empty))}", text)
    (tmp_path / "hosts.toml").write_text(text)
    env = {**box.env, "PHANTOMEX_CLI_HOME": str(tmp_path)}
    rc, _out, err = run_cli("server", "status", "--host", "box", env=env)
    assert rc == 1 and "cannot connect" in err, err
    assert "host key is not trusted" in err.lower(), err


def test_host_addresses_placeholders_and_quoting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHANTOMEX_CLI_HOME", str(tmp_path))
    host = resolve_host("deploy@gpu.lan:2222")
    assert (host.user, host.address, host.port) == ("deploy", "gpu.lan", 2222)
    assert host.command("restart") == "cd /opt/phantomex && sudo systemctl restart phantomex"
    assert host.command("logs", lines=20).endswith("journalctl -u phantomex --no-pager -n 20")
    assert "sudo systemd-run" in host.command("migrate")  # as the unit's dynamic user
    (tmp_path / "hosts.toml").write_text(
        '[hosts.odd]\naddress = "h"\ncheckout = "/srv/my app"\n'
        '[hosts.odd.commands]\nstart = "svc {nope}"\nbackup = ""\n'
        'restore = "cp {checkout}/b-{old}.db x"\n'
    )
    odd = resolve_host("odd")
    assert odd.command("backup") == ""  # an empty command: the deploy step is skipped
    assert odd.command("restore", old="abc; rm -rf /") == (
        "cd '/srv/my app' && cp '/srv/my app'/b-'abc; rm -rf /'.db x"
    )
    with pytest.raises(HostError, match="unknown placeholder"):
        odd.command("start")
    (tmp_path / "hosts.toml").write_text('[hosts.bad]\naddress = "h"\nport = 0\n')
    with pytest.raises(HostError, match="port"):
        resolve_host("bad")
    with pytest.raises(HostError, match="not a host"):
        resolve_host("two words")
