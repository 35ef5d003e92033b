"""Where the settings file is and the data directory it names, read without the settings model.

:mod:`phantomex.config` builds every setting with pydantic-settings (~0.1-0.3 s of imports and
validation); a command that needs only the data directory (``backtest --dataset``) asks
:func:`data_dir` here, which reads the same sources in the same order (``PHANTOMEX_DATA_DIR``,
any case, then ``data_dir`` of the TOML file, any case, then the default) and answers only when
the answer is plain: one string in the first source that has one. Anything else (two spellings
of the variable, a value that is not text, a file that does not parse) gets None, and the caller
asks the full settings, which decide (or refuse) as always. A mistake in another setting does
not stop a command that reads only the data directory.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

#: The data directory when no setting names one.
DEFAULT_DATA_DIR = Path("data")
_VAR = "phantomex_data_dir"
_KEY = "data_dir"


def config_file() -> Path:
    """The settings file: ``PHANTOMEX_CONFIG``, else ``phantomex.toml`` in the working
    directory."""
    return Path(os.environ.get("PHANTOMEX_CONFIG", "phantomex.toml"))


def data_dir() -> Path | None:
    """The data directory the full settings would give, or None when only they can tell."""
    file = _file_value()
    if file is None:
        return None
    found = [value for name, value in os.environ.items() if name.lower() == _VAR]
    if len(found) > 1:
        return None
    if found:
        return Path(found[0])
    return DEFAULT_DATA_DIR if file == () else Path(file[0])


def _file_value() -> tuple[str, ...] | None:
    """``(value,)`` of the file's data directory, ``()`` when it has none (or there is no
    file), None when it is not plain: the full settings read the file even when the variable
    wins, so a file they cannot read is theirs to refuse."""
    path = config_file()
    if not path.exists():
        return ()
    try:
        with path.open("rb") as handle:
            table = tomllib.load(handle)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    values = [value for key, value in table.items() if key.lower() == _KEY]
    if not values:
        return ()
    if len(values) > 1 or not isinstance(values[0], str):
        return None
    return (values[0],)
