"""Key rotation: ``phantomex secrets rotate`` re-encrypts every stored secret under a new key,
all or nothing, and the server still reads them after a restart."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from conftest import run_cli, serve
from cryptography.fernet import Fernet

from phantomex import rotation
from phantomex.secrets import ENV_KEY, SecretBox, SecretError, read_keys
from phantomex.store.repo import Store

SECRET = "sk-rotate-me-4b1d9e"


def stored_tokens(data_dir: Path) -> list[str]:
    store = Store(f"sqlite:///{data_dir / 'phantomex.db'}")
    try:
        saved = store.get_state("llm_endpoints") or {}
    finally:
        store.close()
    return [e["api_key_encrypted"] for e in saved.get("endpoints", [])]


def test_rotate_reencrypts_every_secret_and_the_server_reads_them(tmp_path: Path) -> None:
    body = {"name": "router", "kind": "openai", "base_url": "http://127.0.0.1:9", "api_key": SECRET}
    with serve(tmp_path) as srv:
        created = httpx.post(f"{srv.url}/api/llm/endpoints", json=body, timeout=30)
        assert created.status_code == 201, created.text
        rc, _out, err = srv.cli("secrets", "rotate")
        assert rc == 1 and "stop it first" in err  # never under a running server
        env = srv.env
    key_file = tmp_path / "secret.key"
    old_keys = read_keys(key_file)
    [before] = stored_tokens(tmp_path)

    rc, out, err = run_cli("secrets", "rotate", env=env)
    assert rc == 0, err
    assert "re-encrypted 1 secret(s)" in out
    new_keys = read_keys(key_file)
    assert len(new_keys) == 1 and new_keys != old_keys  # the old key is gone once done
    assert key_file.stat().st_mode & 0o777 == 0o600
    [after] = stored_tokens(tmp_path)
    assert after != before
    assert SecretBox(new_keys).decrypt(after) == SECRET
    with pytest.raises(SecretError):
        SecretBox(old_keys).decrypt(after)
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("phantomex.db*"))
    assert SECRET.encode() not in raw

    with serve(tmp_path) as srv:  # loading the endpoint decrypts its key with the new key
        listed = httpx.get(f"{srv.url}/api/llm/endpoints", timeout=30).json()
        assert [(e["name"], e["has_api_key"]) for e in listed] == [("router", True)]
        assert SECRET not in srv.server_output()


def test_a_failed_rotation_changes_nothing(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'phantomex.db'}")
    box = SecretBox.for_data_dir(tmp_path)
    foreign = SecretBox(Fernet.generate_key())
    value = {"endpoints": [{"api_key_encrypted": box.encrypt("a")}, {"api_key_encrypted": None}]}
    value["exchange"] = {"keys": [{"secret_encrypted": foreign.encrypt("b")}]}  # undecryptable
    store.set_state("credentials", value)
    keys = read_keys(tmp_path / "secret.key")
    with pytest.raises(SecretError):
        rotation.rotate(store, tmp_path)
    assert read_keys(tmp_path / "secret.key") == keys
    assert store.get_state("credentials") == value
    store.close()


def test_rotation_to_the_environments_first_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    store = Store(f"sqlite:///{tmp_path / 'phantomex.db'}")
    nested = {"a": {"b": [{"token_encrypted": SecretBox(old).encrypt("deep")}]}, "plain": "x"}
    store.set_state("nested", nested)
    monkeypatch.setenv(ENV_KEY, f"{new.decode()},{old.decode()}")
    done = rotation.rotate(store, tmp_path)
    assert done.secrets == 1 and done.key_file is None
    state = store.get_state("nested")
    assert state is not None and state["plain"] == "x"
    assert SecretBox(new).decrypt(state["a"]["b"][0]["token_encrypted"]) == "deep"
    assert not (tmp_path / "secret.key").exists()  # the environment's keys are not written
    store.close()
