"""``--json`` output: plain JSON on stdout, without the Rich consoles of
:mod:`phantomex.cli.output` (a ``backtest --json`` run imports no Rich)."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, nothing else (indented by two spaces,
    ASCII). Written by orjson (a backtest's thousands of trades in milliseconds; NaN and
    infinities, which JSON has not, as null), or by the standard library for what orjson does
    not take (integers beyond 64 bits) or would not escape (text beyond ASCII)."""
    import orjson

    try:
        text = orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()
    except TypeError:
        text = ""
    if not text or not text.isascii():
        text = json.dumps(data, indent=2)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
