"""The CLI's settings: loaded once per command, a bad file or value a one-line error."""

from __future__ import annotations

import tomllib
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from phantomex.cli.client import fail

if TYPE_CHECKING:
    from phantomex.config import Settings


def settings_from(**overrides: Any) -> Settings:
    """Settings (flag > env > TOML > default), or a one-line error and exit 1."""
    from phantomex.config import config_file, load_settings

    try:
        return load_settings(**overrides)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "settings"
        fail(f"invalid setting {where}: {first.get('msg')}")
    except tomllib.TOMLDecodeError as exc:
        fail(f"cannot read the config file {config_file()}: {exc}")
