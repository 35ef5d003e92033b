"""A real OpenSSH server for the tests: Debian's ``sshd`` as the test user on a loopback port,
with a throwaway host key and client key (made with asyncssh), everything in a tmp folder."""

from __future__ import annotations

import contextlib
import getpass
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncssh
import pytest
from conftest import free_port, terminate

SSHD = Path("/usr/sbin/sshd")
PRIVSEP_DIR = Path("/run/sshd")  # sshd started by root refuses to run without it


@dataclass(frozen=True)
class Sshd:
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    log: Path


def _write_key(key: asyncssh.SSHKey, path: Path) -> None:
    key.write_private_key(str(path))
    path.chmod(0o600)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"sshd exited with {proc.returncode}: {log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.1)
    pytest.fail(f"sshd did not listen on 127.0.0.1:{port}: {log.read_text(errors='replace')}")


@contextlib.contextmanager
def running_sshd(folder: Path) -> Iterator[Sshd]:
    """``sshd -D -e`` on a free loopback port, accepting only a fresh client key."""
    if not SSHD.exists():
        pytest.skip(
            f"{SSHD} is missing: install Debian's openssh-server "
            "(apt-get install -y openssh-server) to run the SSH tests"
        )
    if os.geteuid() == 0 and not PRIVSEP_DIR.is_dir():
        PRIVSEP_DIR.mkdir(mode=0o755)  # what the ssh unit's RuntimeDirectory= would create
    folder.mkdir(parents=True, exist_ok=True)
    host_key, client_key = folder / "host_key", folder / "client_key"
    host = asyncssh.generate_private_key("ssh-ed25519")
    client = asyncssh.generate_private_key("ssh-ed25519")
    _write_key(host, host_key)
    _write_key(client, client_key)
    authorized = folder / "authorized_keys"
    authorized.write_bytes(client.export_public_key())
    port = free_port()
    known_hosts = folder / "known_hosts"
    known_hosts.write_bytes(f"[127.0.0.1]:{port} ".encode() + host.export_public_key())
    config = folder / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress 127.0.0.1:{port}",
                f"HostKey {host_key}",
                f"AuthorizedKeysFile {authorized}",
                f"PidFile {folder / 'sshd.pid'}",
                "UsePAM no",
                "StrictModes no",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "PermitRootLogin prohibit-password",
                "AllowTcpForwarding local",
                "",
            ]
        )
    )
    log = folder / "sshd.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [str(SSHD), "-D", "-e", "-f", str(config)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_listening(port, proc, log)
        yield Sshd(port, getpass.getuser(), client_key, known_hosts, log)
    finally:
        terminate(proc)
