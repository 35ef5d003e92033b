"""The deployment files in deploy/: the systemd unit, the logrotate snippet, the Dockerfile.

No Docker engine runs where these tests run, so the image is not built here: the Dockerfile test
only checks that everything it copies exists (see docs/reliability.md)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import serve

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    unit = (DEPLOY / "phantomex.service").read_text()
    for option in ("NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet=\n"):
        assert option in unit
    # verify needs an ExecStart that exists: point it at this checkout's phantomex
    here = Path(sys.executable).parent / "phantomex"
    local = tmp_path / "phantomex.service"
    local.write_text(unit.replace("/opt/phantomex/.venv/bin/phantomex", str(here)))
    proc = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True)
    # systemd-analyze exits 0 on unknown keys or bad values but prints them: any output is a fault
    assert proc.returncode == 0 and not (proc.stdout + proc.stderr).strip(), proc.stderr


def test_dockerfile_copies_only_what_exists() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    sources = [
        src
        for line in text.splitlines()
        if line.startswith("COPY ") and "--from=" not in line
        for src in line.split()[1:-1]
    ]
    assert "requirements.txt" in sources and "src/" in sources
    for src in sources:
        assert (ROOT / src).exists(), src
    assert re.search(r"^USER phantomex$", text, re.M), "the image must not run as root"
    assert "STOPSIGNAL SIGTERM" in text


def test_logrotate_rotates_a_running_servers_log(tmp_path: Path) -> None:
    logrotate = shutil.which("logrotate") or (
        "/usr/sbin/logrotate" if Path("/usr/sbin/logrotate").exists() else None
    )
    if logrotate is None:
        pytest.skip("logrotate is not installed; `make test` installs Debian's logrotate")
    # ``serve`` appends the server's output to a file exactly as ``start --daemon`` does
    with serve(tmp_path / "data") as srv:
        assert srv.output is not None
        log = srv.output
        conf = tmp_path / "logrotate.conf"
        snippet = (DEPLOY / "logrotate").read_text()
        conf.write_text(snippet.replace("/var/lib/phantomex/phantomex.log", str(log)))
        size = log.stat().st_size
        assert size > 0
        state = tmp_path / "logrotate.state"
        proc = subprocess.run(
            [logrotate, "--force", "--state", str(state), str(conf)],
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stderr
        assert Path(f"{log}.1").stat().st_size >= size
        srv.get("/api/agents")  # logs an access line
        text = log.read_bytes()
        assert b"/api/agents" in text, "the server no longer writes to the rotated log"
        assert not text.startswith(b"\0"), "the truncated log starts with a hole"
