"""Key rotation: re-encrypt every stored secret under a new key, in one transaction.

Stored secrets live in the server's key/value state (``kernel_state``) under keys ending in
``_encrypted``, at any depth (e.g. ``llm_endpoints.endpoints[].api_key_encrypted``).

With the key file: a new key is put first in ``secret.key`` (the old keys stay after it), every
secret is re-encrypted in one database transaction, then the old keys are dropped from the file.
A crash at any point leaves secrets that the file's keys decrypt; running the rotation again
finishes it. With ``PHANTOMEX_SECRET_KEY``, put the new key first yourself (``new,old``), rotate,
then drop the old one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import select

from phantomex.secrets import ENV_KEY, KEY_FILE, SecretBox, read_keys, write_keys
from phantomex.store.models import SettingRow
from phantomex.store.repo import Store

SUFFIX = "_encrypted"


@dataclass(frozen=True)
class Rotation:
    secrets: int  # secrets re-encrypted
    key_file: Path | None  # None when the keys come from the environment


def _rotated(value: Any, box: SecretBox, count: list[int]) -> Any:
    """``value`` with every ``*_encrypted`` string re-encrypted under the box's first key."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key.endswith(SUFFIX) and isinstance(item, str):
                out[key] = box.rotate(item)
                count[0] += 1
            else:
                out[key] = _rotated(item, box, count)
        return out
    if isinstance(value, list):
        return [_rotated(item, box, count) for item in value]
    return value


def reencrypt(store: Store, box: SecretBox) -> int:
    """Re-encrypt every stored secret under ``box``'s first key, all or nothing."""
    count = [0]
    with store.session() as s:
        for row in s.scalars(select(SettingRow)):
            new = _rotated(row.value, box, count)
            if new != row.value:
                row.value = new
    return count[0]


def rotate(store: Store, data_dir: Path) -> Rotation:
    """Rotate to a new key (key file) or to the environment's first key."""
    if os.environ.get(ENV_KEY):
        return Rotation(reencrypt(store, SecretBox.for_data_dir(data_dir)), None)
    path = data_dir / KEY_FILE
    SecretBox.for_data_dir(data_dir)  # creates the key file on first use
    old = read_keys(path)
    new = Fernet.generate_key()
    write_keys(path, [new, *old])  # the old keys stay until every secret is re-encrypted
    try:
        count = reencrypt(store, SecretBox([new, *old]))
    except Exception:
        write_keys(path, old)
        raise
    write_keys(path, [new])
    return Rotation(count, path)
