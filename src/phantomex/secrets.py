"""Secrets at rest: API keys are encrypted with Fernet (AES-128-CBC + HMAC-SHA256).

The key comes from ``PHANTOMEX_SECRET_KEY`` (a Fernet key), or from ``<data_dir>/secret.key``,
created with mode 0600 on first use. No OS keyring: headless keyring backends fail."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

ENV_KEY = "PHANTOMEX_SECRET_KEY"


class SecretError(ValueError):
    """A secret that cannot be decrypted with the current key."""


class SecretBox:
    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> SecretBox:
        """The box for a server: the environment's key, else the data folder's key file."""
        env = os.environ.get(ENV_KEY)
        if env:
            return cls(env.encode())
        path = data_dir / "secret.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(Fernet.generate_key())
        return cls(path.read_bytes().strip())

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise SecretError("cannot decrypt a stored secret: wrong or rotated key") from None
