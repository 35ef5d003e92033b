"""Remote hosts: how to reach one over SSH and the commands that manage its PhantomEx.

``--host NAME`` reads ``[hosts.NAME]`` from ``<cli home>/hosts.toml``; any other ``--host`` is an
address, ``[user@]host[:port]``, with every default. The defaults fit ``deploy/phantomex.service``
installed as its header says (code and venv in ``/opt/phantomex``, unit ``phantomex``)::

    [hosts.gpu]
    address = "gpu.lan"
    user = "deploy"
    key = "~/.ssh/id_ed25519"          # else the SSH agent and the default keys
    health_url = "http://127.0.0.1:8000/health"   # as seen from the host itself

    [hosts.gpu.commands]               # any command can be replaced; "" skips a deploy step
    install = ".venv/bin/pip install -r requirements.txt && .venv/bin/pip install --no-deps -e ."

Commands run in the checkout, through the user's shell on the host. Placeholders: ``{unit}``,
``{checkout}``, ``{venv}``, ``{lines}`` (logs), ``{old}`` (the commit a deploy replaces) and
``{as_service}`` (the prefix that runs a command as the service's user with its settings).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from phantomex.cli.profiles import cli_home

HOSTS_FILE = "hosts.toml"
SERVICE_ENV = "/etc/phantomex/phantomex.env"
_ADDRESS_RE = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?P<host>[^@:\s]+)(?::(?P<port>\d{1,5}))?$")


class HostError(ValueError):
    """A host that cannot be used as given; the message says why."""


class Commands(BaseModel):
    """The service manager's commands (default: the systemd unit via sudo)."""

    model_config = ConfigDict(extra="forbid")

    status: str = "sudo systemctl status --no-pager --lines=0 {unit}"
    start: str = "sudo systemctl start {unit}"
    stop: str = "sudo systemctl stop {unit}"
    restart: str = "sudo systemctl restart {unit}"
    logs: str = "sudo journalctl -u {unit} --no-pager -n {lines}"
    follow: str = "sudo journalctl -u {unit} --no-pager -n {lines} -f"
    install: str = (
        "{venv}/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt"
        " && {venv}/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -e ."
    )
    # the unit's user is dynamic and its data private: reach the database as the service does
    as_service: str = (
        "sudo systemd-run --quiet --wait --pipe --collect -p DynamicUser=yes "
        "-p StateDirectory={unit} -p EnvironmentFile=-" + SERVICE_ENV + " "
        "-p Environment=PHANTOMEX_DATA_DIR=/var/lib/{unit} -p WorkingDirectory=/var/lib/{unit}"
    )
    backup: str = "{as_service} {venv}/bin/phantomex db backup /var/lib/{unit}/pre-deploy-{old}.db"
    migrate: str = "{as_service} {venv}/bin/phantomex db migrate"
    restore: str = (
        "{as_service} {venv}/bin/phantomex db restore --yes /var/lib/{unit}/pre-deploy-{old}.db"
    )


class Host(BaseModel):
    """One machine running PhantomEx from a git checkout."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    address: str
    port: int = Field(22, ge=1, le=65535)
    user: str | None = None
    key: Path | None = None
    known_hosts: Path | None = None  # else ~/.ssh/known_hosts; host keys are always checked
    connect_timeout: float = Field(15.0, gt=0)
    checkout: str = "/opt/phantomex"
    venv: str | None = None  # default: <checkout>/.venv
    git_remote: str = "origin"
    unit: str = "phantomex"
    health_url: str = "http://127.0.0.1:8000/health"
    health_timeout: float = Field(90.0, gt=0)
    commands: Commands = Field(default_factory=Commands)

    def command(self, which: str, **values: object) -> str:
        """The ``which`` command with its placeholders filled (values shell-quoted), run in the
        checkout; "" when it is configured empty (a skipped step)."""
        template = str(getattr(self.commands, which))
        if not template.strip():
            return ""
        quoted = {
            "unit": shlex.quote(self.unit),
            "checkout": shlex.quote(self.checkout),
            "venv": shlex.quote(self.venv or f"{self.checkout}/.venv"),
            **{k: shlex.quote(str(v)) for k, v in values.items()},
        }
        quoted["as_service"] = self.commands.as_service.format_map(_Strict(quoted))
        return f"cd {quoted['checkout']} && {template.format_map(_Strict(quoted))}"


class _Strict(dict[str, str]):
    def __missing__(self, key: str) -> str:
        raise HostError(f"unknown placeholder {{{key}}} in a host command")


def hosts_file() -> Path:
    return cli_home() / HOSTS_FILE


def _configured() -> dict[str, Any]:
    path = hosts_file()
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HostError(f"cannot read {path}: {exc}") from None
    hosts = data.get("hosts", {})
    if not isinstance(hosts, dict):
        raise HostError(f"{path}: [hosts] must be a table of hosts")
    return hosts


def resolve_host(ref: str) -> Host:
    """The host named ``ref`` in hosts.toml, else ``ref`` read as ``[user@]host[:port]``."""
    configured = _configured().get(ref)
    try:
        if configured is not None:
            return Host.model_validate({**configured, "name": ref})
        match = _ADDRESS_RE.match(ref.strip())
        if not match:
            raise HostError(f"--host {ref!r}: not a host in {hosts_file()} nor [user@]host[:port]")
        return Host(
            name=ref,
            address=match["host"],
            user=match["user"],
            port=int(match["port"] or 22),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise HostError(f"host {ref!r} in {hosts_file()}: {where}: {first['msg']}") from None
