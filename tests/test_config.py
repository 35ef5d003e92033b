"""Settings precedence: CLI flag > PHANTOMEX_* environment > TOML file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from phantomex.config import load_settings


@pytest.fixture()
def toml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "phantomex.toml"
    path.write_text('port = 8100\nhost = "127.0.0.2"\nreplay_speed = 120\nfee_bps = "7.5"\n')
    monkeypatch.setenv("PHANTOMEX_CONFIG", str(path))
    for var in ("PHANTOMEX_PORT", "PHANTOMEX_HOST", "PHANTOMEX_REPLAY_SPEED", "PHANTOMEX_DB_URL"):
        monkeypatch.delenv(var, raising=False)
    return path


def test_defaults_without_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHANTOMEX_CONFIG", str(tmp_path / "missing.toml"))
    monkeypatch.delenv("PHANTOMEX_PORT", raising=False)
    s = load_settings()
    assert (s.host, s.port, s.data_dir) == ("127.0.0.1", 8000, Path("data"))
    assert s.database_url.endswith("data/phantomex.db") and s.database_url.startswith("sqlite:///")


def test_toml_then_env_then_flag(toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = load_settings()
    assert (s.port, s.host, s.replay_speed, str(s.fee_bps)) == (8100, "127.0.0.2", 120.0, "7.5")
    monkeypatch.setenv("PHANTOMEX_PORT", "8200")
    assert load_settings().port == 8200
    assert load_settings().host == "127.0.0.2"  # env only overrides what it sets
    assert load_settings(port=8300).port == 8300
    assert load_settings(port=None).port == 8200  # an absent flag lets the lower layers show


def test_db_url_overrides_the_sqlite_file(toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHANTOMEX_DB_URL", "postgresql+psycopg://u@localhost/px")
    assert load_settings().database_url == "postgresql+psycopg://u@localhost/px"
    monkeypatch.setenv("PHANTOMEX_DATA_DIR", "/srv/px")
    monkeypatch.delenv("PHANTOMEX_DB_URL")
    assert load_settings().database_url == "sqlite:////srv/px/phantomex.db"


def test_bad_values_are_refused(toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the server listens is never guessed: a bad port stops the start."""
    monkeypatch.setenv("PHANTOMEX_PORT", "70000")
    with pytest.raises(ValidationError):
        load_settings()


def test_a_bad_setting_takes_its_default_and_is_reported(
    toml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any other bad setting from the file or the environment is skipped (listed in /health),
    never a reason not to start; the same value given as a flag is still refused."""
    monkeypatch.setenv("PHANTOMEX_REPLAY_SPEED", "-1")
    s = load_settings()
    assert s.replay_speed == 60.0
    assert [(p.kind, p.name) for p in s.skipped] == [("setting", "replay_speed")]
    assert "greater than or equal to 0" in s.skipped[0].reason
    with pytest.raises(ValidationError):
        load_settings(replay_speed=-1)


def test_a_variable_that_is_not_json_is_a_skipped_setting(
    toml: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHANTOMEX_SOURCES", "coingecko")  # meant: ["coingecko"]
    s = load_settings()
    assert s.sources == ["replay"]
    assert [(p.name, p.reason) for p in s.skipped] == [
        ("sources", "Input should be a valid list; using the default")
    ]


def test_a_bad_list_entry_is_dropped_alone(toml: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toml.write_text(
        "[[llm_endpoints]]\nname = 'ok'\nkind = 'ollama'\nbase_url = 'http://127.0.0.1:11434'\n"
        "[[llm_endpoints]]\nname = 'typo'\nkind = 'ollama'\nbase_url = 'http://127.0.0.1:99999'\n"
    )
    s = load_settings()
    assert [e.name for e in s.llm_endpoints] == ["ok"]
    assert [(p.name, p.reason) for p in s.skipped] == [
        ("llm_endpoints[1] (typo)", "base_url: not a valid URL: Port out of range 0-65535")
    ]
