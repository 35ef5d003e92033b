"""The light reader of the data directory (phantomex.config_paths) gives the full settings'
answer, or none: every case is checked against load_settings itself."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from phantomex.config import load_settings
from phantomex.config_paths import DEFAULT_DATA_DIR, data_dir


@pytest.fixture()
def clean(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No PHANTOMEX_* variable in any case; the settings file is tmp_path/phantomex.toml."""
    for name in list(os.environ):
        if name.upper().startswith("PHANTOMEX_"):
            monkeypatch.delenv(name)
    path = tmp_path / "phantomex.toml"
    monkeypatch.setenv("PHANTOMEX_CONFIG", str(path))
    return path


def full() -> Path | str:
    """The full settings' data directory, or the name of the error they raise."""
    try:
        return load_settings().data_dir
    except (ValidationError, tomllib.TOMLDecodeError) as exc:
        return type(exc).__name__


PLAIN: list[tuple[dict[str, str], str | None]] = [
    ({}, None),  # the default
    ({}, 'data_dir = "from-file"'),
    ({}, 'DATA_DIR = "upper/in/file"\nport = 9000'),
    ({}, 'data_dir = ""'),
    ({}, '[news]\ndata_dir = "only a table key"'),
    ({}, "port = 70000"),  # another setting's mistake: not the data directory's business
    ({"PHANTOMEX_DATA_DIR": "from-env"}, None),
    ({"PHANTOMEX_DATA_DIR": " spaced/../odd~ "}, 'data_dir = "file loses"'),
    ({"phantomex_data_dir": "lower-case variable"}, None),
    ({"PHANTOMEX_DATA_DIR": ""}, None),
]


def _arrange(
    monkeypatch: pytest.MonkeyPatch, settings_file: Path, env: dict[str, str], text: str | None
) -> None:
    """The environment variables ``env`` and, unless None, the settings file's ``text``."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if text is not None:
        settings_file.write_text(text)


@pytest.mark.parametrize(("env", "text"), PLAIN)
def test_the_light_reader_agrees_with_the_settings(
    clean: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], text: str | None
) -> None:
    _arrange(monkeypatch, clean, env, text)
    light = data_dir()
    assert light is not None
    if text == "port = 70000":
        assert light == DEFAULT_DATA_DIR
        return  # the full settings refuse the port
    assert light == full()


UNSURE: list[tuple[dict[str, str], str | None]] = [
    ({}, "data_dir = 5"),  # refused by the settings
    ({}, 'data_dir = "a"\nDATA_DIR = "b"'),  # two spellings: theirs to choose
    ({}, "data_dir = [unclosed"),  # a file that does not parse
    ({"PHANTOMEX_DATA_DIR": "env"}, "data_dir = 5"),  # the variable wins there
    ({"PHANTOMEX_DATA_DIR": "a", "Phantomex_Data_Dir": "b"}, None),
]


@pytest.mark.parametrize(("env", "text"), UNSURE)
def test_the_light_reader_leaves_what_is_not_plain_to_the_settings(
    clean: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], text: str | None
) -> None:
    _arrange(monkeypatch, clean, env, text)
    assert data_dir() is None
    full()  # they answer or refuse, as without the light reader


def test_a_dataset_backtest_finds_the_dataset_where_the_settings_put_it(
    clean: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from phantomex.cli.backtest import _datasets_dir

    clean.write_text(f'data_dir = "{tmp_path / "file-dir"}"')
    assert _datasets_dir() == load_settings().datasets_dir == tmp_path / "file-dir" / "datasets"
    clean.write_text("data_dir = 5")  # not plain: the settings decide (and refuse)
    with pytest.raises(ValidationError):
        _datasets_dir()
