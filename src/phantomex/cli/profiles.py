"""Named server profiles: one CLI for several PhantomEx servers.

A profile is a name, a server URL and (optionally) an API token. They live in
``<cli home>/servers.json`` (mode 0600); the token is encrypted with the secrets machinery
(:class:`phantomex.secrets.SecretBox`, key in ``<cli home>/secret.key`` or
``PHANTOMEX_SECRET_KEY``), so it is never stored in plain text. The CLI home is
``PHANTOMEX_CLI_HOME``, else ``$XDG_CONFIG_HOME/phantomex``, else ``~/.config/phantomex``.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from phantomex.secrets import SecretBox, SecretError

HOME_ENV = "PHANTOMEX_CLI_HOME"
PROFILES_FILE = "servers.json"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


class ProfileError(ValueError):
    """A profile that cannot be added, found or read; the message says why."""


@dataclass(frozen=True, slots=True)
class Profile:
    name: str
    url: str
    token: str | None


def cli_home() -> Path:
    """The folder of the CLI's own files (profiles, their key, remote hosts)."""
    env = os.environ.get(HOME_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".config") / "phantomex"


def check_url(url: str) -> str:
    """``url`` without a trailing slash; ProfileError unless it is an http(s) address."""
    clean = url.strip().rstrip("/")
    parts = urlsplit(clean)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ProfileError(f"not a server address: {url!r} (expected http(s)://HOST[:PORT])")
    return clean


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, readable by its owner only (a 0600 file renamed over)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    tmp.replace(path)


class Profiles:
    """The profiles file of one CLI home."""

    def __init__(self, home: Path | None = None) -> None:
        self.home = home or cli_home()
        self.path = self.home / PROFILES_FILE

    def _raw(self) -> dict[str, dict[str, str | None]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ProfileError(f"cannot read the server profiles {self.path}: {exc}") from None
        servers = data.get("servers") if isinstance(data, dict) else None
        if not isinstance(servers, dict):
            raise ProfileError(f"{self.path} is not a server profiles file")
        return servers

    def _save(self, servers: dict[str, dict[str, str | None]]) -> None:
        _write_private(self.path, json.dumps({"servers": servers}, indent=2, sort_keys=True) + "\n")

    def names(self) -> list[str]:
        return sorted(self._raw())

    def get(self, name: str) -> Profile:
        """The profile ``name`` with its token decrypted."""
        raw = self._raw().get(name)
        if raw is None:
            known = ", ".join(self.names()) or "none"
            raise ProfileError(f"no server profile {name!r} (profiles: {known})")
        sealed = raw.get("token")
        try:
            token = SecretBox.for_data_dir(self.home).decrypt(sealed) if sealed else None
        except SecretError as exc:
            raise ProfileError(f"server profile {name!r}: {exc}") from None
        return Profile(name, str(raw["url"]), token)

    def all(self) -> list[Profile]:
        return [self.get(name) for name in self.names()]

    def add(self, name: str, url: str, token: str | None, *, replace: bool = False) -> Profile:
        if not NAME_RE.match(name):
            raise ProfileError(
                f"invalid profile name {name!r}: letters, digits, '.', '_' or '-', "
                "up to 40, starting with a letter or digit"
            )
        clean = check_url(url)
        servers = self._raw()
        if name in servers and not replace:
            raise ProfileError(f"a server profile {name!r} exists already (use --replace)")
        token = (token or "").strip() or None
        sealed = SecretBox.for_data_dir(self.home).encrypt(token) if token else None
        servers[name] = {"url": clean, "token": sealed}
        self._save(servers)
        return Profile(name, clean, token)

    def remove(self, name: str) -> None:
        servers = self._raw()
        if name not in servers:
            raise ProfileError(f"no server profile {name!r}")
        del servers[name]
        self._save(servers)
