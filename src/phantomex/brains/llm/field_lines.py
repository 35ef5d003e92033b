"""A decision's fields read from text with no JSON at all: tags or ``key: value`` lines; only
the decision's own field names count, and a repeated field is kept to be judged like a repeated
JSON key."""

from __future__ import annotations

import re
from typing import Any

from phantomex.brains.llm.schema import FIELDS, json_object, normalize_key

__all__ = ["kv_fields", "xml_fields"]

_KV_LINE = re.compile(
    r"^[ \t]*(?:[-*>+][ \t]+|\d+[.)][ \t]+)?[*_`\"']*([A-Za-z][A-Za-z _\-]{0,30}?)[*_`\"']*"
    r"[ \t]*[:=][ \t]*(.*?)[ \t]*,?[ \t]*$",
    re.MULTILINE,
)
_XML_TAG = re.compile(r"<(/?)(" + "|".join(FIELDS) + r")\s*>", re.IGNORECASE)


def _clean_value(value: str) -> str | None:
    """A field's text without markup or quotes; None for an empty or null value."""
    value = value.strip().strip("*`_").strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
    return None if value.lower() in {"null", "none", "~", ""} else value


def xml_fields(text: str) -> dict[str, Any]:
    """The decision's fields written as ``<action>buy</action>`` tags."""
    pairs: list[tuple[str, Any]] = []
    open_name: str | None = None
    content_start = 0
    for match in _XML_TAG.finditer(text):
        closing, name = bool(match.group(1)), match.group(2).lower()
        if not closing:
            open_name, content_start = name, match.end()
        elif name == open_name:
            pairs.append((name, _clean_value(text[content_start : match.start()])))
            open_name = None
    return json_object(pairs)  # a repeated field is judged like a repeated JSON key


def kv_fields(text: str) -> dict[str, Any]:
    """The decision's fields written as ``action: buy`` lines (YAML-ish, markdown bullets)."""
    pairs: list[tuple[str, Any]] = []
    for match in _KV_LINE.finditer(text):
        key = normalize_key(match.group(1))
        if key in FIELDS:
            pairs.append((key, _clean_value(match.group(2))))
    return json_object(pairs)
