"""Secrets at rest: API keys are encrypted with Fernet (AES-128-CBC + HMAC-SHA256).

The keys come from ``PHANTOMEX_SECRET_KEY`` (Fernet keys, comma-separated, newest first), or from
``<data_dir>/secret.key`` (one key per line, newest first), created with mode 0600 on first use.
Encryption uses the first key; decryption tries each (``MultiFernet``), so a rotation can keep the
old key until every secret is re-encrypted. No OS keyring: headless keyring backends fail."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

ENV_KEY = "PHANTOMEX_SECRET_KEY"
KEY_FILE = "secret.key"


class SecretError(ValueError):
    """A secret that cannot be decrypted with the current keys."""


def write_keys(path: Path, keys: Sequence[bytes]) -> None:
    """Replace the key file atomically (a new 0600 file renamed over the old one)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(b"".join(k + b"\n" for k in keys))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def read_keys(path: Path) -> list[bytes]:
    return [line.strip() for line in path.read_bytes().splitlines() if line.strip()]


class SecretBox:
    def __init__(self, keys: bytes | Sequence[bytes]) -> None:
        self.keys = [keys] if isinstance(keys, bytes) else list(keys)
        self._fernet = MultiFernet([Fernet(k) for k in self.keys])

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> SecretBox:
        """The box for a server: the environment's keys, else the data folder's key file."""
        env = os.environ.get(ENV_KEY)
        if env:
            return cls([k.strip().encode() for k in env.split(",") if k.strip()])
        path = data_dir / KEY_FILE
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
        return cls(read_keys(path))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretError("cannot decrypt a stored secret: wrong or rotated key") from None

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted under the first key."""
        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise SecretError("cannot decrypt a stored secret: wrong or rotated key") from None
