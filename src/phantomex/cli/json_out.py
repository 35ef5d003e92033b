"""``--json`` output: plain JSON on stdout, without the Rich consoles of
:mod:`phantomex.cli.output` (a ``backtest --json`` run imports no Rich)."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(data: Any) -> None:
    """Machine-readable output: plain JSON on stdout, nothing else (indented by two spaces,
    ASCII). Written by orjson (a backtest's thousands of trades in milliseconds; NaN and
    infinities, which JSON has not, as null) as bytes straight to stdout's buffer when it has
    one, or by the standard library for what orjson does not take (integers beyond 64 bits)
    or would not escape (text beyond ASCII)."""
    import orjson

    try:
        raw = orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    except TypeError:
        raw = b""
    if not raw or not raw.isascii():
        raw = (json.dumps(data, indent=2) + "\n").encode("ascii")
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a text-only stream (a test's StringIO)
        sys.stdout.write(raw.decode("ascii"))
    else:
        sys.stdout.flush()
        buffer.write(raw)
        buffer.flush()
    sys.stdout.flush()
