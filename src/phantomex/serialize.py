"""JSON for the API and the WebSocket: money as exact decimal strings, times as ISO-8601 UTC."""

from __future__ import annotations

import dataclasses
import enum
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat().replace("+00:00", "Z")


_PLAIN = frozenset({str, int, float, bool, type(None)})


def jsonable(obj: Any) -> Any:
    kind = type(obj)
    if kind in _PLAIN:  # the common cases first (exact types: enums and subclasses go on)
        return obj
    if kind is dict:  # plain values inline: most of a payload is leaves
        return {
            (k if type(k) is str else str(k)): (v if type(v) in _PLAIN else jsonable(v))
            for k, v in obj.items()
        }
    if kind is list:
        return [v if type(v) in _PLAIN else jsonable(v) for v in obj]
    if isinstance(obj, Decimal):
        return format(obj, "f")
    if isinstance(obj, datetime):
        return iso(obj)
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [jsonable(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {name: jsonable(getattr(obj, name)) for name in _field_names(kind)}
    return obj


_FIELDS: dict[type, tuple[str, ...]] = {}


def _field_names(cls: type) -> tuple[str, ...]:
    """A dataclass's field names, looked up once per class."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    return names


def _decimal_str(value: Decimal) -> str:
    return format(value, "f")


#: Field types of response models that render as :func:`jsonable` does: a Decimal as an exact
#: decimal string (never an exponent), a time as ISO-8601 UTC with ``Z``, anything else as the
#: plain JSON :func:`jsonable` makes of it.
DecimalStr = Annotated[
    Decimal, PlainSerializer(_decimal_str, return_type=str, when_used="json-unless-none")
]
IsoTime = Annotated[datetime, PlainSerializer(iso, return_type=str, when_used="json-unless-none")]
JsonAny = Annotated[Any, BeforeValidator(jsonable)]
