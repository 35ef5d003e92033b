"""Non-standard JSON a model wrote (single quotes, Python ``True``/``None``, trailing commas,
comments, unquoted keys and bare words, typographic quotes, ``Decimal('0.5')``) rewritten as
strict JSON."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Final

__all__ = ["lenient_to_json"]

_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_WORD = re.compile(r"[A-Za-z_$][\w$.\-/%]*", re.ASCII)
_DECIMAL_CALL = re.compile(r"""Decimal\(\s*(['"])([^'"]{1,100})\1\s*\)""")
_SMART_DOUBLE = str.maketrans({"\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"'})
_SMART_SINGLE = str.maketrans({"\u2018": "'", "\u2019": "'"})
_CONSTANTS: Final = {
    "true": "true",
    "false": "false",
    "null": "null",
    "none": "null",
    "undefined": "null",
    "nan": "NaN",
    "infinity": "Infinity",
    "inf": "Infinity",
}
_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/"}


def lenient_to_json(text: str) -> str:
    """Rewrite JSON5-ish / Python-literal text as strict JSON; ValueError when it can't."""
    text = _DECIMAL_CALL.sub(lambda m: m.group(2), text).translate(_SMART_DOUBLE)
    if "'" not in text and '"' not in text:  # only typographic single quotes delimit strings
        text = text.translate(_SMART_SINGLE)
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in " \t\r\n" or char in "{[:":
            out.append(char)
            i += 1
        elif char in "}]":
            _drop_trailing_comma(out)
            out.append(char)
            i += 1
        elif char == ",":
            out.append(char)
            i += 1
        elif char in "\"'":
            value, i = _read_string(text, i)
            out.append(json.dumps(value, ensure_ascii=False))
        elif char == "#" or text.startswith("//", i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
        elif text.startswith("/*", i):
            close = text.find("*/", i + 2)
            if close < 0:
                raise ValueError("unterminated comment")
            i = close + 2
        elif char in "+-" and text.startswith(("Infinity", "inf"), i + 1):
            word = _WORD.match(text, i + 1)
            if word is None:  # pragma: no cover - startswith guarantees a match
                raise ValueError("bad infinity")
            out.append(("-" if char == "-" else "") + "Infinity")
            i = word.end()
        elif char in "0123456789+-.":
            number = _NUMBER.match(text, i)
            if number is None:
                raise ValueError(f"unexpected {char!r}")
            i = number.end()
            if i < n and (text[i].isalnum() or text[i] == "_"):
                raise ValueError("number followed by letters")
            out.append(str(Decimal(number.group())))
        elif (word := _WORD.match(text, i)) is not None:
            token = word.group()
            constant = _CONSTANTS.get(token.lower())
            out.append(constant if constant else json.dumps(token))
            i = word.end()
        else:
            raise ValueError(f"unexpected {char!r}")
    return "".join(out)


def _drop_trailing_comma(out: list[str]) -> None:
    j = len(out) - 1
    while j >= 0 and out[j] in (" ", "\t", "\r", "\n"):
        j -= 1
    if j >= 0 and out[j] == ",":
        del out[j]


def _read_string(text: str, i: int) -> tuple[str, int]:
    """The string starting at ``text[i]`` (a quote) decoded leniently, and the index after it."""
    quote = text[i]
    chars: list[str] = []
    j, n = i + 1, len(text)
    while j < n:
        char = text[j]
        if char == quote:
            return "".join(chars), j + 1
        if char == "\\" and j + 1 < n:
            nxt = text[j + 1]
            if nxt in _ESCAPES:
                chars.append(_ESCAPES[nxt])
            elif nxt in "\\\"'":
                chars.append(nxt)
            elif nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[j + 2 : j + 6]):
                chars.append(chr(int(text[j + 2 : j + 6], 16)))
                j += 6
                continue
            else:
                chars.append("\\" + nxt)
            j += 2
            continue
        chars.append(char)
        j += 1
    raise ValueError("unterminated string")
